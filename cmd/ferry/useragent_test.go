package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// flakyServer answers each path's first request 503 (with Retry-After: 0,
// so the retry does not wait), then serves docs[path], or 404 for a path
// it does not know. It records the User-Agent of every request.
type flakyServer struct {
	mu     sync.Mutex
	seen   map[string]bool
	agents []string
	docs   map[string][]byte
}

func (s *flakyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	first := !s.seen[r.URL.Path]
	s.seen[r.URL.Path] = true
	s.agents = append(s.agents, r.URL.Path+": "+r.Header.Get("User-Agent"))
	s.mu.Unlock()
	doc, ok := s.docs[r.URL.Path]
	switch {
	case !ok:
		http.NotFound(w, r)
	case first:
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		_, _ = w.Write(doc)
	}
}

// TestUserAgentAndRetryLog: the signature store and the update service
// are asked with ferry's one User-Agent, and their retries are logged as
// the registry's are.
func TestUserAgentAndRetryLog(t *testing.T) {
	sig, err := os.ReadFile(fixture(t, "redhat", "ocp-4.15.0-x86_64.signature-1"))
	if err != nil {
		t.Fatal(err)
	}
	graphDoc, _ := graphFixture(t)
	sigPath := "/sigs/" + strings.Replace(ocp4150Digest, ":", "=", 1) + "/signature-1"
	s := &flakyServer{seen: map[string]bool{}, docs: map[string][]byte{sigPath: sig, "/graph": graphDoc}}
	srv := httptest.NewServer(s)
	defer srv.Close()

	code, out, errOut := ferry(t, "signatures", "4.15.0", "--digest", ocp4150Digest,
		"--keyring", fixture(t, "redhat", "verifier-public-key-redhat-release"),
		"--signature-store", srv.URL+"/sigs", "-o", filepath.Join(t.TempDir(), "mirror"))
	if code != exitOK || !strings.Contains(errOut, `msg=retrying op="fetch signature `+srv.URL+sigPath+`" attempt=1`) {
		t.Errorf("signatures: exit %d; want 0 and the retry logged\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = ferry(t, "graph", "--channel", "stable-4.15", "--graph-url", srv.URL+"/graph")
	if code != exitOK || !strings.Contains(errOut, `msg=retrying op="fetch graph `+srv.URL+"/graph?") {
		t.Errorf("graph: exit %d; want 0 and the retry logged\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// signature-1 twice, signature-2 (not found), the graph twice.
	if len(s.agents) != 5 {
		t.Errorf("%d requests, want 5: %q", len(s.agents), s.agents)
	}
	for _, a := range s.agents {
		if !strings.HasSuffix(a, ": ferry/"+version) {
			t.Errorf("request %q; want User-Agent ferry/%s", a, version)
		}
	}
}
