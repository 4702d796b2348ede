package manifests

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestUserAgent: every request to the API server names ferry and its
// version, as the registry and signature-store clients do.
func TestUserAgent(t *testing.T) {
	var mu sync.Mutex
	agents := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents[r.UserAgent()] = true
		mu.Unlock()
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " + srv.URL +
		"\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := NewApplier(kubeconfig, WithUserAgent("ferry/1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = a.ReadVerificationKeyrings(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(agents) != 1 || !agents["ferry/1.2.3"] {
		t.Fatalf("user agents seen: %v, want only ferry/1.2.3", agents)
	}
}
