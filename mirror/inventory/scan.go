package inventory

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.podman.io/image/v5/docker/reference"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/mirror/registry"
)

// ScanOptions tune Scan.
type ScanOptions struct {
	// Registry says how to reach the registry (auth, TLS, retries).
	Registry registry.Options
	// Parallel bounds the manifests read at once; <= 0 means
	// registry.DefaultParallel.
	Parallel int
	// Progress, when set, is called after each tag is read with the tags
	// done and the total, per repository. It must be safe for concurrent
	// use.
	Progress func(done, total int)
	// Paths are repositories under repo to read too (repo + "/" + path:
	// where ferry pushes additional images and the graph-data image),
	// recorded in Inventory.Repositories with their tags; one the registry
	// does not know is recorded empty.
	Paths []string
}

// Scan reads what repo (host/path, without tag or digest) holds. A registry
// cannot list blobs, so Scan lists the tags, reads the manifest each one
// points at (and the children of lists), and records those manifests and
// every config and layer they reference: a registry holds a manifest only
// with its blobs. Manifests no tag leads to are not seen; the inventory
// then claims less than the repository holds, which only costs bundle
// size. Tags of the form <version>-<arch> are recorded as releases.
//
// A repository the registry does not know gives an empty inventory.
func Scan(ctx context.Context, repo string, opts ScanOptions) (*Inventory, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, fmt.Errorf("invalid repository %q: %w", repo, err)
	}
	if !reference.IsNameOnly(named) {
		return nil, fmt.Errorf("invalid repository %q: give it without tag or digest", repo)
	}
	source := "registry " + named.String()
	// One client for every listing and read: one pool of connections.
	client := registry.New(opts.Registry)
	root := NewBuilder()
	if err := scanRepository(ctx, client, named.String(), opts, root, false); err != nil {
		return nil, err
	}
	inv := root.Inventory(source)
	for _, p := range opts.Paths {
		b := NewBuilder()
		if err := scanRepository(ctx, client, named.String()+"/"+p, opts, b, true); err != nil {
			return nil, err
		}
		inv.Repositories = append(inv.Repositories, b.Repository(p))
	}
	return inv, nil
}

// scanRepository reads every tag of repo into b, recording the tags too
// when withTags; a repository the registry does not know adds nothing.
func scanRepository(ctx context.Context, client *registry.Client, repo string, opts ScanOptions, b *Builder, withTags bool) error {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return fmt.Errorf("invalid repository %q: %w", repo, err)
	}
	tags, err := listTags(ctx, client, named)
	if errors.Is(err, registry.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	src, err := client.Source(ctx, named.String())
	if err != nil {
		return err
	}
	defer src.Close()
	s := &scan{src: src, b: b, opts: opts, total: len(tags), withTags: withTags}
	return s.tags(ctx, tags)
}

// scan is the state of one Scan.
type scan struct {
	src   *registry.Source
	b     *Builder
	opts  ScanOptions
	total int
	// withTags records each tag and the manifest it names.
	withTags bool
}

func (s *scan) tags(ctx context.Context, tags []string) error {
	parallel := s.opts.Parallel
	if parallel <= 0 {
		parallel = registry.DefaultParallel
	}
	var done atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, tag := range tags {
		g.Go(func() error {
			err := s.tag(ctx, tag)
			if n := done.Add(1); s.opts.Progress != nil {
				s.opts.Progress(int(n), s.total)
			}
			return err
		})
	}
	return g.Wait()
}

// tag records the manifest tag points at, its children and its blobs.
func (s *scan) tag(ctx context.Context, tag string) error {
	m, err := s.src.ManifestByTag(ctx, tag)
	if errors.Is(err, registry.ErrNotFound) {
		return nil // deleted since the tags were listed
	}
	if err != nil {
		return err
	}
	children, err := s.b.AddManifest(m.Digest, m.MediaType, m.Bytes)
	if err != nil {
		return fmt.Errorf("%s:%s: %w", s.src.Repository(), tag, err)
	}
	if s.withTags {
		s.b.AddTag(tag, m.Digest)
	}
	for _, child := range children {
		if s.b.HasManifest(child) {
			continue
		}
		cm, err := s.src.Manifest(ctx, child)
		if errors.Is(err, registry.ErrNotFound) {
			continue // its blobs stay unclaimed
		}
		if err != nil {
			return err
		}
		if _, err := s.b.AddManifest(cm.Digest, cm.MediaType, cm.Bytes); err != nil {
			return fmt.Errorf("%s:%s, child %s: %w", s.src.Repository(), tag, child, err)
		}
	}
	if version, arch, ok := releaseTag(tag, m.MediaType); ok {
		s.b.AddRelease(version, arch, m.Digest)
	}
	return nil
}

// listTags lists the repository's tags with registry.Client.ListTags, which
// reads them page by page and stops at registry.MaxTags (a registry that
// paginates forever fails there instead of growing ferry without end).
func listTags(ctx context.Context, client *registry.Client, named reference.Named) ([]string, error) {
	return client.ListTags(ctx, named.String())
}
