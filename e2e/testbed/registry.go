// Package testbed holds the real parts that ferry's tests run against: an
// in-process OCI registry, a Debian docker-registry process, a synthetic
// OpenShift release builder (with cosign signatures and a ClusterImagePolicy
// when asked), a GPG signature store and OpenPGP and cosign keys made in
// the test. Nothing here is a mock: every part speaks the real protocol.
package testbed

import (
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	// The in-memory and filesystem drivers register themselves on import.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// Registry is a distribution registry served in-process over plain HTTP on
// 127.0.0.1. It is stopped when the test that made it ends.
type Registry struct {
	// Host is "127.0.0.1:<port>", ready to prefix a repository name.
	Host string
	// URL is "http://127.0.0.1:<port>".
	URL string
	// Root is the filesystem store's root directory (for an offline
	// garbage collection of it).
	Root   string
	server *httptest.Server
}

// RegistryOptions vary NewRegistryWith's registry.
type RegistryOptions struct {
	// DeleteDisabled makes it refuse manifest deletion (405 UNSUPPORTED),
	// as distribution does by default.
	DeleteDisabled bool
	// Root is the store's directory; empty for a new one. A registry
	// started on the root of one stopped (Close) serves its content.
	Root string
}

// NewRegistry starts an in-process registry backed by a filesystem store in
// t.TempDir(), so large synthetic releases do not live in memory. It
// allows deleting manifests.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	return NewRegistryWith(t, RegistryOptions{})
}

// NewRegistryWith is NewRegistry with opts.
func NewRegistryWith(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	root := opts.Root
	if root == "" {
		root = t.TempDir()
	}
	// The registry logs every request at info and every 4xx answer (a HEAD
	// for a blob not yet pushed) at error: hundreds of lines that bury a
	// failing test's output. Clients see the errors in the answers anyway.
	logrus.SetLevel(logrus.FatalLevel)
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem":  configuration.Parameters{"rootdirectory": root},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
			"delete":      configuration.Parameters{"enabled": !opts.DeleteDisabled},
		},
	}
	cfg.HTTP.Secret = "ferry-testbed-secret"
	// The YAML loader defaults this to 1000; built by hand it stays 0 and
	// /v2/_catalog answers nothing (without n) or 400 (with n).
	cfg.Catalog.MaxEntries = 1000
	cfg.Log.Level = "error"
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	srv := httptest.NewServer(app)
	t.Cleanup(func() {
		srv.Close()
		cancel()
	})
	u, _ := url.Parse(srv.URL)
	return &Registry{Host: u.Host, URL: srv.URL, Root: root, server: srv}
}

// Close stops the registry before the test ends, for tests of an
// unreachable registry. Safe to call twice.
func (r *Registry) Close() { r.server.Close() }

// BlobPath is the file in which the registry stores blob d's content.
func (r *Registry) BlobPath(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(r.Root, "docker", "registry", "v2", "blobs", d.Algorithm().String(), hex[:2], hex, "data")
}
