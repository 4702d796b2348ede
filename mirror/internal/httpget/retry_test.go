package httpget

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"
)

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestTransientNetError(t *testing.T) {
	wrap := func(err error) error { return &url.Error{Op: "Get", URL: "https://example.com", Err: err} }
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused", wrap(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		{"reset", wrap(syscall.ECONNRESET), true},
		{"broken pipe", wrap(fmt.Errorf("write: %w", syscall.EPIPE)), true},
		{"closed early", wrap(io.ErrUnexpectedEOF), true},
		{"timeout", wrap(timeoutError{}), true},
		{"DNS timeout", wrap(&net.DNSError{Err: "timeout", IsTimeout: true}), true},
		{"no such host", wrap(&net.DNSError{Err: "no such host", IsNotFound: true}), false},
		{"unknown authority", wrap(x509.UnknownAuthorityError{}), false},
		{"wrong host", wrap(x509.HostnameError{Host: "example.com"}), false},
		{"failed verification", wrap(&tls.CertificateVerificationError{Err: timeoutError{}}), false},
		{"cancelled", wrap(context.Canceled), false},
		{"other", errors.New("boom"), false},
	} {
		if got := transientNetError(tt.err); got != tt.want {
			t.Errorf("%s: transientNetError(%v) = %t, want %t", tt.name, tt.err, got, tt.want)
		}
	}
}
