package testbed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types the test bed writes besides the OCI ones of image-spec.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// MediaTypeCosignPayload is the layer of a cosign signature image.
	MediaTypeCosignPayload = "application/vnd.dev.cosign.simplesigning.v1+json"
	// CosignSignatureAnnotation holds the base64 signature on that layer.
	CosignSignatureAnnotation = "dev.cosignproject.cosign/signature"
)

// manifestAccept is every manifest type the test bed pushes, for GET and HEAD.
var manifestAccept = strings.Join([]string{
	MediaTypeDockerManifest, MediaTypeDockerManifestList,
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
}, ", ")

// Read caps. The registry is ours, but a bug must not eat the test's memory.
const (
	maxManifestBytes = 4 << 20  // distribution refuses larger manifests too
	maxErrorBody     = 4 << 10  // kept in StatusError
	maxListBody      = 16 << 20 // one page of _catalog or tags/list
	maxBlobBytes     = 64 << 20 // GetBlob; use OpenBlob for bigger blobs
	listPageSize     = 50       // small, so that tests exercise pagination
)

// ErrNotFound matches, with errors.Is, a StatusError whose status is 404.
var ErrNotFound = errors.New("not found")

// StatusError is a registry answer with an unexpected HTTP status.
type StatusError struct {
	Method     string
	URL        string
	StatusCode int
	// Body is the start of the response body (the registry's error JSON).
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.StatusCode,
		http.StatusText(e.StatusCode), strings.TrimSpace(e.Body))
}

// Is makes errors.Is(err, ErrNotFound) true for a 404.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// httpClient is shared by every Client without its own: the registries are
// local, so no proxy, and enough idle connections for parallel pushes.
var httpClient = &http.Client{Transport: &http.Transport{
	Proxy:               nil,
	DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	MaxIdleConns:        64,
	MaxIdleConnsPerHost: 16,
	IdleConnTimeout:     30 * time.Second,
}}

// Client speaks the distribution API v2 over plain HTTP (or HTTPS) to one registry,
// without authentication. Every method is safe for concurrent use and
// returns errors rather than failing a test, so it works in goroutines.
type Client struct {
	// Host is "host:port", as in Registry.Host.
	Host string
	// HTTP, if set, replaces the shared client.
	HTTP *http.Client
	// HTTPS speaks TLS (with HTTP's trust, e.g. a test CA) instead of plain
	// HTTP.
	HTTPS bool
}

// NewClient returns a client for the registry at host ("127.0.0.1:port").
func NewClient(host string) *Client { return &Client{Host: host} }

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return httpClient
}

func (c *Client) url(path string) string {
	if c.HTTPS {
		return "https://" + c.Host + path
	}
	return "http://" + c.Host + path
}

// do sends a request and checks its status against want; on any other status
// the body is read (capped) into a StatusError and the response closed.
func (c *Client) do(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	return nil, &StatusError{Method: req.Method, URL: req.URL.String(), StatusCode: resp.StatusCode, Body: string(body)}
}

func (c *Client) newRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, method, u, body)
}

// drain reads what is left of a small response body and closes it, so the
// connection is reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
}

// BlobExists reports whether repo has the blob d (HEAD).
func (c *Client) BlobExists(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	req, err := c.newRequest(ctx, http.MethodHead, c.url("/v2/"+repo+"/blobs/"+d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := c.do(req, http.StatusOK)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking blob %s in %s: %w", d, repo, err)
	}
	drain(resp)
	return true, nil
}

// startUpload opens an upload session and returns its absolute location.
func (c *Client) startUpload(ctx context.Context, repo string, query url.Values) (loc *url.URL, mounted bool, err error) {
	u := c.url("/v2/" + repo + "/blobs/uploads/")
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := c.newRequest(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.do(req, http.StatusAccepted, http.StatusCreated)
	if err != nil {
		return nil, false, err
	}
	drain(resp)
	if resp.StatusCode == http.StatusCreated {
		return nil, true, nil
	}
	loc, err = c.location(resp)
	return loc, false, err
}

// location resolves a response's Location header against the registry.
func (c *Client) location(resp *http.Response) (*url.URL, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return nil, fmt.Errorf("%s %s: no Location in the answer", resp.Request.Method, resp.Request.URL)
	}
	return resp.Request.URL.Parse(l)
}

func withDigest(loc *url.URL, d digest.Digest) string {
	u := *loc
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return u.String()
}

// cancelUpload deletes an upload session, best effort (it is only litter).
func (c *Client) cancelUpload(loc *url.URL) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodDelete, loc.String(), nil)
	if err != nil {
		return
	}
	if resp, err := c.do(req, http.StatusNoContent, http.StatusAccepted, http.StatusOK); err == nil {
		drain(resp)
	}
}

// PushBlob uploads data to repo in one request (POST, then PUT with
// ?digest=) unless the blob is already there, and returns its digest.
func (c *Client) PushBlob(ctx context.Context, repo string, data []byte) (digest.Digest, error) {
	d := digest.FromBytes(data)
	ok, err := c.BlobExists(ctx, repo, d)
	if err != nil || ok {
		return d, err
	}
	return d, c.uploadBlob(ctx, repo, d, data)
}

// uploadBlob is PushBlob without the check for an existing blob.
func (c *Client) uploadBlob(ctx context.Context, repo string, d digest.Digest, data []byte) error {
	loc, _, err := c.startUpload(ctx, repo, nil)
	if err != nil {
		return fmt.Errorf("pushing blob %s to %s: %w", d, repo, err)
	}
	req, err := c.newRequest(ctx, http.MethodPut, withDigest(loc, d), bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req, http.StatusCreated)
	if err != nil {
		c.cancelUpload(loc)
		return fmt.Errorf("pushing blob %s to %s: %w", d, repo, err)
	}
	drain(resp)
	return nil
}

// PushBlobFrom streams r to repo (POST, one PATCH with the whole stream,
// then PUT with ?digest=), hashing as it goes, so a blob of any size is
// never held in memory. It returns the digest and size of what was sent.
// It does not check for an existing blob: the digest is not known before.
func (c *Client) PushBlobFrom(ctx context.Context, repo string, r io.Reader) (digest.Digest, int64, error) {
	loc, _, err := c.startUpload(ctx, repo, nil)
	if err != nil {
		return "", 0, fmt.Errorf("pushing a blob to %s: %w", repo, err)
	}
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(r, h)}
	req, err := c.newRequest(ctx, http.MethodPatch, loc.String(), cr)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req, http.StatusAccepted, http.StatusNoContent)
	if err != nil {
		c.cancelUpload(loc)
		return "", 0, fmt.Errorf("pushing a blob to %s: %w", repo, err)
	}
	drain(resp)
	if next, err := c.location(resp); err == nil {
		loc = next
	}
	d := digest.NewDigest(digest.SHA256, h)
	req, err = c.newRequest(ctx, http.MethodPut, withDigest(loc, d), http.NoBody)
	if err != nil {
		return "", 0, err
	}
	resp, err = c.do(req, http.StatusCreated)
	if err != nil {
		c.cancelUpload(loc)
		return "", 0, fmt.Errorf("pushing blob %s to %s: %w", d, repo, err)
	}
	drain(resp)
	return d, cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// MountBlob asks the registry to link blob d from repository from into
// repo without an upload. It reports false when the registry declined (the
// blob is not in from), in which case nothing changed.
func (c *Client) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (bool, error) {
	loc, mounted, err := c.startUpload(ctx, repo, url.Values{"mount": {d.String()}, "from": {from}})
	if err != nil {
		return false, fmt.Errorf("mounting blob %s from %s into %s: %w", d, from, repo, err)
	}
	if !mounted {
		c.cancelUpload(loc)
	}
	return mounted, nil
}

// OpenBlob returns the blob's content as served; the caller closes it and
// verifies the digest if it cares.
func (c *Client) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	req, err := c.newRequest(ctx, http.MethodGet, c.url("/v2/"+repo+"/blobs/"+d.String()), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return nil, 0, fmt.Errorf("fetching blob %s from %s: %w", d, repo, err)
	}
	return resp.Body, resp.ContentLength, nil
}

// GetBlob returns a blob of at most 64 MiB, checked against its digest.
func (c *Client) GetBlob(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	rc, _, err := c.OpenBlob(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	data, err := readCapped(rc, maxBlobBytes)
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s from %s: %w", d, repo, err)
	}
	if got := digest.FromBytes(data); got != d {
		return nil, fmt.Errorf("fetching blob %s from %s: content has digest %s", d, repo, got)
	}
	return data, nil
}

// DeleteBlob removes blob d from repo (the registries here allow deletes):
// for tests of a source that lost a blob.
func (c *Client) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	return c.delete(ctx, "/v2/"+repo+"/blobs/"+d.String())
}

// DeleteManifest removes manifest d, and every tag pointing at it, from repo.
func (c *Client) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return c.delete(ctx, "/v2/"+repo+"/manifests/"+d.String())
}

func (c *Client) delete(ctx context.Context, path string) error {
	req, err := c.newRequest(ctx, http.MethodDelete, c.url(path), nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req, http.StatusAccepted, http.StatusOK, http.StatusNoContent)
	if err != nil {
		return fmt.Errorf("deleting %s: %w", path, err)
	}
	drain(resp)
	return nil
}

// PushManifest stores data as a manifest of mediaType in repo under
// reference (a tag or a digest) and returns its digest, the sha256 of data.
// Every blob and child manifest it names must be in repo already.
func (c *Client) PushManifest(ctx context.Context, repo, reference, mediaType string, data []byte) (digest.Digest, error) {
	d := digest.FromBytes(data)
	if rd, err := digest.Parse(reference); err == nil && rd != d {
		return "", fmt.Errorf("pushing manifest %s to %s@%s: content has another digest", d, repo, rd)
	}
	req, err := c.newRequest(ctx, http.MethodPut, c.url("/v2/"+repo+"/manifests/"+reference), bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := c.do(req, http.StatusCreated)
	if err != nil {
		return "", fmt.Errorf("pushing manifest to %s:%s: %w", repo, reference, err)
	}
	drain(resp)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return "", fmt.Errorf("pushing manifest to %s:%s: registry says digest %s, content is %s", repo, reference, got, d)
	}
	return d, nil
}

// GetManifest returns a manifest's bytes exactly as served and its media
// type. A manifest asked for by digest is checked against it.
func (c *Client) GetManifest(ctx context.Context, repo, reference string) (data []byte, mediaType string, err error) {
	req, err := c.newRequest(ctx, http.MethodGet, c.url("/v2/"+repo+"/manifests/"+reference), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return nil, "", fmt.Errorf("fetching manifest %s:%s: %w", repo, reference, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err = readCapped(resp.Body, maxManifestBytes)
	if err != nil {
		return nil, "", fmt.Errorf("fetching manifest %s:%s: %w", repo, reference, err)
	}
	if rd, perr := digest.Parse(reference); perr == nil && digest.FromBytes(data) != rd {
		return nil, "", fmt.Errorf("fetching manifest %s@%s: content has digest %s", repo, rd, digest.FromBytes(data))
	}
	return data, resp.Header.Get("Content-Type"), nil
}

// HeadManifest returns the descriptor (media type, digest, size) of the
// manifest that reference names, without fetching it.
func (c *Client) HeadManifest(ctx context.Context, repo, reference string) (ocispec.Descriptor, error) {
	req, err := c.newRequest(ctx, http.MethodHead, c.url("/v2/"+repo+"/manifests/"+reference), nil)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("checking manifest %s:%s: %w", repo, reference, err)
	}
	drain(resp)
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("checking manifest %s:%s: Docker-Content-Digest: %w", repo, reference, err)
	}
	return ocispec.Descriptor{MediaType: resp.Header.Get("Content-Type"), Digest: d, Size: resp.ContentLength}, nil
}

// Catalog lists every repository in the registry, following pagination.
func (c *Client) Catalog(ctx context.Context) ([]string, error) {
	all, err := c.listNames(ctx, fmt.Sprintf("/v2/_catalog?n=%d", listPageSize))
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	return all, nil
}

// Tags lists repo's tags, following pagination. A repository that does not
// exist is an error matching ErrNotFound.
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	all, err := c.listNames(ctx, fmt.Sprintf("/v2/%s/tags/list?n=%d", repo, listPageSize))
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
	}
	return all, nil
}

// listNames gathers the names of every page of a catalog ("repositories")
// or tag list ("tags") at path.
func (c *Client) listNames(ctx context.Context, path string) ([]string, error) {
	var all []string
	err := c.list(ctx, path, func(body []byte) error {
		var page struct {
			Repositories []string `json:"repositories"`
			Tags         []string `json:"tags"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return err
		}
		all = append(append(all, page.Repositories...), page.Tags...)
		return nil
	})
	return all, err
}

// list GETs path and every page its Link headers name.
func (c *Client) list(ctx context.Context, path string, page func([]byte) error) error {
	next := c.url(path)
	for next != "" {
		req, err := c.newRequest(ctx, http.MethodGet, next, nil)
		if err != nil {
			return err
		}
		resp, err := c.do(req, http.StatusOK)
		if err != nil {
			return err
		}
		body, err := readCapped(resp.Body, maxListBody)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		if err := page(body); err != nil {
			return fmt.Errorf("%s: %w", next, err)
		}
		next = ""
		if l := nextLink(resp.Header.Get("Link")); l != "" {
			u, err := resp.Request.URL.Parse(l)
			if err != nil {
				return fmt.Errorf("link %q: %w", l, err)
			}
			next = u.String()
		}
	}
	return nil
}

// nextLink extracts the target of a `<url>; rel="next"` Link header.
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if !strings.Contains(part, `rel="next"`) {
			continue
		}
		if i, j := strings.Index(part, "<"), strings.Index(part, ">"); i >= 0 && j > i {
			return part[i+1 : j]
		}
	}
	return ""
}

// readCapped reads r whole, failing if it holds more than limit bytes.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return data, nil
}

// Client returns a Client for this registry.
func (r *Registry) Client() *Client { return NewClient(r.Host) }

// BlobExists is Client.BlobExists on this registry.
func (r *Registry) BlobExists(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	return r.Client().BlobExists(ctx, repo, d)
}

// PushBlob is Client.PushBlob on this registry.
func (r *Registry) PushBlob(ctx context.Context, repo string, data []byte) (digest.Digest, error) {
	return r.Client().PushBlob(ctx, repo, data)
}

// PushBlobFrom is Client.PushBlobFrom on this registry.
func (r *Registry) PushBlobFrom(ctx context.Context, repo string, rd io.Reader) (digest.Digest, int64, error) {
	return r.Client().PushBlobFrom(ctx, repo, rd)
}

// MountBlob is Client.MountBlob on this registry.
func (r *Registry) MountBlob(ctx context.Context, repo, from string, d digest.Digest) (bool, error) {
	return r.Client().MountBlob(ctx, repo, from, d)
}

// GetBlob is Client.GetBlob on this registry.
func (r *Registry) GetBlob(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	return r.Client().GetBlob(ctx, repo, d)
}

// OpenBlob is Client.OpenBlob on this registry.
func (r *Registry) OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	return r.Client().OpenBlob(ctx, repo, d)
}

// DeleteBlob is Client.DeleteBlob on this registry.
func (r *Registry) DeleteBlob(ctx context.Context, repo string, d digest.Digest) error {
	return r.Client().DeleteBlob(ctx, repo, d)
}

// PushManifest is Client.PushManifest on this registry.
func (r *Registry) PushManifest(ctx context.Context, repo, reference, mediaType string, data []byte) (digest.Digest, error) {
	return r.Client().PushManifest(ctx, repo, reference, mediaType, data)
}

// GetManifest is Client.GetManifest on this registry.
func (r *Registry) GetManifest(ctx context.Context, repo, reference string) ([]byte, string, error) {
	return r.Client().GetManifest(ctx, repo, reference)
}

// HeadManifest is Client.HeadManifest on this registry.
func (r *Registry) HeadManifest(ctx context.Context, repo, reference string) (ocispec.Descriptor, error) {
	return r.Client().HeadManifest(ctx, repo, reference)
}

// DeleteManifest is Client.DeleteManifest on this registry.
func (r *Registry) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return r.Client().DeleteManifest(ctx, repo, d)
}

// Catalog is Client.Catalog on this registry.
func (r *Registry) Catalog(ctx context.Context) ([]string, error) {
	return r.Client().Catalog(ctx)
}

// Tags is Client.Tags on this registry.
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	return r.Client().Tags(ctx, repo)
}
