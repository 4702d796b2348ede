// Package registry talks to container registries for ferry: it resolves and
// reads manifests, streams blobs, and pushes blobs, manifests and tags
// byte-for-byte. It speaks the distribution protocol itself, on one pool of
// connections per registry host (see hostclient.go), configured by the
// public pieces of containers/image (auth.json, certs.d, registries.conf);
// a repository that registries.conf sends to a mirror is read through
// containers/image's docker transport, which alone follows such entries.
// It refreshes bearer tokens when they reach the lifetime they were issued
// with and when a registry refuses one before its time, retries transient
// failures with backoff, resumes blob streams where they broke
// (VerifiedBlob), bounds the time a silent registry may take (Timeouts),
// checks digests on everything it reads, uploads small blobs in one request
// after the POST (MonolithicUploadMax) and mounts blobs across
// repositories, and classifies errors for callers (ErrNotFound,
// ErrUnauthorized, ErrTLS, ErrUnreachable, ErrStalled, ErrDigestMismatch).
//
// containers/image logs through logrus at debug level; this package never
// configures logrus nor prints anything itself.
package registry

import (
	"context"
	"time"

	"go.podman.io/image/v5/types"

	"github.com/ferryhq/ferry/mirror/retry"
)

// DefaultParallel is how many blobs a caller should move at once. It is
// containers/image's own default for parallel layer copies: enough to fill a
// fast link (registries throttle each stream, so one is slow), few enough
// that quay.io's per-client rate limits and a small mirror registry cope, and
// each worker holds only one copy buffer.
const DefaultParallel = 6

// Defaults for RetryPolicy, retry.Default's: five attempts, waiting about
// 1, 2, 4 and 8 s in between, so that a registry restart or a load
// balancer hiccup of ~15 s is ridden out, while a registry that is really
// down fails within a minute.
const (
	DefaultRetryAttempts = retry.DefaultAttempts
	DefaultRetryBase     = retry.DefaultBase
	DefaultRetryMax      = retry.DefaultMax
)

// Defaults for Timeouts, chosen to suit a satellite link (600 ms round
// trips, loss that makes TCP back off for tens of seconds) as well as a LAN:
// only a registry that has truly gone silent reaches them.
const (
	// DefaultResponseTimeout bounds the wait for an answer: a registry
	// behind a CDN can take many seconds to answer a blob GET with its
	// redirect, or a large upload's final PUT while it checks the digest,
	// but one that says nothing for a minute has hung.
	DefaultResponseTimeout = time.Minute
	// DefaultStallTimeout bounds a blob body that moves no byte: TCP's
	// retransmission backoff on a lossy link pauses a healthy stream for
	// up to ~30 s (1+2+4+8+16 s); a minute without a byte is a dead stream.
	DefaultStallTimeout = time.Minute
)

// MaxManifestSize caps every manifest read or pushed (the limit
// containers/image and the distribution registry also apply).
const MaxManifestSize = 4 << 20

// RetryPolicy says how often and how patiently to retry transient failures
// (see IsTransient). The zero value tries once. OnRetry must be safe for
// concurrent use: a Client retries from many goroutines.
type RetryPolicy = retry.Policy

// Timeouts bound how long a Client waits on a registry that accepted the
// connection and then went silent. A bound that runs out fails the
// attempt with a *StallError (errors.Is ErrStalled), which the retry
// policy retries. Zero fields mean no bound; containers/image itself
// bounds dialling (30 s) and the TLS handshake (10 s).
type Timeouts struct {
	// Response bounds each request's wait for its answer (from opening the
	// connection or sending the request to the response headers) and the
	// reading of a small answer (a manifest, a token) whole.
	Response time.Duration
	// Stall bounds the wait for the next byte of a blob being read, or for
	// the registry to take the next chunk of one being pushed.
	Stall time.Duration
}

// DefaultTimeouts are the Timeouts the CLI uses unless told otherwise.
func DefaultTimeouts() Timeouts {
	return Timeouts{Response: DefaultResponseTimeout, Stall: DefaultStallTimeout}
}

// DefaultRetryPolicy returns the policy the CLI uses unless told otherwise.
func DefaultRetryPolicy() RetryPolicy {
	return retry.Default()
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
	// Timeouts bound every request; the zero value waits for ever.
	Timeouts Timeouts
	// UserAgent is sent with every request; empty means containers/image's.
	UserAgent string
	// Parallel is how many blobs the caller moves at once; below 1 means
	// DefaultParallel. Each registry host keeps twice that many
	// connections (and a few more) open between requests, so that no
	// worker opens a new one per blob, nor a plan's walk and the signature
	// lookups beside it one per manifest.
	Parallel int
}

// parallel is o.Parallel, or DefaultParallel when unset.
func (o Options) parallel() int {
	if o.Parallel < 1 {
		return DefaultParallel
	}
	return o.Parallel
}

// DefaultOptions verify TLS, retry with DefaultRetryPolicy and bound waits
// with DefaultTimeouts.
func DefaultOptions() Options {
	return Options{TLSVerify: true, Retry: DefaultRetryPolicy(), Timeouts: DefaultTimeouts()}
}

// Bounded runs fn, one call into containers/image made outside this
// package (listing tags, say), under o.Timeouts: fn must use the context
// it is given, and a registry that goes silent makes it fail with a
// *StallError naming op. Retry it with Do.
func (o Options) Bounded(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return bounded(ctx, o.Timeouts, op, func(ctx context.Context, _ *watchdog) error { return fn(ctx) })
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
