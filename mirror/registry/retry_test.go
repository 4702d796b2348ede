package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/types"

	"github.com/ferryhq/ferry/mirror/retry"
)

func TestClassify(t *testing.T) {
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "http://r/v2/", Err: err} }
	opErr := func(errno syscall.Errno) error {
		return urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)})
	}
	for _, tc := range []struct {
		name      string
		err       error
		class     error
		transient bool
	}{
		{"503", docker.UnexpectedHTTPStatusError{StatusCode: 503}, nil, true},
		{"500 wrapped", fmt.Errorf("x: %w", docker.UnexpectedHTTPStatusError{StatusCode: 500}), nil, true},
		{"501", docker.UnexpectedHTTPStatusError{StatusCode: 501}, nil, false},
		{"429", docker.ErrTooManyRequests, nil, true},
		{"429 errcode", errcode.ErrorCodeTooManyRequests.WithMessage("slow down"), nil, true},
		{"manifest unknown", fmt.Errorf("reading: %w", v2.ErrorCodeManifestUnknown.WithMessage("manifest unknown")), ErrNotFound, false},
		{"blob unknown", v2.ErrorCodeBlobUnknown, ErrNotFound, false},
		{"name unknown", errcode.Errors{v2.ErrorCodeNameUnknown.WithMessage("x")}, ErrNotFound, false},
		{"UNKNOWN Not Found", errcode.ErrorCodeUnknown.WithMessage("Not Found"), ErrNotFound, false},
		{"UNKNOWN other", errcode.ErrorCodeUnknown.WithMessage("bad request"), nil, false},
		{"401", docker.ErrUnauthorizedForCredentials{Err: errors.New("bad password")}, ErrUnauthorized, false},
		{"denied", errcode.ErrorCodeDenied.WithMessage("denied"), ErrUnauthorized, false},
		{"refused", opErr(syscall.ECONNREFUSED), ErrUnreachable, true},
		{"reset", opErr(syscall.ECONNRESET), nil, true},
		// An upload's body written to a connection the transport closed on
		// seeing it reset.
		{"closed under a write", urlErr(&net.OpError{Op: "write", Net: "tcp", Err: net.ErrClosed}), nil, true},
		{"429 status", &StatusError{StatusCode: 429}, nil, true},
		{"404 status", &StatusError{StatusCode: 404}, ErrNotFound, false},
		{"unexpected EOF", fmt.Errorf("reading manifest body: %w", io.ErrUnexpectedEOF), nil, true},
		{"EOF", urlErr(io.EOF), nil, true},
		{"timeout", urlErr(&net.DNSError{Err: "i/o timeout", IsTimeout: true}), nil, true},
		{"no such host", urlErr(&net.DNSError{Err: "no such host", IsNotFound: true}), ErrUnreachable, false},
		{"canceled", urlErr(context.Canceled), nil, false},
		{"deadline", context.DeadlineExceeded, nil, false},
		{"mismatch", fmt.Errorf("x: %w", ErrDigestMismatch), nil, false},
		{"other", errors.New("invalid input"), nil, false},
	} {
		got := classify(tc.err)
		for _, class := range []error{ErrNotFound, ErrUnauthorized, ErrTLS, ErrUnreachable} {
			if errors.Is(got, class) != (class == tc.class) {
				t.Errorf("%s: classify gives errors.Is(%v) = %v", tc.name, class, errors.Is(got, class))
			}
		}
		if !strings.Contains(got.Error(), tc.err.Error()) {
			t.Errorf("%s: classify loses the original error", tc.name)
		}
		if IsTransient(got) != tc.transient {
			t.Errorf("%s: IsTransient = %v, want %v", tc.name, !tc.transient, tc.transient)
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

func TestDo(t *testing.T) {
	transient := docker.UnexpectedHTTPStatusError{StatusCode: 503}
	p := RetryPolicy{Attempts: 3, Base: time.Microsecond, Max: time.Millisecond}

	calls := 0
	err := Do(t.Context(), p, "op", func(context.Context) error { calls++; return transient })
	if calls != 3 || !errors.Is(err, transient) {
		t.Errorf("transient: %d calls, %v", calls, err)
	}

	calls = 0
	permanent := errors.New("permanent")
	if err := Do(t.Context(), p, "op", func(context.Context) error { calls++; return permanent }); calls != 1 || err != permanent {
		t.Errorf("permanent: %d calls, %v", calls, err)
	}

	calls = 0
	if err := Do(t.Context(), RetryPolicy{}, "op", func(context.Context) error { calls++; return transient }); calls != 1 || err == nil {
		t.Errorf("zero policy: %d calls, %v", calls, err)
	}

	// Cancellation while waiting stops at once.
	ctx, cancel := context.WithCancel(t.Context())
	slow := RetryPolicy{Attempts: 5, Base: time.Hour, OnRetry: func(e retry.Event) {
		if e.Op != "op" || e.Attempt != 1 || e.Wait <= 0 {
			t.Errorf("OnRetry(%+v)", e)
		}
		cancel()
	}}
	start := time.Now()
	err = Do(ctx, slow, "op", func(context.Context) error { return transient })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, transient) || time.Since(start) > 10*time.Second {
		t.Errorf("cancelled wait: %v", err)
	}
}

func TestOptionsSystemContext(t *testing.T) {
	sys := Options{AuthFile: "/a.json", CertDir: "/certs", UserAgent: "ferry/1"}.SystemContext()
	if sys.AuthFilePath != "/a.json" || sys.DockerCertPath != "/certs" || sys.DockerRegistryUserAgent != "ferry/1" {
		t.Errorf("%+v", sys)
	}
	if sys.DockerInsecureSkipTLSVerify != types.OptionalBoolTrue {
		t.Errorf("TLSVerify false: DockerInsecureSkipTLSVerify = %v", sys.DockerInsecureSkipTLSVerify)
	}
	// Verifying leaves it undefined, so that registries.conf can still mark a registry insecure.
	if got := DefaultOptions().SystemContext().DockerInsecureSkipTLSVerify; got != types.OptionalBoolUndefined {
		t.Errorf("TLSVerify true: DockerInsecureSkipTLSVerify = %v", got)
	}
}
