// Package registry talks to container registries for ferry: it resolves and
// reads manifests, streams blobs, and pushes blobs, manifests and tags
// byte-for-byte. It is built on containers/image's docker transport, which
// reads registries.conf and auth.json, refreshes bearer tokens when they
// reach the lifetime they were issued with, honours Retry-After on 429 and
// reconnects interrupted blob bodies once; this package adds retries with
// backoff for the other transient failures, a new token when a registry
// refuses one before its time, blob streams resumed where they broke
// (VerifiedBlob), digest checks on everything it reads, and errors
// classified for callers (ErrNotFound, ErrUnauthorized, ErrTLS,
// ErrUnreachable, ErrDigestMismatch).
//
// containers/image logs through logrus at debug level; this package never
// configures logrus nor prints anything itself.
package registry

import (
	"time"

	"go.podman.io/image/v5/types"
)

// DefaultParallel is how many blobs a caller should move at once. It is
// containers/image's own default for parallel layer copies: enough to fill a
// fast link (registries throttle each stream, so one is slow), few enough
// that quay.io's per-client rate limits and a small mirror registry cope, and
// each worker holds only one copy buffer.
const DefaultParallel = 6

// Defaults for RetryPolicy: five attempts, waiting about 1, 2, 4 and 8 s
// in between, so that a registry restart or a load balancer hiccup of ~15 s
// is ridden out, while a registry that is really down fails within a minute.
const (
	DefaultRetryAttempts = 5
	DefaultRetryBase     = time.Second
	DefaultRetryMax      = 30 * time.Second
)

// MaxManifestSize caps every manifest read or pushed (the limit
// containers/image and the distribution registry also apply).
const MaxManifestSize = 4 << 20

// RetryPolicy says how often and how patiently to retry transient failures
// (see IsTransient). The zero value tries once.
type RetryPolicy struct {
	// Attempts is the total number of tries, first one included; values
	// below 1 mean 1.
	Attempts int
	// Base is the wait before the second try; each further wait doubles,
	// up to Max, with random jitter of up to half the wait.
	Base, Max time.Duration
	// OnRetry, when set, is called before each wait with the operation, the
	// attempt that failed (1-based), its error and the wait. It must be
	// safe for concurrent use; the CLI uses it to report retries.
	OnRetry func(op string, attempt int, err error, wait time.Duration)
}

// DefaultRetryPolicy returns the policy the CLI uses unless told otherwise.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{Attempts: DefaultRetryAttempts, Base: DefaultRetryBase, Max: DefaultRetryMax}
}

// Options configure a Client for one side (source or destination).
type Options struct {
	// AuthFile is a containers auth.json (an OpenShift pull secret is one).
	// Empty means containers/image's lookup: $REGISTRY_AUTH_FILE,
	// $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json, ...
	AuthFile string
	// TLSVerify true verifies registry certificates. False skips
	// verification and, as containers/image does, also lets it fall back to
	// plain HTTP. Note the zero Options therefore do NOT verify: start from
	// DefaultOptions. When true, a registry marked insecure in
	// registries.conf is still treated as insecure.
	TLSVerify bool
	// CertDir holds the CA (*.crt) and client certificates (*.cert, *.key)
	// for every registry, replacing the per-host /etc/containers/certs.d
	// lookup.
	CertDir string
	// Retry applies to every operation of the Client.
	Retry RetryPolicy
	// UserAgent is sent with every request; empty means containers/image's.
	UserAgent string
}

// DefaultOptions verify TLS and retry with DefaultRetryPolicy.
func DefaultOptions() Options {
	return Options{TLSVerify: true, Retry: DefaultRetryPolicy()}
}

// SystemContext returns the containers/image configuration for o.
func (o Options) SystemContext() *types.SystemContext {
	sys := &types.SystemContext{
		AuthFilePath:            o.AuthFile,
		DockerCertPath:          o.CertDir,
		DockerRegistryUserAgent: o.UserAgent,
	}
	if !o.TLSVerify {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	return sys
}
