package testbed

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
)

// NewMemoryRegistry starts an in-process registry like NewRegistry, but
// keeping everything in memory. The filesystem driver fsyncs every file it
// writes (about 30 ms per blob pushed on the project's machines); this one
// pushes a blob in under a millisecond. Use it for small releases; use
// NewRegistry for large ones, whose layers would fill the test's memory.
func NewMemoryRegistry(t testing.TB) *Registry {
	t.Helper()
	logrus.SetLevel(logrus.FatalLevel) // see NewRegistry
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory":    configuration.Parameters{},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
			"delete":      configuration.Parameters{"enabled": true},
		},
	}
	cfg.HTTP.Secret = "ferry-testbed-secret"
	cfg.Catalog.MaxEntries = 1000
	cfg.Log.Level = "error"
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(handlers.NewApp(ctx, cfg))
	t.Cleanup(func() {
		srv.Close()
		cancel()
	})
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatalf("registry URL: %v", err)
	}
	return &Registry{Host: u.Host, URL: srv.URL, server: srv}
}
