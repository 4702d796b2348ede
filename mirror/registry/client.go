package registry

import (
	"context"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// Client reaches registries with one set of Options. It keeps one pool of
// connections per registry host for blobs, tags and pushes, shared by
// every Source and Destination it makes (containers/image, which reads
// manifests, keeps its own per Source). It is safe for concurrent use.
type Client struct {
	opts Options
	sys  *types.SystemContext

	hostsMu sync.Mutex
	hosts   map[string]*hostClient // by registry host, as references name it
	homes   blobHomes
}

// New returns a Client. Options are used as given: see DefaultOptions.
func New(opts Options) *Client {
	return &Client{opts: opts, sys: opts.SystemContext(), hosts: map[string]*hostClient{}, homes: blobHomes{m: map[string]map[digest.Digest]string{}}}
}

// Manifest is a manifest (or manifest list / index) exactly as served.
type Manifest struct {
	// Repository is the normalized repository it was read from.
	Repository string
	// Digest is the digest of Bytes: what the registry stores it under.
	Digest digest.Digest
	// MediaType is the Content-Type served, or guessed from Bytes when the
	// registry sent none.
	MediaType string
	Bytes     []byte
}

// Resolve reads the manifest that ref (a pull spec with a tag, a digest or
// both; both means the digest) names. When ref has a digest, the bytes are
// checked against it.
func (c *Client) Resolve(ctx context.Context, ref string) (Manifest, error) {
	named, err := parseImage(ref)
	if err != nil {
		return Manifest{}, err
	}
	direct, err := c.direct(reference.TrimNamed(named))
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	err = c.do(ctx, "resolving "+named.String(), func(ctx context.Context) error {
		if direct != nil {
			var err error
			m, err = direct.manifest(ctx, named, tagOrDigest(named))
			return err
		}
		src, err := c.openSource(ctx, named)
		if err != nil {
			return err
		}
		defer src.Close()
		m, err = readManifest(ctx, src, named, nil)
		return err
	})
	return m, err
}

// do runs fn under the retry policy (see Do), each attempt within the
// time bounds (a silent registry fails it with a *StallError naming op).
func (c *Client) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return Do(ctx, c.opts.Retry, op, func(ctx context.Context) error {
		return bounded(ctx, c.opts.Timeouts, op, func(ctx context.Context, _ *watchdog) error { return fn(ctx) })
	})
}

// openSource opens a containers/image source on named, which must carry a
// tag or a digest that exists: opening reads that manifest.
func (c *Client) openSource(ctx context.Context, named reference.Named) (types.ImageSource, error) {
	ir, err := docker.NewReference(named)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", named, err)
	}
	src, err := ir.NewImageSource(ctx, c.sys)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", named, classify(err))
	}
	return src, nil
}

// readManifest reads the manifest of named (instance nil) or the instance d
// from src, and checks it against the digest that names it, if any.
func readManifest(ctx context.Context, src types.ImageSource, named reference.Named, instance *digest.Digest) (Manifest, error) {
	data, mediaType, err := src.GetManifest(ctx, instance)
	if err != nil {
		return Manifest{}, fmt.Errorf("reading manifest %s: %w", named, classify(err))
	}
	if len(data) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("reading manifest %s: larger than %d bytes", named, MaxManifestSize)
	}
	want := digest.Digest("")
	if instance != nil {
		want = *instance
	} else if d, ok := named.(reference.Digested); ok {
		want = d.Digest()
	}
	got := digest.FromBytes(data)
	if want != "" {
		if got = want.Algorithm().FromBytes(data); got != want {
			return Manifest{}, fmt.Errorf("reading manifest %s: %w: the registry served content with digest %s", named, ErrDigestMismatch, got)
		}
	}
	if mediaType == "" {
		mediaType = manifest.GuessMIMEType(data)
	}
	return Manifest{
		Repository: reference.TrimNamed(named).String(),
		Digest:     got,
		MediaType:  mediaType,
		Bytes:      data,
	}, nil
}

// tagOrDigest is what names named's manifest in its repository: its
// digest, else its tag.
func tagOrDigest(named reference.Named) string {
	if d, ok := named.(reference.Digested); ok {
		return d.Digest().String()
	}
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return "latest"
}

// parseImage parses a pull spec that must name an image: with a tag or a
// digest. With both, the tag is dropped, as containers/image pulls by one.
func parseImage(ref string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	if d, ok := named.(reference.Digested); ok {
		if err := d.Digest().Validate(); err != nil {
			return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
		}
		if _, tagged := named.(reference.Tagged); tagged {
			return reference.WithDigest(reference.TrimNamed(named), d.Digest())
		}
		return named, nil
	}
	if reference.IsNameOnly(named) {
		return nil, fmt.Errorf("image reference %q has neither a tag nor a digest", ref)
	}
	return named, nil
}
