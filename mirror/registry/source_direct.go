package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// directReader reads manifests and blobs of one repository through the
// Client's hostClient, on its shared connections: what a Source does for
// a repository that registries.conf sends nowhere else (see readsDirect).
type directReader struct {
	h      *hostClient
	repo   reference.Named
	auth   types.DockerAuthConfig
	scopes []string
}

// direct returns a directReader for repo, or nil when its reads must go
// through containers/image (a mirror or another location is configured).
func (c *Client) direct(repo reference.Named) (*directReader, error) {
	if !c.readsDirect(repo) {
		return nil, nil
	}
	h, auth, err := c.access(repo, "reading")
	if err != nil {
		return nil, err
	}
	return &directReader{h: h, repo: repo, auth: auth, scopes: []string{pullScope(repo)}}, nil
}

// manifest reads the manifest tagOrDigest names and checks it against the
// digest that names it, if any (named is the reference for messages).
func (r *directReader) manifest(ctx context.Context, named reference.Named, tagOrDigest string) (Manifest, error) {
	resp, err := r.h.do(ctx, request{method: http.MethodGet, path: apiPath(r.repo, "manifests/"+tagOrDigest),
		header: http.Header{"Accept": {strings.Join(manifest.DefaultRequestedManifestMIMETypes, ", ")}}, auth: r.auth, scopes: r.scopes})
	if err != nil {
		return Manifest{}, fmt.Errorf("reading manifest %s: %w", named, classify(err))
	}
	defer drainClose(resp)
	if resp.StatusCode != http.StatusOK {
		return Manifest{}, fmt.Errorf("reading manifest %s: %w", named, classify(statusErrorOf(resp)))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("reading manifest %s: %w", named, err)
	}
	if len(data) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("reading manifest %s: larger than %d bytes", named, MaxManifestSize)
	}
	got := digest.FromBytes(data)
	if want, err := digest.Parse(tagOrDigest); err == nil {
		if got = want.Algorithm().FromBytes(data); got != want {
			return Manifest{}, fmt.Errorf("reading manifest %s: %w: the registry served content with digest %s", named, ErrDigestMismatch, got)
		}
	}
	mediaType := simpleContentType(resp.Header.Get("Content-Type"))
	if mediaType == "" {
		mediaType = manifest.GuessMIMEType(data)
	}
	return Manifest{Repository: r.repo.String(), Digest: got, MediaType: mediaType, Bytes: data}, nil
}

// blob opens blob d; size is what the manifest says, or -1.
func (r *directReader) blob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	op := fmt.Sprintf("reading blob %s@%s", r.repo, d)
	resp, err := r.h.do(ctx, request{method: http.MethodGet, path: apiPath(r.repo, "blobs/"+d.String()), auth: r.auth, scopes: r.scopes})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, classify(err))
	}
	if resp.StatusCode != http.StatusOK {
		defer drainClose(resp)
		return nil, fmt.Errorf("%s: %w", op, classify(statusErrorOf(resp)))
	}
	if served := servedLength(resp); size >= 0 && served >= 0 && served != size {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w: the registry serves %d bytes, the manifest says %d", op, ErrDigestMismatch, served, size)
	}
	return resp.Body, nil
}

// servedLength is the length an answer announces, or -1.
func servedLength(resp *http.Response) int64 {
	if resp.ContentLength >= 0 {
		return resp.ContentLength
	}
	n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// simpleContentType is a Content-Type without its parameters.
func simpleContentType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt)
}
