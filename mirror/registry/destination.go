package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"

	"github.com/ferryhq/ferry/internal/fileio"
)

// Destination writes blobs, manifests and tags into one repository. Manifests
// are pushed exactly as given, never converted, so their digests survive. It
// is safe for concurrent use. Close it when done.
type Destination struct {
	c    *Client
	repo reference.Named

	mu      sync.Mutex
	dest    types.ImageDestination // by digest; replaced after a transient failure
	gen     int                    // bumped when dest is replaced
	retired []types.ImageDestination
	closed  bool
	// admitted is set once the registry has accepted a request: a refusal
	// after that is a stale token, not wrong credentials.
	admitted atomic.Bool
}

// Destination returns a Destination for repo (a repository, without tag or
// digest). It does not contact the registry yet.
func (c *Client) Destination(ctx context.Context, repo string) (*Destination, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, fmt.Errorf("invalid repository %q: %w", repo, err)
	}
	if !reference.IsNameOnly(named) {
		return nil, fmt.Errorf("invalid repository %q: give it without tag or digest", repo)
	}
	d := &Destination{c: c, repo: named}
	if d.dest, err = d.newDest(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Repository returns the normalized repository name.
func (d *Destination) Repository() string { return d.repo.String() }

// HasBlob reports whether the repository already holds blob dg. It looks in
// this repository only: no mounting from others, no substitutes.
func (d *Destination) HasBlob(ctx context.Context, dg digest.Digest, size int64) (bool, error) {
	if err := dg.Validate(); err != nil {
		return false, fmt.Errorf("checking blob in %s: invalid digest %q: %w", d.repo, dg, err)
	}
	var found bool
	err := d.do(ctx, d.c.opts.Retry, fmt.Sprintf("checking blob %s@%s", d.repo, dg), func(ctx context.Context, dest types.ImageDestination, _ *watchdog) error {
		ok, _, err := dest.TryReusingBlob(ctx, types.BlobInfo{Digest: dg, Size: size}, none.NoCache, false)
		if err != nil {
			return fmt.Errorf("checking blob %s@%s: %w", d.repo, dg, classify(err))
		}
		found = ok
		return nil
	})
	return found, err
}

// accessProbe is the blob CheckAccess asks for: no registry holds it, so
// the answer is a plain "not here" once the registry has let ferry in.
var accessProbe = digest.FromString("ferry: may this client push here?")

// CheckAccess makes one small authenticated request with push rights (a
// HEAD of a blob no registry holds, for which containers/image fetches a
// pull-and-push token) and changes nothing: a registry that is down, that
// ferry does not trust, or whose credentials are wrong fails here, before
// the long work whose result it would refuse.
func (d *Destination) CheckAccess(ctx context.Context) error {
	if _, err := d.HasBlob(ctx, accessProbe, -1); err != nil {
		return fmt.Errorf("checking access to %s: %w", d.repo, err)
	}
	return nil
}

// PutBlob uploads blob dg of size bytes (or -1 if unknown) from r, unless the
// repository already has it. The content is verified as it streams and the
// upload is abandoned, before the registry makes the blob visible, if it does
// not match. A failed upload is retried only when r is an io.Seeker (it is
// rewound); otherwise the caller retries with a fresh reader.
func (d *Destination) PutBlob(ctx context.Context, r io.Reader, dg digest.Digest, size int64) error {
	return d.putBlob(ctx, r, dg, size, true)
}

// PutVerifiedBlob is PutBlob for content the caller has just hashed against
// dg itself (apply reads blobs from a bundle it verified moments before): it
// skips the second client-side hash, one full pass over the data, and
// leaves the check to the registry, which the distribution spec requires to
// refuse an upload whose content does not match the digest it is committed
// under, before the blob becomes visible.
func (d *Destination) PutVerifiedBlob(ctx context.Context, r io.Reader, dg digest.Digest, size int64) error {
	return d.putBlob(ctx, r, dg, size, false)
}

func (d *Destination) putBlob(ctx context.Context, r io.Reader, dg digest.Digest, size int64, check bool) error {
	if err := dg.Validate(); err != nil {
		return fmt.Errorf("pushing blob to %s: invalid digest %q: %w", d.repo, dg, err)
	}
	policy := d.c.opts.Retry
	seeker, rewindable := r.(io.Seeker)
	if !rewindable {
		policy.Attempts = 1
	}
	first := true
	return d.do(ctx, policy, fmt.Sprintf("pushing blob %s@%s", d.repo, dg), func(ctx context.Context, dest types.ImageDestination, w *watchdog) error {
		if !first {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("pushing blob %s@%s: rewinding: %w", d.repo, dg, err)
			}
		}
		first = false
		stream, failed := r, func() error { return nil }
		if check {
			vr := newVerifyingReader(r, dg, size)
			stream, failed = vr, vr.failed
		}
		info, err := dest.PutBlob(ctx, sendingReader{r: stream, w: w}, types.BlobInfo{Digest: dg, Size: size}, none.NoCache, false)
		if verr := failed(); verr != nil {
			return fmt.Errorf("pushing blob %s@%s: %w", d.repo, dg, verr)
		}
		if err != nil {
			return fmt.Errorf("pushing blob %s@%s: %w", d.repo, dg, classify(err))
		}
		if info.Digest != dg {
			return fmt.Errorf("pushing blob %s@%s: %w: the registry stored %s", d.repo, dg, ErrDigestMismatch, info.Digest)
		}
		return nil
	})
}

// PutManifest pushes data, byte for byte, as the manifest with digest dg.
// Every blob and child manifest it references must be pushed first.
func (d *Destination) PutManifest(ctx context.Context, data []byte, dg digest.Digest) error {
	if err := checkManifestBytes(data, dg); err != nil {
		return fmt.Errorf("pushing manifest %s@%s: %w", d.repo, dg, err)
	}
	return d.do(ctx, d.c.opts.Retry, fmt.Sprintf("pushing manifest %s@%s", d.repo, dg), func(ctx context.Context, dest types.ImageDestination, _ *watchdog) error {
		if err := dest.PutManifest(ctx, data, nil); err != nil {
			return fmt.Errorf("pushing manifest %s@%s: %w", d.repo, dg, classify(err))
		}
		return nil
	})
}

// Tag pushes data, byte for byte, under tag: the tag then points at the
// manifest with data's digest. Push everything it references first, so the
// tag never names an incomplete image.
func (d *Destination) Tag(ctx context.Context, tag string, data []byte) error {
	named, err := reference.WithTag(d.repo, tag)
	if err != nil {
		return fmt.Errorf("tagging %s:%s: invalid tag: %w", d.repo, tag, err)
	}
	if err := checkManifestBytes(data, digest.FromBytes(data)); err != nil {
		return fmt.Errorf("tagging %s: %w", named, err)
	}
	return d.c.do(ctx, "tagging "+named.String(), func(ctx context.Context) (err error) {
		ir, err := docker.NewReference(named)
		if err != nil {
			return fmt.Errorf("tagging %s: %w", named, err)
		}
		dest, err := ir.NewImageDestination(ctx, d.c.sys)
		if err != nil {
			return fmt.Errorf("tagging %s: %w", named, classify(err))
		}
		defer fileio.CloseInto(&err, dest, "destination "+named.String())
		if err := dest.PutManifest(ctx, data, nil); err != nil {
			// Each try has a destination, and so a token, of its own.
			return d.checkToken(fmt.Errorf("tagging %s: %w", named, classify(err)))
		}
		d.admitted.Store(true)
		return nil
	})
}

// Close releases the connections.
func (d *Destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var err error
	for _, dest := range append(d.retired, d.dest) {
		fileio.CloseInto(&err, dest, "destination "+d.repo.String())
	}
	d.retired, d.dest = nil, nil
	return err
}

// do runs fn under Do with the current by-digest destination, each attempt
// within the time bounds (w is its watchdog, for streams). After a
// transient failure the destination is replaced before the next attempt:
// containers/image remembers a failed first contact with a registry for the
// life of its client, so only a new one can recover from it.
//
// A refusal (401, 403) after the registry has accepted this Destination is a
// token revoked or expired early: the destination is replaced, with a fresh
// token, and the operation tried again.
func (d *Destination) do(ctx context.Context, p RetryPolicy, op string, fn func(context.Context, types.ImageDestination, *watchdog) error) error {
	return Do(ctx, p, op, func(ctx context.Context) error {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return fmt.Errorf("%s: destination %s is closed", op, d.repo)
		}
		dest, gen := d.dest, d.gen
		d.mu.Unlock()

		err := bounded(ctx, d.c.opts.Timeouts, op, func(ctx context.Context, w *watchdog) error { return fn(ctx, dest, w) })
		if err == nil {
			d.admitted.Store(true)
			return nil
		}
		err = d.checkToken(err)
		if IsTransient(err) {
			d.replace(ctx, gen)
		}
		return err
	})
}

// checkToken marks a refusal as a stale token when the registry had
// accepted this Destination before; wrong credentials are never accepted,
// so they still fail at once.
func (d *Destination) checkToken(err error) error {
	if !d.admitted.Load() || !errors.Is(err, ErrUnauthorized) {
		return err
	}
	return &staleTokenError{err}
}

// replace swaps in a new destination unless another worker already did
// since generation gen. The old one may still be in use by other workers, so
// it is closed with the Destination.
func (d *Destination) replace(ctx context.Context, gen int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gen != gen || d.closed {
		return
	}
	fresh, err := d.newDest(ctx)
	if err != nil {
		return // keep the old one; the next attempt reports the failure
	}
	d.retired = append(d.retired, d.dest)
	d.dest, d.gen = fresh, d.gen+1
}

func (d *Destination) newDest(ctx context.Context) (types.ImageDestination, error) {
	ir, err := docker.NewReferenceUnknownDigest(d.repo)
	if err != nil {
		return nil, fmt.Errorf("pushing to %s: %w", d.repo, err)
	}
	dest, err := ir.NewImageDestination(ctx, d.c.sys)
	if err != nil {
		return nil, fmt.Errorf("pushing to %s: %w", d.repo, classify(err))
	}
	return dest, nil
}

// checkManifestBytes checks that data is a manifest registries will store
// under digest dg: within the size cap, sha256, and not a signed schema 1
// manifest (whose registry digest is not the digest of its bytes).
func checkManifestBytes(data []byte, dg digest.Digest) error {
	if len(data) > MaxManifestSize {
		return fmt.Errorf("manifest larger than %d bytes", MaxManifestSize)
	}
	if err := dg.Validate(); err != nil {
		return fmt.Errorf("invalid digest %q: %w", dg, err)
	}
	if dg.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %s: only sha256 manifests can be pushed", dg)
	}
	if got := digest.FromBytes(data); got != dg {
		return fmt.Errorf("%w: the bytes given have digest %s", ErrDigestMismatch, got)
	}
	if got, err := manifest.Digest(data); err != nil || got != dg {
		return fmt.Errorf("a signed schema 1 manifest cannot be pushed byte for byte")
	}
	return nil
}
