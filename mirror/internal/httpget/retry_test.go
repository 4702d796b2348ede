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
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"-1", 0, false},
		{"99999999999", 24 * time.Hour, true},
		{"Wed, 01 May 2024 12:00:30 GMT", 30 * time.Second, true},
		{"Wed, 01 May 2024 11:00:00 GMT", 0, true}, // in the past
		{"soon", 0, false},
	} {
		if got, ok := parseRetryAfter(tt.in, now); got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %t; want %s, %t", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

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

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-5", "Wed, 01 May 2024 12:00:30 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "x"} {
		f.Add(s)
	}
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("parseRetryAfter(%q) = %s, %t", v, d, ok)
		}
	})
}
