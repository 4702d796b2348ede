package httpget

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/mirror/retry"
)

// server answers the n-th request with the n-th of its handlers, the last
// one repeating, and records the method and headers of each request.
type server struct {
	t        *testing.T
	srv      *httptest.Server
	handlers []http.HandlerFunc

	mu      sync.Mutex
	methods []string
	headers []http.Header
}

func newServer(t *testing.T, handlers ...http.HandlerFunc) *server {
	s := &server{t: t, handlers: handlers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.methods)
		s.methods = append(s.methods, r.Method)
		s.headers = append(s.headers, r.Header.Clone())
		s.mu.Unlock()
		s.handlers[min(n, len(s.handlers)-1)](w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) url() *url.URL {
	u, err := url.Parse(s.srv.URL + "/doc")
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}

func (s *server) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.methods)
}

// quick retries three times with waits too short to matter.
var quick = retry.Policy{Attempts: 3, Base: time.Microsecond, Max: time.Millisecond}

func (s *server) getter() *Getter {
	return &Getter{Client: s.srv.Client(), MaxBody: 16, ErrorBody: 64, Retry: quick}
}

// ok answers 200 with body, with a Content-Length.
func ok(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }
}

// chunked answers 200 with body and no Content-Length.
func chunked(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		_ = http.NewResponseController(w).Flush()
		_, _ = io.WriteString(w, body)
	}
}

// status answers code with body, and a Retry-After when retryAfter is set.
func status(code int, retryAfter, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// hangUp closes the connection without an answer.
func hangUp(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }

func TestGetRetriesTransientFailures(t *testing.T) {
	for _, tt := range []struct {
		name    string
		answers []http.HandlerFunc
		tries   int
	}{
		{"200", []http.HandlerFunc{ok("doc")}, 1},
		{"500 then 200", []http.HandlerFunc{status(500, "", ""), ok("doc")}, 2},
		{"502 then 503 then 200", []http.HandlerFunc{status(502, "", ""), status(503, "", ""), chunked("doc")}, 3},
		{"429 with Retry-After 0", []http.HandlerFunc{status(429, "0", ""), ok("doc")}, 2},
		{"connection closed", []http.HandlerFunc{hangUp, ok("doc")}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.answers...)
			body, tries, err := s.getter().Get(context.Background(), s.url())
			if err != nil || string(body) != "doc" || tries != tt.tries {
				t.Fatalf("Get = %q, %d tries, %v; want doc after %d", body, tries, err, tt.tries)
			}
			if got := s.requests(); got != tt.tries {
				t.Errorf("%d requests, want %d", got, tt.tries)
			}
		})
	}
}

func TestGetFails(t *testing.T) {
	for _, tt := range []struct {
		name      string
		answers   []http.HandlerFunc
		noteTries bool
		tries     int
		code      int
		msg       string // the whole error message, %s for the URL
	}{
		{"500 every time", []http.HandlerFunc{status(500, "", "")}, false, 3, 500, "GET %s: 500 Internal Server Error"},
		{"500 every time, tries noted", []http.HandlerFunc{status(500, "", "")}, true, 3, 500, "GET %s: 500 Internal Server Error (after 3 tries)"},
		{"403 is not retried", []http.HandlerFunc{status(403, "", "")}, true, 1, 403, "GET %s: 403 Forbidden"},
		{"404 is not retried", []http.HandlerFunc{status(404, "", "")}, true, 1, 404, "GET %s: 404 Not Found"},
		{"501 is not retried", []http.HandlerFunc{status(501, "", "")}, true, 1, 501, "GET %s: 501 Not Implemented"},
		{"505 is not retried", []http.HandlerFunc{status(505, "", "")}, true, 1, 505, "GET %s: 505 HTTP Version Not Supported"},
		{"503 then 404: tries not noted", []http.HandlerFunc{status(503, "", ""), status(404, "", "")}, true, 2, 404, "GET %s: 404 Not Found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.answers...)
			g := s.getter()
			g.NoteTries = tt.noteTries
			body, tries, err := g.Get(context.Background(), s.url())
			var status *StatusError
			if !errors.As(err, &status) || status.Code != tt.code || body != nil {
				t.Fatalf("Get = %q, %v; want a *StatusError %d", body, err, tt.code)
			}
			if want := strings.ReplaceAll(tt.msg, "%s", s.url().String()); err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if tries != tt.tries || s.requests() != tt.tries {
				t.Errorf("%d tries, %d requests; want %d", tries, s.requests(), tt.tries)
			}
		})
	}
}

func TestGetNotFoundOK(t *testing.T) {
	s := newServer(t, status(404, "", "gone"))
	g := s.getter()
	g.NotFoundOK = true
	body, tries, err := g.Get(context.Background(), s.url())
	if body != nil || tries != 1 || err != nil {
		t.Errorf("Get = %q, %d tries, %v; want nil, 1, nil", body, tries, err)
	}
}

func TestGetUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &url.URL{Scheme: "http", Host: l.Addr().String(), Path: "/doc"}
	l.Close() // nothing listens there any more: connection refused
	var retried []int
	g := &Getter{Client: &http.Client{}, MaxBody: 16, NoteTries: true, Retry: quick}
	g.What = "doc"
	g.Retry.OnRetry = func(e retry.Event) {
		if !errors.Is(e.Err, syscall.ECONNREFUSED) || e.Wait > quick.Max || e.Op != "fetch doc "+u.String() {
			t.Errorf("OnRetry(%+v)", e)
		}
		retried = append(retried, e.Attempt)
	}
	_, tries, err := g.Get(context.Background(), u)
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasSuffix(err.Error(), " (after 3 tries)") || tries != 3 {
		t.Fatalf("Get = %d tries, %v; want connection refused after 3", tries, err)
	}
	if len(retried) != 2 || retried[0] != 1 || retried[1] != 2 {
		t.Errorf("OnRetry after tries %v, want [1 2]", retried)
	}
}

func TestGetRetryAfter(t *testing.T) {
	t.Run("within the limit replaces the backoff", func(t *testing.T) {
		s := newServer(t, status(503, "0", ""), ok("doc"))
		g := s.getter()
		g.Retry.Base, g.Retry.Max = time.Hour, time.Hour // a backoff would stall the test
		var waits []time.Duration
		g.Retry.OnRetry = func(e retry.Event) { waits = append(waits, e.Wait) }
		if _, _, err := g.Get(context.Background(), s.url()); err != nil {
			t.Fatal(err)
		}
		if len(waits) != 1 || waits[0] != 0 {
			t.Errorf("waits %v, want [0]", waits)
		}
	})
	t.Run("beyond the limit ends the retries", func(t *testing.T) {
		s := newServer(t, status(429, "3600", ""))
		g := s.getter()
		g.Server = "store"
		_, tries, err := g.Get(context.Background(), s.url())
		var ra *RetryAfterError
		if !errors.As(err, &ra) || ra.After != time.Hour || ra.Limit != quick.Max {
			t.Fatalf("Get = %v, want a *RetryAfterError of 1h over 1ms", err)
		}
		want := "GET " + s.url().String() + ": 429 Too Many Requests; the store asks to retry after 1h0m0s, more than the 1ms limit"
		if err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		var status *StatusError
		if !errors.As(err, &status) || status.Code != 429 {
			t.Errorf("error does not unwrap to the 429: %v", err)
		}
		if tries != 1 || s.requests() != 1 {
			t.Errorf("%d tries, want 1", tries)
		}
		g.Server = ""
		if _, _, err := g.Get(context.Background(), s.url()); !strings.Contains(err.Error(), "; the server asks") {
			t.Errorf("without Server: %v", err)
		}
	})
}

func TestGetStopsWhenContextEnds(t *testing.T) {
	cause := errors.New("stop")
	s := newServer(t, status(503, "", ""))
	g := s.getter()
	g.Retry.Base, g.Retry.Max = time.Hour, time.Hour
	ctx, cancel := context.WithCancelCause(context.Background())
	g.Retry.OnRetry = func(retry.Event) { cancel(cause) }
	if _, tries, err := g.Get(ctx, s.url()); !errors.Is(err, cause) || tries != 1 {
		t.Errorf("cancelled while waiting: %d tries, %v; want the cause after 1", tries, err)
	}

	g.Retry.OnRetry = nil
	ctx, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if _, tries, err := g.Get(ctx, s.url()); !errors.Is(err, context.Canceled) || tries != 1 {
		t.Errorf("cancelled before: %d tries, %v; want context.Canceled after 1", tries, err)
	}
}

func TestGetTooLarge(t *testing.T) {
	big := strings.Repeat("x", 17)
	for name, h := range map[string]http.HandlerFunc{
		"with a Content-Length": ok(big),
		"met while reading":     chunked(big),
	} {
		s := newServer(t, h)
		_, tries, err := s.getter().Get(context.Background(), s.url())
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.URL != s.url().String() || tl.Limit != 16 || tries != 1 || s.requests() != 1 {
			t.Errorf("%s: %d tries, %v; want a *TooLargeError at 16 bytes, not retried", name, tries, err)
		}
	}

	s := newServer(t, chunked(big[:16]))
	if body, _, err := s.getter().Get(context.Background(), s.url()); err != nil || len(body) != 16 {
		t.Errorf("exactly MaxBody: %d bytes, %v", len(body), err)
	}

	hooked := errors.New("too large")
	s = newServer(t, ok(big))
	g := s.getter()
	g.TooLarge = func(u string, limit int64) error {
		if u != s.url().String() || limit != 16 {
			t.Errorf("TooLarge(%s, %d)", u, limit)
		}
		return hooked
	}
	if _, _, err := g.Get(context.Background(), s.url()); err != hooked {
		t.Errorf("with a TooLarge hook: %v", err)
	}
}

func TestGetStatusErrorHook(t *testing.T) {
	s := newServer(t, status(500, "", strings.Repeat("e", 100)))
	g := s.getter()
	g.Redact = true
	u := s.url()
	u.User = url.UserPassword("me", "secret")
	wrapped := errors.New("service failed")
	g.StatusError = func(shown string, resp *http.Response, body []byte) error {
		if strings.Contains(shown, "secret") || resp.StatusCode != 500 || len(body) != 64 {
			t.Errorf("StatusError(%s, %d, %d bytes), want a redacted URL and 64 bytes", shown, resp.StatusCode, len(body))
		}
		return wrapped
	}
	_, tries, err := g.Get(context.Background(), u)
	if !errors.Is(err, wrapped) || tries != 3 {
		t.Errorf("Get = %d tries, %v; want the hook's error, retried as a 500", tries, err)
	}

	g.StatusError = nil
	var status *StatusError
	if _, _, err := g.Get(context.Background(), u); !errors.As(err, &status) || status.URL != u.Redacted() {
		t.Errorf("redacted: %v", err)
	}
}

func TestGetSendsHeaders(t *testing.T) {
	s := newServer(t, ok("doc"))
	g := s.getter()
	g.Header = http.Header{"User-Agent": {"ferry/test"}, "accept": {"application/json"}}
	if _, _, err := g.Get(context.Background(), s.url()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.headers[0]; s.methods[0] != http.MethodGet || h.Get("User-Agent") != "ferry/test" || h.Get("Accept") != "application/json" {
		t.Errorf("request %s with headers %v", s.methods[0], h)
	}
}

func TestGetFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) *url.URL {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return &url.URL{Scheme: "file", Path: filepath.ToSlash(p)}
	}
	g := &Getter{MaxBody: 4, What: "doc"}
	ctx := context.Background()

	if body, tries, err := g.Get(ctx, write("fits", "1234")); string(body) != "1234" || tries != 1 || err != nil {
		t.Errorf("file = %q, %d tries, %v", body, tries, err)
	}
	if body, _, err := g.Get(ctx, write("empty", "")); body == nil || len(body) != 0 || err != nil {
		t.Errorf("empty file = %#v, %v; want an empty, non-nil body", body, err)
	}
	big := write("big", "12345")
	var tl *TooLargeError
	if _, _, err := g.Get(ctx, big); !errors.As(err, &tl) || tl.URL != big.String() || tl.Limit != 4 {
		t.Errorf("big file: %v", err)
	}

	missing := &url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(dir, "missing"))}
	_, _, err := g.Get(ctx, missing)
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "read doc: open ") {
		t.Errorf("missing file: %v", err)
	}
	g.NotFoundOK = true
	if body, _, err := g.Get(ctx, missing); body != nil || err != nil {
		t.Errorf("missing file, NotFoundOK: %q, %v", body, err)
	}
	if _, _, err := g.Get(ctx, &url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}); err == nil ||
		!strings.HasPrefix(err.Error(), "read doc "+dir+": ") {
		t.Errorf("a directory: %v", err)
	}
}

func TestNewClient(t *testing.T) {
	c := NewClient(time.Minute)
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr == http.DefaultTransport || tr.Proxy == nil || c.Timeout != time.Minute+clientTimeoutSlack {
		t.Errorf("NewClient = %+v", c)
	}
	c.CloseIdleConnections()
}
