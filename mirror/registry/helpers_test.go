package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/retry"
)

const (
	mediaTypeSchema2 = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeOCI     = "application/vnd.oci.image.manifest.v1+json"
)

// testOptions are for the plain-HTTP test registries: no TLS, an auth file
// that does not exist (so the host's credentials never leak in), and fast
// retries that count themselves.
func testOptions(t *testing.T, retries *atomic.Int32) Options {
	t.Helper()
	return Options{
		AuthFile:  filepath.Join(t.TempDir(), "auth.json"),
		TLSVerify: false,
		UserAgent: "ferry-test",
		Retry: RetryPolicy{
			Attempts: 4, Base: time.Millisecond, Max: 5 * time.Millisecond,
			OnRetry: func(retry.Event) {
				if retries != nil {
					retries.Add(1)
				}
			},
		},
	}
}

// pushBlob uploads data with the two-request monolithic upload.
func pushBlob(t *testing.T, base, repo string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting upload to %s: %s", repo, resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("uploading blob %s to %s: %s", d, repo, resp.Status)
	}
	return d
}

// pushManifest stores data under ref (a tag or digest) as mediaType.
func pushManifest(t *testing.T, base, repo, ref, mediaType string, data []byte) digest.Digest {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(data))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing manifest %s:%s: %s: %s", repo, ref, resp.Status, body)
	}
	return digest.FromBytes(data)
}

type blob struct {
	data      []byte
	digest    digest.Digest
	mediaType string
}

func newBlob(data []byte, mediaType string) blob {
	return blob{data: data, digest: digest.FromBytes(data), mediaType: mediaType}
}

// image is a small synthetic image: a config and one layer.
type image struct {
	config, layer blob
	manifest      []byte
	digest        digest.Digest
	mediaType     string
}

// makeImage builds an image whose content depends on seed. Its manifest is
// indented oddly on purpose: only a byte-for-byte copy keeps its digest.
func makeImage(seed, arch string) image {
	cfg := newBlob([]byte(fmt.Sprintf(`{"architecture":%q,"os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`, arch)),
		"application/vnd.docker.container.image.v1+json")
	layer := newBlob(bytes.Repeat([]byte(seed), 1000), "application/vnd.docker.image.rootfs.diff.tar.gzip")
	m := fmt.Sprintf("{\n   \"schemaVersion\": 2,\n   \"mediaType\": %q,\n   \"config\": {\"mediaType\": %q, \"size\": %d, \"digest\": %q},\n"+
		"   \"layers\": [ {\"mediaType\": %q, \"size\": %d, \"digest\": %q} ]\n}",
		mediaTypeSchema2, cfg.mediaType, len(cfg.data), cfg.digest, layer.mediaType, len(layer.data), layer.digest)
	return image{config: cfg, layer: layer, manifest: []byte(m), digest: digest.FromBytes([]byte(m)), mediaType: mediaTypeSchema2}
}

func (img image) blobs() []blob { return []blob{img.config, img.layer} }

// push stores the image in repo, by digest and, if tag is set, by tag.
func (img image) push(t *testing.T, base, repo, tag string) {
	t.Helper()
	for _, b := range img.blobs() {
		pushBlob(t, base, repo, b.data)
	}
	pushManifest(t, base, repo, img.digest.String(), img.mediaType, img.manifest)
	if tag != "" {
		pushManifest(t, base, repo, tag, img.mediaType, img.manifest)
	}
}

// makeList builds a manifest list of the images.
func makeList(imgs ...image) []byte {
	var entries []string
	for i, img := range imgs {
		entries = append(entries, fmt.Sprintf(`{"mediaType":%q,"size":%d,"digest":%q,"platform":{"architecture":"arch%d","os":"linux"}}`,
			img.mediaType, len(img.manifest), img.digest, i))
	}
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[%s]}`, mediaTypeList, strings.Join(entries, ",")))
}

// proxy puts a fault-injecting handler in front of a real registry. rule
// sees each request with the number of times its method and path have been
// requested (this one included) and returns true when it answered itself.
type proxy struct {
	URL  string
	Host string

	mu     sync.Mutex
	counts map[string]int
	rule   func(w http.ResponseWriter, r *http.Request, n int) bool
}

func newProxy(t *testing.T, target *testbed.Registry, rule func(w http.ResponseWriter, r *http.Request, n int) bool) *proxy {
	t.Helper()
	u, err := url.Parse(target.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the Host header: Locations point at the proxy
	p := &proxy{counts: map[string]int{}, rule: rule}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.hit(r.Method + " " + r.URL.Path)
		if p.rule != nil && p.rule(w, r, n) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *proxy) hit(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[key]++
	return p.counts[key]
}

// count returns how often method and path were requested.
func (p *proxy) count(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method+" "+path]
}

// truncate answers 200 with a Content-Length it does not honour, then drops
// the connection: the client sees an unexpected EOF mid-body.
func truncate(w http.ResponseWriter) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: 1000\r\n\r\n{\"schemaVersion\":", mediaTypeSchema2)
	buf.Flush()
	conn.Close()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
