package graph

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/mirror/retry"
)

// quick makes retries fast enough for tests.
var quick = retry.Policy{Attempts: 3, Base: time.Millisecond, Max: 5 * time.Millisecond}

// graphServer serves body for the wanted channel and arch query, as the
// service does, and counts requests.
func graphServer(t *testing.T, body []byte, channel, arch string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		q := r.URL.Query()
		if r.URL.Path != "/api/upgrades_info/v1/graph" || q.Get("channel") != channel || q.Get("arch") != arch ||
			r.Header.Get("Accept") != "application/json" {
			t.Errorf("unexpected request %s %s (Accept %q)", r.Method, r.URL, r.Header.Get("Accept"))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestFetchFixture(t *testing.T) {
	data, path := readFixture(t)
	srv, hits := graphServer(t, data, "stable-4.15", "amd64")
	ctx := context.Background()

	for name, opts := range map[string]FetchOptions{
		"http":         {URL: srv.URL + "/api/upgrades_info/v1/graph", Channel: "stable-4.15", Client: srv.Client()},
		"release arch": {URL: srv.URL + "/api/upgrades_info/v1/graph", Channel: "stable-4.15", Arch: "x86_64", Client: srv.Client()},
		"file":         {URL: (&url.URL{Scheme: "file", Path: path}).String(), Channel: "stable-4.15"},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := Fetch(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if g.Channel != "stable-4.15" || g.Arch != "amd64" || len(g.Nodes()) != 55 {
				t.Fatalf("graph of %s (%s) with %d nodes", g.Channel, g.Arch, len(g.Nodes()))
			}
			p, err := g.Path("4.14.10", "4.15.23", true)
			if err != nil || len(p.Hops) != 2 {
				t.Fatalf("path: %v %v", p, err)
			}
		})
	}
	if hits.Load() != 2 {
		t.Errorf("%d requests, want 2", hits.Load())
	}
}

func TestFetchFileFiltersChannel(t *testing.T) {
	_, path := readFixture(t)
	u := (&url.URL{Scheme: "file", Path: path}).String()
	g, err := Fetch(context.Background(), FetchOptions{URL: u, Channel: "fast-4.14"})
	if err != nil {
		t.Fatal(err)
	}
	nodes := g.Nodes()
	if len(nodes) == 0 || len(nodes) == 55 {
		t.Fatalf("fast-4.14 holds %d of the 55 releases", len(nodes))
	}
	for _, n := range nodes {
		if !strings.Contains(","+n.Metadata[MetadataChannels]+",", ",fast-4.14,") {
			t.Errorf("%s is not in fast-4.14", n.Version)
		}
	}
	_, err = Fetch(context.Background(), FetchOptions{URL: u, Channel: "stable-9.99"})
	var empty *EmptyChannelError
	if !errors.As(err, &empty) || !strings.Contains(err.Error(), `"stable-9.99"`) {
		t.Errorf("unknown channel: %v", err)
	}
}

func TestFetchErrors(t *testing.T) {
	data, _ := readFixture(t)
	ctx := context.Background()

	serve := func(t *testing.T, h http.HandlerFunc) (string, *atomic.Int32) {
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			h(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/graph", &hits
	}

	t.Run("api error", func(t *testing.T) {
		u, hits := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"kind":"Invalid parameter","value":"invalid channel name 'stable 4.15'"}`))
		})
		_, err := Fetch(ctx, FetchOptions{URL: u, Channel: "stable 4.15", Retry: quick})
		var api *APIError
		if !errors.As(err, &api) || api.StatusCode != 400 || api.Kind != "Invalid parameter" || api.Value != "invalid channel name 'stable 4.15'" {
			t.Fatalf("%v, want an *APIError", err)
		}
		if !strings.Contains(err.Error(), "Invalid parameter: invalid channel name 'stable 4.15'") {
			t.Errorf("message hides the API's words: %v", err)
		}
		if hits.Load() != 1 {
			t.Errorf("a 400 was tried %d times", hits.Load())
		}
	})

	t.Run("not found without body", func(t *testing.T) {
		u, _ := serve(t, func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) })
		_, err := Fetch(ctx, FetchOptions{URL: u, Channel: "stable-4.15", Retry: quick})
		var status *StatusError
		if !errors.As(err, &status) || status.Code != 404 {
			t.Fatalf("%v, want a *StatusError 404", err)
		}
	})

	t.Run("retries server errors", func(t *testing.T) {
		u, hits := serve(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(data) })
		var n atomic.Int32
		flaky, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
			switch n.Add(1) {
			case 1:
				w.WriteHeader(http.StatusBadGateway)
			case 2:
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
			default:
				http.Redirect(w, r, u+"?"+r.URL.RawQuery, http.StatusFound)
			}
		})
		g, err := Fetch(ctx, FetchOptions{URL: flaky, Channel: "stable-4.15", Retry: quick})
		if err != nil || len(g.Nodes()) != 55 {
			t.Fatalf("after two transient failures: %v", err)
		}
		if n.Load() != 3 || hits.Load() != 1 {
			t.Errorf("%d tries, %d redirected", n.Load(), hits.Load())
		}
	})

	t.Run("gives up", func(t *testing.T) {
		u, hits := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"kind":"Internal error","value":"upstream unavailable"}`))
		})
		_, err := Fetch(ctx, FetchOptions{URL: u, Channel: "stable-4.15", Retry: quick})
		var api *APIError
		if !errors.As(err, &api) || api.StatusCode != 500 || !strings.Contains(err.Error(), "after 3 tries") || hits.Load() != 3 {
			t.Fatalf("%v after %d tries, want the *APIError after 3", err, hits.Load())
		}
		slow, hits := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		_, err = Fetch(ctx, FetchOptions{URL: slow, Channel: "stable-4.15", Retry: quick})
		if !strings.Contains(err.Error(), "retry after 1h0m0s") || hits.Load() != 1 {
			t.Fatalf("%v after %d tries, want to stop at a long Retry-After", err, hits.Load())
		}
	})

	t.Run("malformed json", func(t *testing.T) {
		u, _ := serve(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(data[:len(data)/2]) })
		_, err := Fetch(ctx, FetchOptions{URL: u, Channel: "stable-4.15", Retry: quick})
		var malformed *MalformedError
		if !errors.As(err, &malformed) || !strings.Contains(err.Error(), "invalid JSON") || !strings.Contains(err.Error(), u) {
			t.Fatalf("%v, want a *MalformedError naming the URL", err)
		}
	})

	t.Run("oversized", func(t *testing.T) {
		// Chunked, so the cap is met while reading; and with a length.
		u, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("arch") == "arm64" {
				w.Header().Set("Content-Length", "16777217")
			}
			big := bytes.Repeat([]byte(" "), 1<<20)
			for range MaxGraphSize/len(big) + 1 {
				if _, err := w.Write(big); err != nil {
					return
				}
			}
		})
		for _, arch := range []string{"amd64", "arm64"} {
			_, err := Fetch(ctx, FetchOptions{URL: u, Channel: "stable-4.15", Arch: arch, Retry: quick})
			var tooLarge *TooLargeError
			if !errors.As(err, &tooLarge) || tooLarge.Limit != MaxGraphSize || !strings.Contains(err.Error(), "16777216-byte limit") {
				t.Errorf("%s: %v, want a *TooLargeError at MaxGraphSize", arch, err)
			}
		}
		_, err := Fetch(ctx, FetchOptions{URL: u, Channel: "stable-4.15", MaxBody: 1000, Retry: quick})
		var tooLarge *TooLargeError
		if !errors.As(err, &tooLarge) || tooLarge.Limit != 1000 {
			t.Errorf("MaxBody 1000: %v", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		var retries int
		r := quick
		r.OnRetry = func(e retry.Event) {
			retries++
			if !strings.HasPrefix(e.Op, "fetch graph http://"+addr+"/graph?") || e.Attempt != retries {
				t.Errorf("OnRetry(%+v), want the graph URL and attempt %d", e, retries)
			}
		}
		_, err = Fetch(ctx, FetchOptions{URL: "http://" + addr + "/graph", Channel: "stable-4.15", Retry: r})
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "after 3 tries") {
			t.Fatalf("%v, want connection refused after 3 tries", err)
		}
		if retries != 2 {
			t.Errorf("OnRetry called %d times, want 2", retries)
		}
	})

	t.Run("bad urls", func(t *testing.T) {
		for _, u := range []string{"ftp://example.com/graph", "file://graph.json", "https:///graph", "file:///no/such/graph.json"} {
			if _, err := Fetch(ctx, FetchOptions{URL: u, Channel: "stable-4.15"}); err == nil {
				t.Errorf("%s accepted", u)
			}
		}
		if _, err := Fetch(ctx, FetchOptions{URL: "file:///x", Channel: ""}); err == nil {
			t.Error("empty channel accepted")
		}
		if _, err := Fetch(ctx, FetchOptions{URL: "file:///x", Channel: "stable-4.15", Arch: "sparc"}); err == nil || !strings.Contains(err.Error(), "sparc") {
			t.Errorf("unknown arch: %v", err)
		}
	})
}
