package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"
)

var errNoManifestYet = errors.New("no manifest of the repository has been read yet: read one with Manifest or ManifestByTag first")

// Source reads manifests and blobs of one repository over one connection
// setup. It is safe for concurrent use. Close it when done.
//
// containers/image opens a source on an image that exists, and then serves
// any manifest or blob of the repository through it; a Source therefore opens
// its connection with the first manifest it reads (or at once, when made with
// a tag or digest), and Blob needs that to have happened.
type Source struct {
	c    *Client
	repo reference.Named

	mu     sync.Mutex
	src    types.ImageSource // nil until a manifest has been read
	closed bool
}

// Source returns a Source for the repository of ref. ref may be a bare
// repository, or a pull spec whose tag or digest is then read at once (an
// error says if it does not exist).
func (c *Client) Source(ctx context.Context, ref string) (*Source, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	s := &Source{c: c, repo: reference.TrimNamed(named)}
	if reference.IsNameOnly(named) {
		return s, nil
	}
	named, err = parseImage(ref)
	if err != nil {
		return nil, err
	}
	err = Do(ctx, c.opts.Retry, "reading "+named.String(), func(ctx context.Context) error {
		_, err := s.open(ctx, named)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Repository returns the normalized repository name.
func (s *Source) Repository() string { return s.repo.String() }

// Manifest reads the manifest with digest d and checks its bytes against d.
func (s *Source) Manifest(ctx context.Context, d digest.Digest) (Manifest, error) {
	if err := d.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("reading manifest from %s: invalid digest %q: %w", s.repo, d, err)
	}
	named, err := reference.WithDigest(s.repo, d)
	if err != nil {
		return Manifest{}, fmt.Errorf("reading manifest from %s: %w", s.repo, err)
	}
	var m Manifest
	err = Do(ctx, s.c.opts.Retry, "reading manifest "+named.String(), func(ctx context.Context) error {
		src, err := s.current()
		if err != nil {
			return err
		}
		if src != nil {
			m, err = readManifest(ctx, src, named, &d)
			return err
		}
		m, err = s.open(ctx, named)
		return err
	})
	return m, err
}

// ManifestByTag reads the manifest the tag points at. A tag that does not
// exist gives an error satisfying errors.Is(err, ErrNotFound), and only then:
// callers use it to probe for sigstore signature tags (sha256-<hex>.sig).
func (s *Source) ManifestByTag(ctx context.Context, tag string) (Manifest, error) {
	named, err := reference.WithTag(s.repo, tag)
	if err != nil {
		return Manifest{}, fmt.Errorf("reading %s:%s: invalid tag: %w", s.repo, tag, err)
	}
	var m Manifest
	err = Do(ctx, s.c.opts.Retry, "reading manifest "+named.String(), func(ctx context.Context) error {
		// An open source serves manifests by digest only: a tag needs a
		// source of its own.
		m, err = s.open(ctx, named)
		return err
	})
	return m, err
}

// Blob opens the blob d. The stream is returned as the registry sends it
// (containers/image reconnects it if it breaks); the caller verifies it, or
// uses VerifiedBlob. size is the size the manifest gives, or -1; a registry
// announcing another size is refused at once.
func (s *Source) Blob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("reading blob from %s: invalid digest %q: %w", s.repo, d, err)
	}
	var rc io.ReadCloser
	err := Do(ctx, s.c.opts.Retry, fmt.Sprintf("reading blob %s@%s", s.repo, d), func(ctx context.Context) error {
		src, err := s.current()
		if err == nil && src == nil {
			err = errNoManifestYet
		}
		if err != nil {
			return fmt.Errorf("reading blob %s@%s: %w", s.repo, d, err)
		}
		body, served, err := src.GetBlob(ctx, types.BlobInfo{Digest: d, Size: size}, none.NoCache)
		if err != nil {
			return fmt.Errorf("reading blob %s@%s: %w", s.repo, d, classify(err))
		}
		if size >= 0 && served >= 0 && served != size {
			body.Close()
			return fmt.Errorf("reading blob %s@%s: %w: the registry serves %d bytes, the manifest says %d", s.repo, d, ErrDigestMismatch, served, size)
		}
		rc = body
		return nil
	})
	return rc, err
}

// VerifiedBlob is Blob through NewVerifyingReader: reading it to the end
// fails instead of returning io.EOF if the content is not size bytes with
// digest d.
func (s *Source) VerifiedBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	rc, err := s.Blob(ctx, d, size)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{NewVerifyingReader(rc, d, size), rc}, nil
}

// Close releases the connections. Streams returned by Blob must be closed
// first.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.src == nil {
		return nil
	}
	src := s.src
	s.src = nil
	if err := src.Close(); err != nil {
		return fmt.Errorf("closing source %s: %w", s.repo, err)
	}
	return nil
}

// current returns the open containers/image source, or nil if none is open.
func (s *Source) current() (types.ImageSource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("source %s is closed", s.repo)
	}
	return s.src, nil
}

// open opens a containers/image source on named (a tag or digest of the
// repository), reads its manifest, and keeps the source for later reads if
// none is kept yet.
func (s *Source) open(ctx context.Context, named reference.Named) (m Manifest, err error) {
	src, err := s.c.openSource(ctx, named)
	if err != nil {
		return Manifest{}, err
	}
	kept := false
	defer func() {
		if !kept {
			closeInto(&err, src, "source "+named.String())
		}
	}()
	m, err = readManifest(ctx, src, named, nil)
	if err != nil {
		return Manifest{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.src == nil && !s.closed {
		s.src, kept = src, true
	}
	return m, nil
}
