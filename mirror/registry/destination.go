package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// Destination writes blobs, manifests and tags into one repository. Manifests
// are pushed exactly as given, never converted, so their digests survive. It
// is safe for concurrent use, and shares its Client's connections to the
// registry. Close it when done.
type Destination struct {
	c      *Client
	repo   reference.Named
	h      *hostClient
	auth   types.DockerAuthConfig
	closed atomic.Bool
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
	h, auth, err := c.access(named, "pushing to")
	if err != nil {
		return nil, err
	}
	return &Destination{c: c, repo: named, h: h, auth: auth}, nil
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
	op := fmt.Sprintf("checking blob %s@%s", d.repo, dg)
	err := d.do(ctx, d.c.opts.Retry, op, func(ctx context.Context, _ *watchdog) error {
		resp, err := d.send(ctx, request{method: http.MethodHead, path: apiPath(d.repo, "blobs/"+dg.String())})
		if err != nil {
			return fmt.Errorf("%s: %w", op, classify(err))
		}
		defer drainClose(resp)
		switch resp.StatusCode {
		case http.StatusOK:
			found = true
			d.c.homes.record(d.repo, dg)
			return nil
		case http.StatusNotFound:
			found = false
			return nil
		}
		return fmt.Errorf("%s: %w", op, classify(statusErrorOf(resp)))
	})
	return found, err
}

// accessProbe is the blob CheckAccess asks for: no registry holds it, so
// the answer is a plain "not here" once the registry has let ferry in.
var accessProbe = digest.FromString("ferry: may this client push here?")

// CheckAccess makes one small authenticated request with push rights (a
// HEAD of a blob no registry holds, with a pull-and-push token) and
// changes nothing: a registry that is down, that ferry does not trust, or
// whose credentials are wrong fails here, before the long work whose
// result it would refuse.
func (d *Destination) CheckAccess(ctx context.Context) error {
	if _, err := d.HasBlob(ctx, accessProbe, -1); err != nil {
		return fmt.Errorf("checking access to %s: %w", d.repo, err)
	}
	return nil
}

// PutBlob uploads blob dg of size bytes (or -1 if unknown) from r. It does
// not look whether the repository holds the blob already (HasBlob does):
// callers check once, and the upload does not check again. The content is
// verified as it streams and the upload is abandoned, before the registry
// makes the blob visible, if it does not match. A failed upload is retried
// only when r is an io.Seeker (it is rewound); otherwise the caller retries
// with a fresh reader.
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
	op := fmt.Sprintf("pushing blob %s@%s", d.repo, dg)
	return d.do(ctx, policy, op, func(ctx context.Context, w *watchdog) error {
		for {
			if !first {
				if _, err := seeker.Seek(0, io.SeekStart); err != nil {
					return fmt.Errorf("%s: rewinding: %w", op, err)
				}
			}
			first = false
			stream, failed := r, func() error { return nil }
			if check {
				vr := newVerifyingReader(r, dg, size)
				stream, failed = vr, vr.failed
			}
			err := d.upload(ctx, blobUpload{op: op, digest: dg, size: size, body: sendingReader{r: stream, w: w}})
			if isMonolithicRefusal(err) && rewindable {
				continue // chunked from now on
			}
			if verr := failed(); verr != nil {
				return fmt.Errorf("%s: %w", op, verr)
			}
			return err
		}
	})
}

// PutManifest pushes data, byte for byte, as the manifest with digest dg.
// Every blob and child manifest it references must be pushed first.
func (d *Destination) PutManifest(ctx context.Context, data []byte, dg digest.Digest) error {
	if err := checkManifestBytes(data, dg); err != nil {
		return fmt.Errorf("pushing manifest %s@%s: %w", d.repo, dg, err)
	}
	op := fmt.Sprintf("pushing manifest %s@%s", d.repo, dg)
	return d.do(ctx, d.c.opts.Retry, op, func(ctx context.Context, _ *watchdog) error {
		return d.putManifest(ctx, op, dg.String(), data)
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
	op := "tagging " + named.String()
	return d.do(ctx, d.c.opts.Retry, op, func(ctx context.Context, _ *watchdog) error {
		return d.putManifest(ctx, op, tag, data)
	})
}

// putManifest PUTs data as the manifest tagOrDigest, with the media type
// its bytes declare (as containers/image does).
func (d *Destination) putManifest(ctx context.Context, op, tagOrDigest string, data []byte) error {
	header := http.Header{"Content-Type": {manifest.GuessMIMEType(data)}}
	resp, err := d.send(ctx, request{method: http.MethodPut, path: apiPath(d.repo, "manifests/"+tagOrDigest),
		header: header, body: bytes.NewReader(data), size: int64(len(data)), replayable: true})
	if err != nil {
		return fmt.Errorf("%s: %w", op, classify(err))
	}
	defer drainClose(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %w", op, classify(statusErrorOf(resp)))
	}
	return nil
}

// Close ends the Destination; the connections stay with the Client.
func (d *Destination) Close() error {
	d.closed.Store(true)
	return nil
}

// do runs fn under Do, each attempt within the time bounds (w is its
// watchdog, for streams).
func (d *Destination) do(ctx context.Context, p RetryPolicy, op string, fn func(context.Context, *watchdog) error) error {
	return Do(ctx, p, op, func(ctx context.Context) error {
		if d.closed.Load() {
			return fmt.Errorf("%s: destination %s is closed", op, d.repo)
		}
		return bounded(ctx, d.c.opts.Timeouts, op, fn)
	})
}

// send sends r to the registry with the credentials and push scope of the
// repository.
func (d *Destination) send(ctx context.Context, r request) (*http.Response, error) {
	r.auth = d.auth
	if r.scopes == nil {
		r.scopes = []string{pushScope(d.repo)}
	}
	return d.h.do(ctx, r)
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
