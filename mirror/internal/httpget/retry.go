package httpget

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// transient reports whether err is a failure worth retrying.
func transient(err error) bool {
	_, ok := errors.AsType[*transientError](err)
	return ok
}

// retryAfter makes the wait a server's Retry-After asks for replace the
// backoff, and ends the retries when it asks for longer than Retry.Max
// (when there is one).
func (g *Getter) retryAfter(err error, backoff time.Duration) (time.Duration, error) {
	t, ok := errors.AsType[*transientError](err)
	if !ok || !t.hasRetryAfter {
		return backoff, nil
	}
	if g.Retry.Max > 0 && t.retryAfter > g.Retry.Max {
		return 0, &RetryAfterError{Err: err, After: t.retryAfter, Limit: g.Retry.Max, server: g.server()}
	}
	return t.retryAfter, nil
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
