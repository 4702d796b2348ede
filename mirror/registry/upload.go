package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// MonolithicUploadMax is the largest blob uploaded in one request after the
// POST that opens the upload (POST, then PUT with the body), instead of
// POST, PATCH with the body, then PUT: one round trip less per blob, which
// counts for the many small blobs of a release and not for its few large
// ones. A registry that refuses such uploads is sent the body a second
// time, chunked, once per run: this bound caps what that refusal wastes.
const MonolithicUploadMax = 16 << 20

// blobUpload is one upload of a blob.
type blobUpload struct {
	op     string
	digest digest.Digest
	size   int64 // -1: unknown
	body   io.Reader
}

// monolithicRefusedError is a registry's refusal of a blob sent in the PUT
// that completes an upload. The host is then sent chunked uploads only, so
// another try of the same upload succeeds: it is transient, and retried at
// once.
type monolithicRefusedError struct{ err error }

func (e *monolithicRefusedError) Error() string {
	return e.err.Error() + " (the registry refuses monolithic uploads: sending it chunked)"
}
func (e *monolithicRefusedError) Unwrap() error { return e.err }

// upload sends u into the repository: mounted from another repository of
// the registry that this Client saw holding it, or in one PUT when small
// enough and the registry takes that, or chunked.
func (d *Destination) upload(ctx context.Context, u blobUpload) error {
	loc, mounted, err := d.startUpload(ctx, u)
	if err != nil || mounted {
		return err
	}
	if d.h.monolithic(u.size) {
		err = d.finishUpload(ctx, u, loc, true)
	} else {
		err = d.putChunk(ctx, u, &loc)
		if err == nil {
			err = d.finishUpload(ctx, blobUpload{op: u.op, digest: u.digest}, loc, false)
		}
	}
	if err == nil {
		d.c.homes.record(d.repo, u.digest)
	}
	return err
}

// monolithic reports whether a blob of size bytes (-1: unknown) is sent
// in the PUT that completes its upload.
func (h *hostClient) monolithic(size int64) bool {
	return size >= 0 && size <= MonolithicUploadMax && !h.chunkedOnly.Load()
}

// startUpload opens an upload session (POST), asking the registry to
// mount the blob from a repository of the same registry that holds it, if
// the Client knows one. mounted reports that the registry did.
func (d *Destination) startUpload(ctx context.Context, u blobUpload) (loc *url.URL, mounted bool, err error) {
	path := apiPath(d.repo, "blobs/uploads/")
	scopes := []string{pushScope(d.repo)}
	if from, ok := d.c.homes.lookup(d.repo, u.digest); ok {
		path += "?" + url.Values{"mount": {u.digest.String()}, "from": {from}}.Encode()
		scopes = append(scopes, "repository:"+from+":pull")
	}
	resp, err := d.send(ctx, request{method: http.MethodPost, path: path, scopes: scopes})
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", u.op, classify(err))
	}
	defer drainClose(resp)
	switch resp.StatusCode {
	case http.StatusCreated:
		d.c.homes.record(d.repo, u.digest)
		return nil, true, nil
	case http.StatusAccepted:
		loc, err := resp.Location()
		if err != nil {
			return nil, false, fmt.Errorf("%s: the registry opened an upload without a valid Location: %w", u.op, err)
		}
		return loc, false, nil
	}
	return nil, false, fmt.Errorf("%s: %w", u.op, classify(statusErrorOf(resp)))
}

// putChunk sends the whole body in one PATCH and moves loc to the
// Location the registry answers with.
func (d *Destination) putChunk(ctx context.Context, u blobUpload, loc **url.URL) error {
	resp, err := d.send(ctx, request{method: http.MethodPatch, path: (*loc).String(),
		header: http.Header{"Content-Type": {"application/octet-stream"}}, body: u.body, size: u.size})
	if err != nil {
		return fmt.Errorf("%s: %w", u.op, classify(err))
	}
	defer drainClose(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %w", u.op, classify(statusErrorOf(resp)))
	}
	next, err := resp.Location()
	if err != nil {
		return fmt.Errorf("%s: the registry took the upload without a valid Location: %w", u.op, err)
	}
	*loc = next
	return nil
}

// finishUpload commits the upload at loc under u.digest (PUT), with u.body
// when monolithic.
func (d *Destination) finishUpload(ctx context.Context, u blobUpload, loc *url.URL, monolithic bool) error {
	target := *loc
	q := target.Query()
	q.Set("digest", u.digest.String())
	target.RawQuery = q.Encode()
	r := request{method: http.MethodPut, path: target.String(), header: http.Header{"Content-Type": {"application/octet-stream"}}}
	if monolithic {
		r.body, r.size = u.body, u.size
	}
	resp, err := d.send(ctx, r)
	if err != nil {
		return fmt.Errorf("%s: %w", u.op, classify(err))
	}
	defer drainClose(resp)
	if resp.StatusCode == http.StatusCreated {
		return nil
	}
	err = fmt.Errorf("%s: %w", u.op, classify(statusErrorOf(resp)))
	if monolithic && refusesMonolithic(resp.StatusCode, err) {
		d.h.chunkedOnly.Store(true)
		return &monolithicRefusedError{err}
	}
	return err
}

// refusesMonolithic tells a registry's refusal of a monolithic upload
// (400, 405, 411, 413, 416, ... on the PUT carrying the body) from a
// refusal of the blob itself (its digest or size) or of the client.
func refusesMonolithic(status int, err error) bool {
	switch {
	case status < 400 || status > 499:
		return false
	case status == http.StatusUnauthorized, status == http.StatusForbidden,
		status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return false
	}
	msg := err.Error()
	return !strings.Contains(msg, "DIGEST_INVALID") && !strings.Contains(msg, "SIZE_INVALID")
}

// statusErrorOf is the *StatusError of an unexpected answer.
func statusErrorOf(resp *http.Response) error {
	u := ""
	if resp.Request != nil && resp.Request.URL != nil {
		short := *resp.Request.URL
		// An upload's session state is long and says nothing to a reader.
		if q := short.Query(); q.Has("_state") {
			q.Del("_state")
			short.RawQuery = q.Encode()
		}
		u = short.Redacted()
	}
	err := statusError(u, resp).(*StatusError)
	if resp.Request != nil {
		err.Method = resp.Request.Method
	}
	return err
}

// blobHomes remembers, per registry host, a repository that holds each
// blob this Client pushed or found, so that a push of the same blob to
// another repository of that registry mounts it instead of sending it.
type blobHomes struct {
	mu sync.Mutex
	m  map[string]map[digest.Digest]string // host -> digest -> repository path
}

func (b *blobHomes) record(repo reference.Named, d digest.Digest) {
	host := reference.Domain(repo)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m[host] == nil {
		b.m[host] = map[digest.Digest]string{}
	}
	if _, ok := b.m[host][d]; !ok {
		b.m[host][d] = reference.Path(repo)
	}
}

// lookup returns another repository of repo's registry holding d.
func (b *blobHomes) lookup(repo reference.Named, d digest.Digest) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	from, ok := b.m[reference.Domain(repo)][d]
	return from, ok && from != reference.Path(repo)
}

// isMonolithicRefusal reports whether err is a refused monolithic upload.
func isMonolithicRefusal(err error) bool {
	var mr *monolithicRefusedError
	return errors.As(err, &mr)
}
