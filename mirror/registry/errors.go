package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"syscall"

	"github.com/docker/distribution/registry/api/errcode"
	"go.podman.io/image/v5/docker"
)

// Classes of failure. Every error of this package that falls in one of them
// satisfies errors.Is with it, and still unwraps to containers/image's error.
var (
	// ErrNotFound: the registry answered 404 (manifest, blob or repository
	// unknown).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the registry refused the credentials or the access
	// (401, 403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrTLS: the registry's certificate could not be verified, or it does
	// not speak TLS.
	ErrTLS = errors.New("TLS failed (unverifiable certificate, or a plain-HTTP registry)")
	// ErrUnreachable: no connection could be made (refused, unknown host).
	ErrUnreachable = errors.New("registry unreachable")
	// ErrDigestMismatch: content does not match its digest or size.
	ErrDigestMismatch = errors.New("digest mismatch")
)

// classifiedError adds a class (one of the sentinels above) to an error,
// appending the class's hint to the message when it has one.
type classifiedError struct {
	class error
	err   error
}

func (e *classifiedError) Error() string {
	switch e.class {
	case ErrUnauthorized, ErrTLS:
		return e.err.Error() + " (" + e.class.Error() + ")"
	}
	return e.err.Error()
}

func (e *classifiedError) Unwrap() []error { return []error{e.class, e.err} }

// Classify wraps an error from a containers/image call made outside this
// package (listing tags, say) with its class, so that callers can match
// ErrNotFound, ErrUnauthorized, ErrTLS or ErrUnreachable and users read the
// same hints (--authfile, --cert-dir) as everywhere else.
func Classify(err error) error { return classify(err) }

// classify wraps an error from containers/image with its class, if any.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *classifiedError
	if errors.As(err, &ce) {
		return err
	}
	var class error
	switch status := httpStatus(err); {
	case status == http.StatusNotFound:
		class = ErrNotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		class = ErrUnauthorized
	case isTLSError(err):
		class = ErrTLS
	case errors.Is(err, syscall.ECONNREFUSED) || isHostNotFound(err):
		class = ErrUnreachable
	default:
		return err
	}
	return &classifiedError{class: class, err: err}
}

// staleTokenError marks a 401 or 403 answered to a client that had been
// let in before: its bearer token was revoked or expired early (a registry
// clock ahead of ours), which containers/image, trusting the lifetime the
// token was issued with, never notices. The client has been replaced by a
// fresh one, so one more try is worth it.
type staleTokenError struct{ err error }

func (e *staleTokenError) Error() string { return e.err.Error() }
func (e *staleTokenError) Unwrap() error { return e.err }

// IsTransient reports whether an operation that failed with err may succeed
// if tried again: HTTP 408, 429 and 5xx (but 501 and 505), connections
// refused, reset, closed under a request or cut short, timeouts, a
// monolithic upload refused (the next try is chunked), a registry gone silent
// (ErrStalled), and a stale token once its
// client was replaced. Cancellation, other 4xx answers, certificate
// problems, unknown hosts and digest mismatches are not.
func IsTransient(err error) bool {
	if errors.Is(err, ErrStalled) {
		return true
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrDigestMismatch) || isTLSError(err) {
		return false
	}
	if _, ok := errors.AsType[*staleTokenError](err); ok {
		return true
	}
	if isMonolithicRefusal(err) {
		return true
	}
	if status := httpStatus(err); status != 0 {
		switch {
		case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
			return true
		case status == http.StatusNotImplemented, status == http.StatusHTTPVersionNotSupported:
			return false
		}
		return status >= 500 && status < 600
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		// A request's body written to a connection the transport closed on
		// seeing it reset: the reset, seen from the writing side.
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound && (dnsErr.IsTimeout || dnsErr.IsTemporary)
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// httpStatus digs the HTTP status of a registry answer out of a
// containers/image error, or returns 0.
func httpStatus(err error) int {
	if e, ok := errors.AsType[docker.UnexpectedHTTPStatusError](err); ok {
		return e.StatusCode
	}
	if _, ok := errors.AsType[docker.ErrUnauthorizedForCredentials](err); ok {
		return http.StatusUnauthorized
	}
	if errors.Is(err, docker.ErrTooManyRequests) {
		return http.StatusTooManyRequests
	}
	if errs, ok := errors.AsType[errcode.Errors](err); ok && len(errs) > 0 {
		return httpStatus(errs[0])
	}
	var ec errcode.ErrorCoder
	if errors.As(err, &ec) {
		// Only 4xx answers are parsed into registry error codes; the
		// status is the code's, except for UNKNOWN, which registries
		// (registry.redhat.io, Harbor) also use for plain 404s.
		code := ec.ErrorCode()
		if code == errcode.ErrorCodeUnknown {
			if strings.Contains(strings.ToLower(err.Error()), "not found") {
				return http.StatusNotFound
			}
			return http.StatusBadRequest
		}
		return code.Descriptor().HTTPStatusCode
	}
	return statusField(err)
}

// statusField finds an int field StatusCode in any error of the chain.
// containers/image reports a 4xx answer whose body is not a registry error
// (an empty 404 from a proxy, say) as an unexported type; that field is the
// only structured trace of the status.
func statusField(err error) int {
	for err != nil {
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			if f := v.FieldByName("StatusCode"); f.IsValid() && f.CanInt() {
				return int(f.Int())
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if s := statusField(e); s != 0 {
					return s
				}
			}
			return 0
		default:
			return 0
		}
	}
	return 0
}

func isTLSError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
		alert            tls.AlertError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verification) || errors.As(err, &recordHeader) || errors.As(err, &alert) ||
		// net/http turns the RecordHeaderError of a plain-HTTP registry
		// into an error of its own, with nothing but this text.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

func isHostNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}
