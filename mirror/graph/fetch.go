package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/mirror/release"
)

// DefaultURL is Red Hat's update service (SPEC §6).
const DefaultURL = "https://api.openshift.com/api/upgrades_info/v1/graph"

// Fetch defaults and limits.
const (
	// MaxGraphSize caps a graph document. A whole channel is well under
	// 1 MiB today (stable-4.15: 83 KB); 16 MiB leaves room for growth and
	// still bounds what a broken or hostile server can make ferry hold.
	MaxGraphSize = 16 << 20
	// maxErrorBody caps the error body read for an {"kind", "value"}.
	maxErrorBody = 64 << 10
	// DefaultAttempts is how many times the graph is asked for when the
	// service fails transiently: enough to ride out a blip.
	DefaultAttempts = 4
	// DefaultBaseDelay is the wait before the first retry, doubled at each
	// further one up to DefaultMaxDelay.
	DefaultBaseDelay = 500 * time.Millisecond
	// DefaultMaxDelay caps one wait between tries; a Retry-After asking for
	// longer ends the retries.
	DefaultMaxDelay = 10 * time.Second
	// DefaultRequestTimeout bounds one request of the default client.
	DefaultRequestTimeout = 2 * time.Minute
	// DefaultArch is the graph architecture asked for when none is given.
	DefaultArch = "amd64"
)

// FetchOptions say which graph to fetch and how.
type FetchOptions struct {
	// URL is the update service's graph endpoint (http or https), or a
	// file:///path of a graph document saved earlier. Empty means
	// DefaultURL.
	URL string
	// Channel is the channel, e.g. stable-4.15. Required.
	Channel string
	// Arch is the architecture as the API names it (amd64, arm64, s390x,
	// ppc64le, multi) or as releases do (x86_64, aarch64). Empty means
	// DefaultArch.
	Arch string
	// Client makes the HTTP requests. Nil means a client that honours the
	// proxy environment (HTTPS_PROXY, NO_PROXY, ...) and times a request
	// out after DefaultRequestTimeout.
	Client *http.Client
	// MaxBody caps the graph document; a larger one is a *TooLargeError.
	// 0 means MaxGraphSize.
	MaxBody int64
	// Retry is the retry policy for transient failures.
	Retry Retry
	// UserAgent is sent with each request; empty means "ferry".
	UserAgent string
}

// Retry says how the request is retried after a transient failure: a
// connection refused, reset or timed out, a body cut short, a 5xx answer
// (but 501 and 505) or a 429. Other answers, an oversized body and TLS or
// DNS failures are not retried. Zero fields take the defaults.
type Retry struct {
	// Attempts is how many times the graph is asked for in all (1: no
	// retry); 0 means DefaultAttempts.
	Attempts int
	// BaseDelay is the wait before the first retry, doubled for each
	// further one, with jitter; 0 means DefaultBaseDelay.
	BaseDelay time.Duration
	// MaxDelay caps one wait; 0 means DefaultMaxDelay.
	MaxDelay time.Duration
	// OnRetry, when set, is called before each wait with the number of
	// the try that failed, its error and the wait.
	OnRetry func(attempt int, err error, wait time.Duration)
}

// Fetch reads the update graph of a channel and architecture and checks it
// (see [Parse]). Over http(s) it asks with the channel and arch query
// parameters and Accept: application/json; an error answer with an
// {"kind", "value"} body is an *APIError, another a *StatusError. A
// file:// URL names a saved graph document, which may hold more than one
// channel.
//
// Either way the result keeps only the releases of the channel and
// architecture by their metadata (see [MetadataChannels], [MetadataArch]),
// so a whole-graph document, from a file or a plain web server, reads like
// the service's answer. A graph with no release left is an
// *EmptyChannelError: the service answers an unknown channel with an empty
// graph.
func Fetch(ctx context.Context, opts FetchOptions) (*Graph, error) {
	if opts.Channel == "" {
		return nil, errors.New("fetch update graph: no channel given")
	}
	arch := opts.Arch
	if arch == "" {
		arch = DefaultArch
	}
	arch, err := release.GraphArch(arch)
	if err != nil {
		return nil, fmt.Errorf("fetch update graph: %w", err)
	}
	raw := opts.URL
	if raw == "" {
		raw = DefaultURL
	}
	u, err := parseURL(raw)
	if err != nil {
		return nil, err
	}
	var data []byte
	if u.Scheme == "file" {
		data, err = readFile(u, opts.maxBody())
	} else {
		q := u.Query()
		q.Set("channel", opts.Channel)
		q.Set("arch", arch)
		u.RawQuery = q.Encode()
		data, err = opts.get(ctx, u)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch update graph of %s (%s): %w", opts.Channel, arch, err)
	}
	g, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("update graph from %s: %w", u.Redacted(), err)
	}
	g = g.filter(opts.Channel, arch)
	if len(g.nodes) == 0 {
		return nil, &EmptyChannelError{Channel: opts.Channel, Arch: arch}
	}
	return g, nil
}

// parseURL checks a graph URL.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("graph URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("graph URL %q: no host", s)
		}
	case "file":
		// file:///abs/graph.json; "file://graph.json" would make a host.
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("graph URL %q: a file:// URL needs an absolute path (file:///dir/graph.json), not host %q", s, u.Host)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("graph URL %q: no file", s)
		}
	default:
		return nil, fmt.Errorf("graph URL %q: scheme %q unsupported; use https, http or file", s, u.Scheme)
	}
	return u, nil
}

// readFile reads a graph document from a file:// URL.
func readFile(u *url.URL, limit int64) (data []byte, err error) {
	path := filepath.FromSlash(u.Path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read graph: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("read graph %s: close: %w", path, cerr)
		}
	}()
	data, err = io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read graph %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{URL: u.String(), Limit: limit}
	}
	return data, nil
}

// get asks for u, retrying transient failures.
func (o *FetchOptions) get(ctx context.Context, u *url.URL) ([]byte, error) {
	client := o.Client
	if client == nil {
		client = defaultClient()
		defer client.CloseIdleConnections()
	}
	attempts := o.Retry.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	for try := 1; ; try++ {
		data, err := o.getOnce(ctx, client, u)
		var t *transientError
		if err == nil || !errors.As(err, &t) || ctx.Err() != nil {
			return data, err
		}
		if try >= attempts {
			if try > 1 {
				return nil, fmt.Errorf("%w (after %d tries)", err, try)
			}
			return nil, err
		}
		wait := o.backoff(try)
		if t.hasRetryAfter {
			if limit := o.maxDelay(); t.retryAfter > limit {
				return nil, fmt.Errorf("%w; the service asks to retry after %s, more than the %s limit", err, t.retryAfter, limit)
			}
			wait = t.retryAfter
		}
		if o.Retry.OnRetry != nil {
			o.Retry.OnRetry(try, err, wait)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// getOnce makes one request. A transient failure is a *transientError.
func (o *FetchOptions) getOnce(ctx context.Context, client *http.Client, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	req.Header.Set("Accept", "application/json")
	ua := o.UserAgent
	if ua == "" {
		ua = "ferry"
	}
	req.Header.Set("User-Agent", ua)
	resp, err := client.Do(req)
	if err != nil {
		if transientNetError(err) {
			return nil, &transientError{err: err}
		}
		return nil, err
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusOK {
		limit := o.maxBody()
		if resp.ContentLength > limit {
			return nil, &TooLargeError{URL: u.Redacted(), Limit: limit}
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			// Cut off mid-body: the next try may get it whole.
			return nil, &transientError{err: fmt.Errorf("GET %s: reading body: %w", u.Redacted(), err)}
		}
		if int64(len(data)) > limit {
			return nil, &TooLargeError{URL: u.Redacted(), Limit: limit}
		}
		return data, nil
	}

	err = statusError(u, resp)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, &transientError{err: err, retryAfter: after, hasRetryAfter: ok}
	case resp.StatusCode == http.StatusNotImplemented || resp.StatusCode == http.StatusHTTPVersionNotSupported:
		return nil, err // server errors that will not go away
	case resp.StatusCode >= 500:
		return nil, &transientError{err: err}
	}
	return nil, err
}

// statusError reads an error answer: an *APIError when the body is the
// service's {"kind", "value"}, else a *StatusError.
func statusError(u *url.URL, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e struct {
		Kind  string `json:"kind"`
		Value string `json:"value"`
	}
	if json.Unmarshal(body, &e) == nil && e.Kind != "" {
		return &APIError{URL: u.Redacted(), StatusCode: resp.StatusCode, Kind: e.Kind, Value: e.Value}
	}
	return &StatusError{URL: u.Redacted(), Status: resp.Status, Code: resp.StatusCode}
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

// defaultClient is the client of FetchOptions without one.
func defaultClient() *http.Client {
	// http.DefaultTransport's clone keeps the dialer timeouts and HTTP/2.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	return &http.Client{Transport: t, Timeout: DefaultRequestTimeout}
}

func (o *FetchOptions) maxBody() int64 {
	if o.MaxBody > 0 {
		return o.MaxBody
	}
	return MaxGraphSize
}

func (o *FetchOptions) maxDelay() time.Duration {
	if o.Retry.MaxDelay > 0 {
		return o.Retry.MaxDelay
	}
	return DefaultMaxDelay
}

// backoff is the wait after the given try: BaseDelay doubled per try,
// capped at MaxDelay, its upper half jittered so that clients do not retry
// in step.
func (o *FetchOptions) backoff(try int) time.Duration {
	base := o.Retry.BaseDelay
	if base <= 0 {
		base = DefaultBaseDelay
	}
	d := o.maxDelay()
	if try-1 < 30 { // beyond that the shift overflows, and d is capped anyway
		if b := base << (try - 1); b > 0 && b < d {
			d = b
		}
	}
	if half := int64(d / 2); half > 0 {
		return time.Duration(half + rand.Int64N(half+1))
	}
	return d
}

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
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second, true
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
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
		dnsErr           *net.DNSError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return false // the caller gave up; get notices its context
	case errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
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
