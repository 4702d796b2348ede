package testbed

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// CountingProxy is an HTTP proxy on 127.0.0.1 in front of a registry that
// counts what clients cost it: the TCP connections it accepts and the
// requests, by method and kind of path. It can also play a registry that
// refuses monolithic uploads (a PUT carrying the blob into an upload no
// PATCH went to), as some registries do. Requests keep the client's Host
// header, so a registry's Location headers name the proxy. It is stopped
// when the test ends.
type CountingProxy struct {
	// URL is "http://127.0.0.1:<port>"; Host is "127.0.0.1:<port>".
	URL, Host string

	server    *httptest.Server
	transport *http.Transport
	conns     atomic.Int64

	mu       sync.Mutex
	requests map[RequestKey]int
	opening  map[RequestKey]int // the first request of each connection
	refuse   int                // status answering a monolithic PUT; 0 lets it through
	patched  map[string]bool    // upload sessions a PATCH went to
}

// RequestKey is a kind of request: a method and what the path names.
type RequestKey struct {
	Method string
	Kind   PathKind
}

func (k RequestKey) String() string { return k.Method + " " + string(k.Kind) }

// PathKind is what a registry path names.
type PathKind string

// Kinds of registry paths.
const (
	KindPing     PathKind = "ping"     // /v2/
	KindManifest PathKind = "manifest" // /v2/<repo>/manifests/<ref>
	KindBlob     PathKind = "blob"     // /v2/<repo>/blobs/<digest>
	KindUpload   PathKind = "upload"   // /v2/<repo>/blobs/uploads/...
	KindTags     PathKind = "tags"     // /v2/<repo>/tags/list
	KindOther    PathKind = "other"    // anything else (a token endpoint, ...)
)

// proxyIdlePerHost is how many connections to the registry the proxy keeps:
// more than any test's clients use at once, so the proxy's own side never
// churns.
const proxyIdlePerHost = 64

// NewCountingProxy starts a CountingProxy in front of target, a base URL
// such as Registry.URL.
func NewCountingProxy(t testing.TB, target string) *CountingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		t.Fatalf("counting proxy: target %q is not a base URL", target)
	}
	p := &CountingProxy{
		transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost: proxyIdlePerHost,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true, // bodies go through byte for byte
		},
		requests: map[RequestKey]int{},
		opening:  map[RequestKey]int{},
		patched:  map[string]bool{},
	}
	forward := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = u.Scheme, u.Host
			pr.Out.Host = pr.In.Host
		},
		Transport: p.transport,
	}
	p.server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.count(r) {
			refuseUpload(w, r, p.refusal())
			return
		}
		forward.ServeHTTP(w, r)
	}))
	p.server.Listener = &countingListener{Listener: p.server.Listener, n: &p.conns}
	p.server.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connSeenKey{}, new(atomic.Bool))
	}
	p.server.Start()
	t.Cleanup(func() {
		p.server.CloseClientConnections()
		p.server.Close()
		p.transport.CloseIdleConnections()
	})
	p.URL = p.server.URL
	p.Host = strings.TrimPrefix(p.URL, "http://")
	return p
}

// RefuseMonolithic makes the proxy answer status (400, 416, ...) to a PUT
// that completes an upload with a body when no PATCH went to that upload,
// the way a registry that only takes chunked uploads does; 0 lets such
// uploads through again.
func (p *CountingProxy) RefuseMonolithic(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = status
}

func (p *CountingProxy) refusal() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refuse
}

// Connections is how many TCP connections the proxy has accepted.
func (p *CountingProxy) Connections() int64 { return p.conns.Load() }

// Requests returns a copy of the request counts.
func (p *CountingProxy) Requests() map[RequestKey]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.requests)
}

// Openings counts, by kind, the requests that were the first of their
// connection: what made a client open a new one.
func (p *CountingProxy) Openings() map[RequestKey]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.opening)
}

// Count is how many requests of method to paths of kind the proxy saw.
func (p *CountingProxy) Count(method string, kind PathKind) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[RequestKey{method, kind}]
}

// Uploads is what a CountingProxy saw of blob pushes: existence checks
// (HEAD of a blob) and the POST, PATCH and PUT requests of uploads.
type Uploads struct{ Heads, Posts, Patches, Puts int }

// Uploads counts the blob pushes seen so far.
func (p *CountingProxy) Uploads() Uploads {
	return Uploads{
		Heads:   p.Count(http.MethodHead, KindBlob),
		Posts:   p.Count(http.MethodPost, KindUpload),
		Patches: p.Count(http.MethodPatch, KindUpload),
		Puts:    p.Count(http.MethodPut, KindUpload),
	}
}

// Reset zeroes the counters: a test resets after building its fixtures,
// so that only the client under test is counted. Connections already
// open stay open and are not counted again.
func (p *CountingProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns.Store(0)
	p.requests = map[RequestKey]int{}
	p.opening = map[RequestKey]int{}
}

// count records r and reports whether it is a monolithic upload to refuse.
func (p *CountingProxy) count(r *http.Request) bool {
	kind, session := pathKind(r.URL.Path)
	p.mu.Lock()
	defer p.mu.Unlock()
	key := RequestKey{r.Method, kind}
	p.requests[key]++
	if seen, ok := r.Context().Value(connSeenKey{}).(*atomic.Bool); ok && !seen.Swap(true) {
		p.opening[key]++
	}
	if session == "" {
		return false
	}
	switch r.Method {
	case http.MethodPatch:
		p.patched[session] = true
	case http.MethodPut:
		return p.refuse != 0 && !p.patched[session] && r.ContentLength != 0
	}
	return false
}

// refuseUpload answers a refused monolithic upload as distribution answers
// an upload it cannot take: an error in the registry's JSON form. The body
// is not read; the connection stays usable because net/http drains or
// closes it.
func refuseUpload(w http.ResponseWriter, _ *http.Request, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, fmt.Sprintf(`{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"monolithic upload not supported: send the blob with PATCH (%d)"}]}`, status))
}

// pathKind classifies a registry path, and returns the upload session id
// of an upload path with one.
func pathKind(path string) (PathKind, string) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	switch {
	case !ok:
		return KindOther, ""
	case rest == "":
		return KindPing, ""
	case strings.HasSuffix(rest, "/tags/list"):
		return KindTags, ""
	}
	if i := strings.LastIndex(rest, "/blobs/uploads/"); i >= 0 {
		return KindUpload, rest[i+len("/blobs/uploads/"):]
	}
	if strings.Contains(rest, "/blobs/") {
		return KindBlob, ""
	}
	if strings.Contains(rest, "/manifests/") {
		return KindManifest, ""
	}
	return KindOther, ""
}

// connSeenKey marks, in a connection's context, whether a request came on
// it yet.
type connSeenKey struct{}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}
