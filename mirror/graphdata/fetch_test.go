package graphdata

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blang/semver/v4"
	"gopkg.in/yaml.v3"

	"github.com/ferryhq/ferry/mirror/retry"
)

// quick makes retries fast enough for tests.
var quick = retry.Policy{Attempts: 3, Base: time.Millisecond, Max: 5 * time.Millisecond}

// tarballServer serves body at /api/upgrades_info/graph-data as
// api.openshift.com does, after failing the first failFirst requests with
// a 503, and counts requests.
func tarballServer(t *testing.T, body []byte, failFirst int32) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if r.Header.Get("User-Agent") != "ferry-test" {
			t.Errorf("request %s %s with User-Agent %q", r.Method, r.URL, r.Header.Get("User-Agent"))
		}
		if r.URL.Path != "/api/upgrades_info/graph-data" {
			http.NotFound(w, r)
			return
		}
		if n <= failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// junk are files of the real repository (and odd ones) that the service
// does not read: none may be kept.
var junk = map[string][]byte{
	"LICENSE":                         []byte("Apache License"),
	"README.md":                       []byte("# Cincinnati Graph Data"),
	"channels/OWNERS":                 []byte("approvers: []"),
	"channels/old/stable-4.1.yaml":    []byte("name: stable-4.1\nversions: [4.1.0]\n"),
	"channels/stable-4.1.yml":         []byte("name: stable-4.1\nversions: [4.1.0]\n"),
	"blocked-edges/README.txt":        []byte("see CONTRIBUTING"),
	"hack/stabilization-changes.yaml": []byte("not data"),
	"raw/other.json":                  []byte("{}"),
	"signatures/sha256/x":             []byte("a signature"),
	"build-suggestions/4.15.yaml":     []byte("default: {}"),
}

func TestFetchSources(t *testing.T) {
	dir, files := fixture(t)
	want := wantKept(files)
	withJunk := map[string][]byte{}
	for name, data := range files {
		withJunk[name] = data
	}
	for name, data := range junk {
		withJunk[name] = data
	}
	bare := gzipOf(t, tarOf(t, dataEntries(withJunk, "")))
	dotted := gzipOf(t, tarOf(t, append([]entry{{name: "./", typ: tar.TypeDir}}, dataEntries(withJunk, "./")...)))
	prefixed := gzipOf(t, tarOf(t, append([]entry{{name: "pax_global_header", typ: tar.TypeXGlobalHeader}},
		dataEntries(withJunk, "openshift-cincinnati-graph-data-731d0424/")...)))
	srvBare, hitsBare := tarballServer(t, bare, 0)
	srvPrefixed, hitsPrefixed := tarballServer(t, prefixed, 0)
	ctx := context.Background()

	for name, c := range map[string]struct {
		src  string
		opts FetchOptions
	}{
		"https bare":        {srvBare.URL + "/api/upgrades_info/graph-data", FetchOptions{Client: srvBare.Client(), UserAgent: "ferry-test"}},
		"https prefixed":    {srvPrefixed.URL + "/api/upgrades_info/graph-data", FetchOptions{Client: srvPrefixed.Client(), UserAgent: "ferry-test"}},
		"file bare":         {writeTemp(t, "bare.tar.gz", bare), FetchOptions{}},
		"file ./ entries":   {writeTemp(t, "dotted.tar.gz", dotted), FetchOptions{}},
		"file prefixed":     {writeTemp(t, "prefixed.tar.gz", prefixed), FetchOptions{}},
		"file directory":    {fileURL(dir), FetchOptions{}},
		"directory of junk": {fileURL(writeTree(t, withJunk)), FetchOptions{}},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := Fetch(ctx, c.src, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkData(t, d, want)
			if d.Source != c.src {
				t.Errorf("Source %q, want %q", d.Source, c.src)
			}
		})
	}
	if hitsBare.Load() != 1 || hitsPrefixed.Load() != 1 {
		t.Errorf("%d and %d requests, want 1 each", hitsBare.Load(), hitsPrefixed.Load())
	}
}

// checkData checks d against the files the service reads of the fixture,
// and its channels and versions against the test's own reading.
func checkData(t *testing.T, d *Data, want map[string][]byte) {
	t.Helper()
	var names []string
	for i, f := range d.Files {
		names = append(names, f.Name)
		if !bytes.Equal(f.Data, want[f.Name]) {
			t.Errorf("%s: %d bytes differ from the fixture's %d", f.Name, len(f.Data), len(want[f.Name]))
		}
		if i > 0 && d.Files[i-1].Name >= f.Name {
			t.Errorf("files out of order: %s, %s", d.Files[i-1].Name, f.Name)
		}
	}
	if len(names) != len(want) {
		var missing, extra []string
		for n := range want {
			if !slices.Contains(names, n) {
				missing = append(missing, n)
			}
		}
		for _, n := range names {
			if want[n] == nil {
				extra = append(extra, n)
			}
		}
		t.Fatalf("%d files, want %d; missing %v, extra %v", len(names), len(want), missing, extra)
	}
	if d.Version != "1.1.0" {
		t.Errorf("Version %q", d.Version)
	}
	wantVersions := map[string]bool{}
	var channelNames []string
	for name, data := range want {
		if !strings.HasPrefix(name, "channels/") {
			continue
		}
		var c struct {
			Name     string
			Versions []string
		}
		if err := yaml.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		channelNames = append(channelNames, c.Name)
		for _, v := range c.Versions {
			wantVersions[v] = true
		}
	}
	slices.Sort(channelNames)
	var gotChannels []string
	for _, c := range d.Channels {
		gotChannels = append(gotChannels, c.Name)
	}
	if !slices.Equal(gotChannels, channelNames) {
		t.Errorf("channels %v, want %v", gotChannels, channelNames)
	}
	if len(d.Versions) != len(wantVersions) {
		t.Errorf("%d versions, want %d", len(d.Versions), len(wantVersions))
	}
	for i, v := range d.Versions {
		if !wantVersions[v] {
			t.Errorf("version %s is in no channel", v)
		}
		if i > 0 && semver.MustParse(d.Versions[i-1]).GTE(semver.MustParse(v)) {
			t.Errorf("versions out of order: %s, %s", d.Versions[i-1], v)
		}
	}
}

// writeTree writes files into a new directory and returns its path.
func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFetchRetries(t *testing.T) {
	body := gzipOf(t, tarOf(t, dataEntries(smallData(), "")))
	srv, hits := tarballServer(t, body, 2)
	d, err := Fetch(context.Background(), srv.URL+"/api/upgrades_info/graph-data",
		FetchOptions{Client: srv.Client(), Retry: quick, UserAgent: "ferry-test"})
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 3 || len(d.Files) != 4 {
		t.Errorf("%d requests and %d files, want 3 and 4", hits.Load(), len(d.Files))
	}

	// A 404 is not retried.
	_, err = Fetch(context.Background(), srv.URL+"/elsewhere", FetchOptions{Client: srv.Client(), Retry: quick, UserAgent: "ferry-test"})
	if se, ok := errors.AsType[*StatusError](err); !ok || se.Code != http.StatusNotFound || hits.Load() != 4 {
		t.Errorf("error %v after %d requests: want a 404 StatusError after 4", err, hits.Load())
	}
}

func TestFetchTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range MaxCompressedSize/len(chunk) + 1 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	_, err := Fetch(context.Background(), srv.URL, FetchOptions{Client: srv.Client(), Retry: quick})
	if tl, ok := errors.AsType[*TooLargeError](err); !ok || tl.Limit != MaxCompressedSize {
		t.Fatalf("error %v: want a TooLargeError at MaxCompressedSize", err)
	}
	t.Log(err)
}

// A server that stops sending mid-body fails the fetch by the stall
// timeout given, not by the package's default of a minute.
func TestFetchStallTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte{0x1f, 0x8b})
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	_, err := Fetch(context.Background(), srv.URL, FetchOptions{Client: srv.Client(), StallTimeout: 50 * time.Millisecond})
	timeout, ok := errors.AsType[interface {
		error
		Timeout() bool
	}](err)
	if !ok || !timeout.Timeout() || !strings.Contains(err.Error(), "stalled") {
		t.Fatalf("error %v: want a stall timeout", err)
	}
	t.Log(err)
}
