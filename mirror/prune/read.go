package prune

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/mirror/registry"
)

// MaxManifests caps the manifests one Read holds: the tags
// (registry.MaxTags at most) and the children of the lists among them.
// A manifest is held parsed, some hundred bytes per blob it names, so
// this stays under a few hundred MB; a mirror of a hundred releases of
// four arches holds some 100,000.
const MaxManifests = 500_000

// ManifestsBoundError is a repository whose tags lead to more than
// MaxManifests manifests.
type ManifestsBoundError struct {
	Repository string
	Limit      int
}

func (e *ManifestsBoundError) Error() string {
	return fmt.Sprintf("%s: its tags lead to more than %d manifests (the bound prune.MaxManifests)", e.Repository, e.Limit)
}

// ReadOptions tune Read.
type ReadOptions struct {
	// Registry says how to reach the registry (auth, TLS, retries).
	Registry registry.Options
	// Parallel bounds the manifests read at once; <= 0 means
	// registry.DefaultParallel.
	Parallel int
	// maxManifests replaces MaxManifests when > 0, for tests.
	maxManifests int
}

// Read lists repo's tags (registry.Client.ListTags, at most
// registry.MaxTags) and reads the manifest each points at and, for a list,
// its children; every manifest is read at most registry.MaxManifestSize
// bytes and checked against its digest. A tag deleted while Read runs is
// left out; a child missing from the registry is recorded as unread
// (nothing then counts its blobs). A repository the registry does not
// know gives an empty snapshot.
func Read(ctx context.Context, repo string, opts ReadOptions) (*Snapshot, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, fmt.Errorf("invalid repository %q: %w", repo, err)
	}
	if !reference.IsNameOnly(named) {
		return nil, fmt.Errorf("invalid repository %q: give it without tag or digest", repo)
	}
	s := &Snapshot{Repository: named.String(), Tags: map[string]digest.Digest{}, Manifests: map[digest.Digest]*Manifest{}}
	client := registry.New(opts.Registry)
	tags, err := client.ListTags(ctx, named.String())
	if errors.Is(err, registry.ErrNotFound) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	src, err := client.Source(ctx, named.String())
	if err != nil {
		return nil, err
	}
	defer src.Close()
	r := &reader{src: src, s: s, limit: MaxManifests}
	if opts.maxManifests > 0 {
		r.limit = opts.maxManifests
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = registry.DefaultParallel
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, tag := range tags {
		g.Go(func() error { return r.tag(gctx, tag) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return s, nil
}

// reader is the state of one Read.
type reader struct {
	src   *registry.Source
	limit int
	mu    sync.Mutex
	s     *Snapshot
}

// tag reads the manifest tag points at, and its children.
func (r *reader) tag(ctx context.Context, tag string) error {
	m, err := r.src.ManifestByTag(ctx, tag)
	if errors.Is(err, registry.ErrNotFound) {
		return nil // deleted since the tags were listed
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.s.Tags[tag] = m.Digest
	r.mu.Unlock()
	parsed, err := r.add(m)
	if err != nil || parsed == nil {
		return err
	}
	for _, child := range parsed.Children {
		if r.has(child) {
			continue
		}
		cm, err := r.src.Manifest(ctx, child)
		if errors.Is(err, registry.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s:%s, child %s: %w", r.s.Repository, tag, child, err)
		}
		if _, err := r.add(cm); err != nil {
			return fmt.Errorf("%s:%s, child %s: %w", r.s.Repository, tag, child, err)
		}
	}
	return nil
}

func (r *reader) has(d digest.Digest) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.s.Manifests[d]
	return ok
}

// add parses and records m; it returns nil when m was recorded already.
func (r *reader) add(m registry.Manifest) (*Manifest, error) {
	parsed, err := ParseManifest(m.Digest, m.MediaType, m.Bytes)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.s.Manifests[m.Digest]; ok {
		return nil, nil
	}
	if len(r.s.Manifests) >= r.limit {
		return nil, &ManifestsBoundError{Repository: r.s.Repository, Limit: r.limit}
	}
	r.s.Manifests[m.Digest] = parsed
	return parsed, nil
}

// ParseManifest reads a manifest's children (a list) or blobs (an image).
// Blobs of unknown size (Docker schema 1) are left out: nothing counts
// them as reclaimable.
func ParseManifest(d digest.Digest, mediaType string, data []byte) (*Manifest, error) {
	m := &Manifest{Digest: d, MediaType: mediaType, Size: int64(len(data))}
	if manifest.MIMETypeIsMultiImage(mediaType) {
		list, err := manifest.ListFromBlob(data, mediaType)
		if err != nil {
			return nil, fmt.Errorf("parse manifest list %s: %w", d, err)
		}
		m.Children = list.Instances()
		return m, nil
	}
	parsed, err := manifest.FromBlob(data, mediaType)
	if err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", d, err)
	}
	if cfg := parsed.ConfigInfo(); cfg.Digest != "" && cfg.Size >= 0 {
		m.Blobs = append(m.Blobs, Blob{Digest: cfg.Digest, Size: cfg.Size})
	}
	for _, l := range parsed.LayerInfos() {
		if l.Size >= 0 {
			m.Blobs = append(m.Blobs, Blob{Digest: l.Digest, Size: l.Size})
		}
	}
	return m, nil
}
