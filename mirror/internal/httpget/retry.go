package httpget

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Retry says how often and after what waits a Getter retries. It has no
// defaults of its own: callers apply theirs, with [Retry.WithDefaults].
type Retry struct {
	// Attempts is how many tries a URL gets in all; below 1 means 1.
	Attempts int
	// BaseDelay is the wait before the first retry, doubled for each
	// further one up to MaxDelay; each wait is jittered into its upper
	// half so that many clients do not retry in step.
	BaseDelay time.Duration
	// MaxDelay caps one wait. A Retry-After asking for longer ends the
	// retries with a *RetryAfterError; a shorter one replaces the wait.
	MaxDelay time.Duration
	// OnRetry, when set, is called before each wait with the number of
	// the try that failed, its error and the wait.
	OnRetry func(try int, err error, wait time.Duration)
}

// WithDefaults returns r with each of Attempts, BaseDelay and MaxDelay that
// is zero or negative taken from def. OnRetry is r's.
func (r Retry) WithDefaults(def Retry) Retry {
	if r.Attempts <= 0 {
		r.Attempts = def.Attempts
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = def.BaseDelay
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = def.MaxDelay
	}
	return r
}

// backoff is the wait after the given try: BaseDelay doubled per try,
// capped at MaxDelay, its upper half jittered.
func (r Retry) backoff(try int) time.Duration {
	d := r.MaxDelay
	if try-1 < 30 { // beyond that the shift overflows, and d is capped anyway
		if b := r.BaseDelay << (try - 1); b > 0 && b < d {
			d = b
		}
	}
	if half := int64(d / 2); half > 0 {
		return time.Duration(half + rand.Int64N(half+1))
	}
	return d
}

// transientError marks a failure worth retrying; retryAfter is the
// server's Retry-After, if it gave one.
type transientError struct {
	err           error
	retryAfter    time.Duration
	hasRetryAfter bool
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// maxRetryAfter bounds a Retry-After given in seconds, so that a huge one
// cannot overflow time.Duration.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP
// date. ok is false when there is none or it does not parse.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// transientNetError tells whether a request failure may go away on its
// own: a refused, reset or timed-out connection, or one closed early.
// Certificate and DNS-name failures will not.
func transientNetError(err error) bool {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.Canceled):
		return false // the caller gave up; Get notices its context
	case certificateError(err):
		return false
	case errors.As(err, &dnsErr):
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// certificateError tells whether err is a failure to verify the server's
// certificate.
func certificateError(err error) bool {
	for _, target := range []any{
		new(x509.UnknownAuthorityError), new(x509.HostnameError),
		new(x509.CertificateInvalidError), new(*tls.CertificateVerificationError),
	} {
		if errors.As(err, target) {
			return true
		}
	}
	return false
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
