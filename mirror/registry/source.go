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

	"github.com/ferryhq/ferry/internal/fileio"
	"github.com/ferryhq/ferry/mirror/retry"
)

var errNoManifestYet = errors.New("no manifest of the repository has been read yet: read one with Manifest or ManifestByTag first")

// Source reads manifests and blobs of one repository, on its Client's
// connections. It is safe for concurrent use. Close it when done.
//
// A repository that registries.conf sends to a mirror is read through
// containers/image, which opens a source on an image that exists and then
// serves any manifest or blob of the repository through it; such a Source
// opens its connection with the first manifest it reads (or at once, when
// made with a tag or digest), and Blob needs that to have happened.
type Source struct {
	c    *Client
	repo reference.Named
	// direct, when set, reads everything on the Client's shared
	// connections instead of through containers/image.
	direct *directReader

	mu      sync.Mutex
	src     types.ImageSource // nil until a manifest has been read
	ref     reference.Named   // what src was opened on, to open it again
	gen     int               // bumped when src is replaced
	retired []types.ImageSource
	closed  bool
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
	if s.direct, err = c.direct(s.repo); err != nil {
		return nil, err
	}
	if reference.IsNameOnly(named) {
		return s, nil
	}
	named, err = parseImage(ref)
	if err != nil {
		return nil, err
	}
	err = c.do(ctx, "reading "+named.String(), func(ctx context.Context) error {
		if s.direct != nil {
			_, err := s.direct.manifest(ctx, named, tagOrDigest(named))
			return err
		}
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
	err = s.c.do(ctx, "reading manifest "+named.String(), func(ctx context.Context) error {
		if s.direct != nil {
			if _, _, err := s.current(); err != nil {
				return err
			}
			var err error
			m, err = s.direct.manifest(ctx, named, d.String())
			return err
		}
		src, gen, err := s.current()
		if err != nil {
			return err
		}
		if src != nil {
			m, err = readManifest(ctx, src, named, &d)
			return s.checkToken(ctx, gen, err)
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
	err = s.c.do(ctx, "reading manifest "+named.String(), func(ctx context.Context) error {
		if s.direct != nil {
			if _, _, err = s.current(); err != nil {
				return err
			}
			m, err = s.direct.manifest(ctx, named, tag)
			return err
		}
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
	err := Do(ctx, s.c.opts.Retry, s.blobOp(d), func(ctx context.Context) error {
		var err error
		rc, err = s.openWatchedBlob(ctx, d, size)
		return err
	})
	return rc, err
}

func (s *Source) blobOp(d digest.Digest) string {
	return fmt.Sprintf("reading blob %s@%s", s.repo, d)
}

// openWatchedBlob is openBlob within the time bounds: opening it must get
// an answer within Timeouts.Response, and each read of the stream a byte
// within Timeouts.Stall, or they fail with a *StallError.
func (s *Source) openWatchedBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	w, ctx := watch(ctx, s.c.opts.Timeouts, s.blobOp(d))
	w.enter(AwaitingAnswer, s.c.opts.Timeouts.Response)
	rc, err := s.openBlob(ctx, d, size)
	w.leave()
	if err != nil {
		err = w.explain(err)
		w.stop()
		return nil, err
	}
	return &watchedBody{rc: rc, w: w}, nil
}

// openBlob is one try of Blob.
func (s *Source) openBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	if s.direct != nil {
		if _, _, err := s.current(); err != nil {
			return nil, fmt.Errorf("reading blob %s@%s: %w", s.repo, d, err)
		}
		return s.direct.blob(ctx, d, size)
	}
	src, gen, err := s.current()
	if err == nil && src == nil {
		err = errNoManifestYet
	}
	if err != nil {
		return nil, fmt.Errorf("reading blob %s@%s: %w", s.repo, d, err)
	}
	body, served, err := src.GetBlob(ctx, types.BlobInfo{Digest: d, Size: size}, none.NoCache)
	if err != nil {
		return nil, s.checkToken(ctx, gen, fmt.Errorf("reading blob %s@%s: %w", s.repo, d, classify(err)))
	}
	if size >= 0 && served >= 0 && served != size {
		body.Close()
		return nil, fmt.Errorf("reading blob %s@%s: %w: the registry serves %d bytes, the manifest says %d", s.repo, d, ErrDigestMismatch, served, size)
	}
	return body, nil
}

// VerifiedBlob is Blob through NewVerifyingReader: reading it to the end
// fails instead of returning io.EOF if the content is not size bytes with
// digest d. A stream that breaks on the way (a connection reset that
// containers/image does not resume) is opened again and read on from where
// it broke, within the Client's retry policy.
func (s *Source) VerifiedBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	rc, err := s.Blob(ctx, d, size)
	if err != nil {
		return nil, err
	}
	rr := &resumingReader{ctx: ctx, s: s, d: d, size: size, rc: rc}
	return struct {
		io.Reader
		io.Closer
	}{NewVerifyingReader(rr, d, size), rr}, nil
}

// resumingReader reads a blob of a Source, opening it again after a
// transient failure and skipping what was read already. Its failures count
// against one retry policy, whatever phase they happen in.
type resumingReader struct {
	ctx      context.Context
	s        *Source
	d        digest.Digest
	size     int64
	rc       io.ReadCloser // nil after a failed reopen
	off      int64
	failures int
}

func (r *resumingReader) Read(p []byte) (int, error) {
	for {
		if r.rc == nil {
			return 0, fmt.Errorf("reading blob %s@%s: closed after a failure", r.s.repo, r.d)
		}
		n, err := r.rc.Read(p)
		r.off += int64(n)
		if err == nil || errors.Is(err, io.EOF) || !IsTransient(err) || r.ctx.Err() != nil {
			return n, err
		}
		if rerr := r.resume(err); rerr != nil {
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resume replaces the broken stream by a new one positioned at r.off.
func (r *resumingReader) resume(cause error) error {
	policy := r.s.c.opts.Retry
	op := r.s.blobOp(r.d)
	_ = r.rc.Close()
	r.rc = nil
	for {
		r.failures++
		if r.failures >= max(policy.Attempts, 1) {
			return fmt.Errorf("%s: %w", op, &retry.ExhaustedError{Err: cause, Attempts: r.failures})
		}
		wait, _ := staleTokenWait(cause, policy.Backoff(r.failures))
		policy.Notify(retry.Event{Op: op, Attempt: r.failures, Err: cause, Wait: wait})
		if err := retry.Sleep(r.ctx, wait); err != nil {
			return fmt.Errorf("%w (while waiting to retry after: %w)", err, cause)
		}
		rc, err := r.s.openWatchedBlob(r.ctx, r.d, r.size)
		if err == nil {
			if _, err = io.CopyN(io.Discard, rc, r.off); err == nil {
				r.rc = rc
				return nil
			}
			_ = rc.Close()
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: the blob ends before offset %d", ErrDigestMismatch, r.off)
			}
		}
		if !IsTransient(err) || r.ctx.Err() != nil {
			return err
		}
		cause = err
	}
}

func (r *resumingReader) Close() error {
	if r.rc == nil {
		return nil
	}
	return r.rc.Close()
}

// Close releases the connections. Streams returned by Blob must be closed
// first.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var err error
	for _, src := range append(s.retired, s.src) {
		if src != nil {
			fileio.CloseInto(&err, src, "source "+s.repo.String())
		}
	}
	s.src, s.retired = nil, nil
	return err
}

// current returns the open containers/image source, or nil if none is open,
// and its generation.
func (s *Source) current() (types.ImageSource, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, fmt.Errorf("source %s is closed", s.repo)
	}
	return s.src, s.gen, nil
}

// checkToken passes err through, unless it is a refusal (401, 403) by a
// registry that had let the source of generation gen in: then that source
// is replaced by a fresh one (a new token) and err is marked worth another
// try. Wrong credentials never get a source opened, so they still fail at
// once.
func (s *Source) checkToken(ctx context.Context, gen int, err error) error {
	if err == nil || !errors.Is(err, ErrUnauthorized) {
		return err
	}
	s.mu.Lock()
	ref, stale := s.ref, s.gen == gen && !s.closed
	s.mu.Unlock()
	if stale {
		fresh, oerr := s.c.openSource(ctx, ref)
		if oerr != nil {
			return err
		}
		s.mu.Lock()
		if s.gen == gen && !s.closed {
			s.retired = append(s.retired, s.src) // may serve streams still open
			s.src, s.gen = fresh, s.gen+1
			fresh = nil
		}
		s.mu.Unlock()
		if fresh != nil {
			_ = fresh.Close()
		}
	}
	return &staleTokenError{err}
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
			fileio.CloseInto(&err, src, "source "+named.String())
		}
	}()
	m, err = readManifest(ctx, src, named, nil)
	if err != nil {
		return Manifest{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.src == nil && !s.closed {
		s.src, s.ref, kept = src, named, true
	}
	return m, nil
}
