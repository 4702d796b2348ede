// Package serve runs an OCI distribution registry on the bastion: the
// distribution project's registry library (github.com/distribution/
// distribution/v3) on its filesystem storage, with TLS from files or from a
// CA of its own, basic authentication from an htpasswd file, a read-only
// mode, and an offline garbage collector (GarbageCollect) that removes the
// blobs no manifest references any more. It is not a registry of ferry's
// own: every answer is the library's.
//
// A root directory holds everything: the registry's storage
// (ROOT/docker/registry/v2, the library's layout), the self-signed CA and
// serving certificate (ROOT/tls) and the lock that keeps a writing server and
// the garbage collector apart (ROOT/serve.lock).
package serve

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"

	// The htpasswd access controller and the filesystem driver register
	// themselves on import.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// DefaultListen is distribution's own default port, the one registry
// documentation and mirror examples use; on every interface, because the
// cluster's nodes pull from it.
const DefaultListen = ":5000"

// Bounds of the HTTP server. A registry moves blobs of gigabytes in one
// request, so there is no whole-request read or write timeout: those would
// cut a large layer on a slow link. What is bounded is what a client cannot
// need more of.
const (
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers: a client sends them at once; a slow trickle is a
	// connection held open for nothing (slowloris).
	ReadHeaderTimeout = 30 * time.Second
	// IdleTimeout closes a kept-alive connection no request used for this
	// long, so idle clients do not pile up connections.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes caps request headers; registry requests carry a
	// reference, an Authorization header and a few Accept types.
	MaxHeaderBytes = 64 << 10
	// ShutdownDrain is how long a stopping server lets requests in flight
	// finish before it cuts them: long enough for a manifest or a small
	// layer, well inside systemd's default stop timeout (90 s).
	ShutdownDrain = 30 * time.Second
	// catalogMaxEntries is the page size limit of /v2/_catalog, as the
	// library's YAML loader defaults it (built by hand it would be 0 and
	// the catalog would answer nothing).
	catalogMaxEntries = 1000
	// httpSecretBytes is the size of the random secret that signs upload
	// state between the requests of one upload. One process serves the
	// root, so a secret per process is enough: an upload cut by a restart
	// starts again.
	httpSecretBytes = 32
)

// htpasswdRealm is the realm of the basic-authentication challenge.
const htpasswdRealm = "ferry-registry"

// ErrInvalidOptions marks a mistake in Options (a usage error in the CLI).
var ErrInvalidOptions = errors.New("invalid serve options")

// Options configure a Server. Root is required; the zero value of every
// other field means: listen on DefaultListen, plain HTTP, no
// authentication, read-write, no logs.
type Options struct {
	// Root is the directory holding the storage, the TLS files of
	// SelfSigned and the lock; it is made if missing.
	Root string
	// Listen is the address to listen on ("host:port"; port 0 picks one,
	// see Server.Status).
	Listen string
	// CertFile and KeyFile are a PEM certificate (chain) and its key to
	// serve TLS with. Exclusive with SelfSigned.
	CertFile, KeyFile string
	// SelfSigned serves TLS with a certificate from a CA kept in
	// Root/tls (see SelfSignedTLS).
	SelfSigned bool
	// Names are extra DNS names or IP addresses for the self-signed
	// serving certificate, beyond the host's own.
	Names []string
	// HTPasswd is an htpasswd file of bcrypt hashes; every request must
	// then carry basic-authentication credentials it accepts. It needs
	// TLS: basic authentication sends the password.
	HTPasswd string
	// ReadOnly refuses every push and delete (distribution's read-only
	// maintenance mode); GarbageCollect may then run on the same root.
	ReadOnly bool
	// Log receives the server's log: one line per request and what the
	// library reports (see LogHook). Nil discards it.
	Log *slog.Logger
}

// Validate checks the options without touching the disk, except to see
// that the files they name exist. Its errors wrap ErrInvalidOptions.
func (o *Options) Validate() error {
	invalid := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, a...))
	}
	switch {
	case o.Root == "":
		return invalid("a root directory is required")
	case (o.CertFile == "") != (o.KeyFile == ""):
		return invalid("a TLS certificate needs its key and a key its certificate")
	case o.CertFile != "" && o.SelfSigned:
		return invalid("TLS from files and a self-signed certificate exclude each other")
	case len(o.Names) > 0 && !o.SelfSigned:
		return invalid("extra certificate names need a self-signed certificate")
	case o.HTPasswd != "" && !o.tls():
		return invalid("htpasswd authentication needs TLS: basic authentication would send passwords in clear")
	}
	for what, f := range map[string]string{"TLS certificate": o.CertFile, "TLS key": o.KeyFile, "htpasswd file": o.HTPasswd} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidOptions, what, err)
		}
	}
	if _, _, err := net.SplitHostPort(o.listen()); err != nil {
		return invalid("listen address %q: %v", o.Listen, err)
	}
	return nil
}

func (o *Options) tls() bool { return o.CertFile != "" || o.SelfSigned }

func (o *Options) listen() string {
	if o.Listen == "" {
		return DefaultListen
	}
	return o.Listen
}

// Status is what a started server tells its operator and scripts.
type Status struct {
	// Address is the address listened on, with the real port.
	Address string `json:"address"`
	TLS     bool   `json:"tls"`
	// CA is the self-signed CA's certificate file (SelfSigned only).
	CA string `json:"ca,omitempty"`
	// CertDir is the directory holding CA alone, for skopeo's and
	// ferry's --cert-dir (SelfSigned only).
	CertDir  string `json:"cert_dir,omitempty"`
	ReadOnly bool   `json:"read_only"`
}

// Server is a registry listening on its address. Serve it, then it stops
// when the context given to Serve ends.
type Server struct {
	status   Status
	listener net.Listener
	http     *http.Server
	app      *handlers.App
	stopApp  context.CancelFunc
	lock     *rootLock
	log      *slog.Logger
}

// Listen prepares the root (storage, TLS files, lock) and starts listening,
// but serves nothing until Serve. A read-write server locks the root, so
// that GarbageCollect and a second writer refuse to run beside it.
func Listen(ctx context.Context, opts Options) (_ *Server, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Root, 0o750); err != nil {
		return nil, fmt.Errorf("registry root: %w", err)
	}
	s := &Server{log: log, status: Status{TLS: opts.tls(), ReadOnly: opts.ReadOnly}}
	if !opts.ReadOnly {
		if s.lock, err = lockRoot(opts.Root, "ferry serve"); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	tlsConfig, err := s.tlsConfig(&opts)
	if err != nil {
		return nil, err
	}
	appCtx, stopApp := context.WithCancel(context.WithoutCancel(ctx))
	s.stopApp = stopApp
	if s.app, err = newApp(appCtx, &opts); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	if s.listener, err = lc.Listen(ctx, "tcp", opts.listen()); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.listen(), err)
	}
	s.status.Address = s.listener.Addr().String()
	if tlsConfig != nil {
		s.listener = tls.NewListener(s.listener, tlsConfig)
	}
	s.http = &http.Server{
		Handler:           accessLog(log, s.app),
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// tlsConfig loads the serving certificate of opts, making the self-signed
// one first if asked; nil means plain HTTP.
func (s *Server) tlsConfig(opts *Options) (*tls.Config, error) {
	certFile, keyFile := opts.CertFile, opts.KeyFile
	if opts.SelfSigned {
		files, err := SelfSignedTLS(opts.Root, opts.Names, s.log)
		if err != nil {
			return nil, err
		}
		certFile, keyFile = files.ServerCert, files.ServerKey
		s.status.CA, s.status.CertDir = files.CA, files.CertDir
	}
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}, nil
}

// Status says where the server listens and how to trust it.
func (s *Server) Status() Status { return s.status }

// Serve answers requests until ctx ends, then stops accepting, lets the
// requests in flight finish for up to ShutdownDrain and returns nil (or
// says which requests it had to cut). It releases the root's lock.
func (s *Server) Serve(ctx context.Context) error {
	defer s.release()
	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.listener) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", s.status.Address, err)
	case <-ctx.Done():
	}
	s.log.Info("stopping: finishing requests in flight", "drain", ShutdownDrain)
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownDrain)
	defer cancel()
	err := s.http.Shutdown(drainCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("requests still running %s after the stop were cut: %w", ShutdownDrain, s.http.Close())
	}
	<-served // http.ErrServerClosed, now that Shutdown or Close ran
	return err
}

// Close stops a server that was never served (Serve stops by its context).
func (s *Server) Close() error {
	defer s.release()
	return s.listener.Close()
}

// release stops the library's background work and unlocks the root.
func (s *Server) release() {
	if s.app != nil {
		_ = s.app.Shutdown()
		s.app = nil
	}
	if s.stopApp != nil {
		s.stopApp()
	}
	if s.lock != nil {
		s.lock.unlock()
		s.lock = nil
	}
}

// newApp builds the library's registry application for opts. The library
// panics on a configuration it refuses; that comes back as an error.
func newApp(ctx context.Context, opts *Options) (app *handlers.App, err error) {
	secret := make([]byte, httpSecretBytes)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("upload secret: %w", err)
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": opts.Root},
			// prune deletes manifests through the API; GarbageCollect
			// then removes their blobs.
			"delete": configuration.Parameters{"enabled": true},
			"maintenance": configuration.Parameters{
				"readonly": map[any]any{"enabled": opts.ReadOnly},
			},
		},
	}
	if opts.ReadOnly {
		// A read-only server writes nothing, not even the purge of stale
		// uploads (the library's default purger runs otherwise).
		cfg.Storage["maintenance"]["uploadpurging"] = map[any]any{"enabled": false}
	}
	if opts.HTPasswd != "" {
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": htpasswdRealm, "path": opts.HTPasswd}}
	}
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.Catalog.MaxEntries = catalogMaxEntries
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("registry configuration refused: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}
