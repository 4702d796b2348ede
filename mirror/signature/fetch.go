package signature

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

	"github.com/opencontainers/go-digest"
)

// DefaultStores are Red Hat's two official release signature stores
// (SPEC §2), in the order the cluster tries them. Treat it as read-only;
// Fetcher never modifies it.
var DefaultStores = []string{
	"https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release",
	"https://storage.googleapis.com/openshift-release/official/signatures/openshift/release",
}

// Fetcher defaults.
const (
	// DefaultMaxSignatures is how many signatures of one digest are read
	// at most: the cluster tries signature-1 to signature-9 (SPEC §2).
	DefaultMaxSignatures = 9
	// DefaultAttempts is how many times one URL is tried when the store
	// fails transiently; enough to ride out a blip, not an outage.
	DefaultAttempts = 4
	// DefaultBaseDelay is the wait before the first retry; it doubles at
	// each retry up to DefaultMaxDelay.
	DefaultBaseDelay = 500 * time.Millisecond
	// DefaultMaxDelay caps one wait between tries. A Retry-After asking
	// for longer ends the retries instead.
	DefaultMaxDelay = 10 * time.Second
	// DefaultRequestTimeout bounds one request of the default client:
	// signatures are tiny, so a slow answer is a broken one.
	DefaultRequestTimeout = time.Minute
	// errorBodyDrain is how much of a non-200 body is read (and
	// dropped) so the connection can be reused.
	errorBodyDrain = 4 << 10
)

// Fetcher reads release signatures from signature stores. The zero value
// is ready to use: Red Hat's stores, a proxy-aware client, defaults below.
// A Fetcher is safe for concurrent use if its Client is.
type Fetcher struct {
	// Stores are base URLs tried in order: http://, https:// or file://
	// (a local directory holding the same <algo>=<hex>/signature-<N>
	// tree). Nil means DefaultStores.
	Stores []string
	// Client makes the HTTP requests. Nil means a client that honours
	// the proxy environment (HTTPS_PROXY, NO_PROXY, ...) and times a
	// request out after DefaultRequestTimeout.
	Client *http.Client
	// MaxSignatures is the most signatures read per digest; 0 means
	// DefaultMaxSignatures.
	MaxSignatures int
	// MaxBody caps one signature; a larger one is refused with a
	// *TooLargeError. 0 means MaxSignatureSize (64 KiB).
	MaxBody int64
	// Retry is the retry policy for transient failures.
	Retry Retry
	// UserAgent is sent with each request; empty means "ferry".
	UserAgent string
}

// Retry says how a URL is retried after a transient failure: a connection
// refused, reset or timed out, a 5xx answer, or a 429. Any other 4xx, an
// oversized body and TLS or DNS failures are not retried. Zero fields take
// the defaults.
type Retry struct {
	// Attempts is how many times a URL is tried in all (1: no retry);
	// 0 means DefaultAttempts.
	Attempts int
	// BaseDelay is the wait before the first retry, doubled for each
	// further one, with jitter; 0 means DefaultBaseDelay.
	BaseDelay time.Duration
	// MaxDelay caps one wait; a Retry-After longer than it ends the
	// retries. 0 means DefaultMaxDelay.
	MaxDelay time.Duration
}

// Fetched is one signature as a store served it.
type Fetched struct {
	// Store is the store's base URL, as given.
	Store string
	// N is the signature's number in that store: signature-<N>.
	N int
	// URL is where it was read from.
	URL string
	// Data is the signature, byte for byte.
	Data []byte
}

// Attempt is one URL a Fetcher asked, and what it answered.
type Attempt struct {
	URL string
	// Answer is a short description: "signature (812 bytes)", "not
	// found", "503 Service Unavailable", or an error, with the number of
	// tries when there was more than one.
	Answer string
	// Err is the failure, nil for a signature or a not-found.
	Err error
}

// FetchResult is the outcome of a successful Fetch.
type FetchResult struct {
	// Store is the store the signatures came from.
	Store string
	// Signatures are signature-1.. of that store, in order, without gaps:
	// reading stopped at the first not-found or at MaxSignatures.
	Signatures []Fetched
	// Tried lists every URL asked, in order, including those of stores
	// that failed before this one and the final not-found.
	Tried []Attempt
}

// StorePath is the path of signature n of d below a store's base:
// "<algo>=<hex>/signature-<n>". It is also where a bundle keeps them.
func StorePath(d digest.Digest, n int) string {
	return fmt.Sprintf("%s=%s/signature-%d", d.Algorithm(), d.Encoded(), n)
}

// Fetch reads the signatures of d from the first store that has any.
// Within a store it reads signature-1, signature-2, ... until the first
// not-found (an HTTP 404 or a missing file) or MaxSignatures. A store that
// cannot be reached, has no signature-1, or fails on any signature
// (after retries) is passed over for the next, so that a store never
// contributes part of its set. When no store gives a signature the error
// is a *FetchError listing every URL tried and its answer. A malformed
// store URL or digest fails at once; so does ctx ending.
func (f *Fetcher) Fetch(ctx context.Context, d digest.Digest) (*FetchResult, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("fetch signatures: digest %q: %w", d, err)
	}
	stores := f.Stores
	if stores == nil {
		stores = DefaultStores
	}
	if len(stores) == 0 {
		return nil, errors.New("fetch signatures: no signature stores given")
	}
	bases := make([]*url.URL, len(stores))
	for i, s := range stores {
		u, err := parseStore(s)
		if err != nil {
			return nil, err
		}
		bases[i] = u
	}
	client := f.Client
	if client == nil {
		client = defaultClient()
		defer client.CloseIdleConnections()
	}
	var tried []Attempt
	for i, base := range bases {
		sigs, err := f.fetchStore(ctx, client, stores[i], base, d, &tried)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetch signatures of %s: %w", d, context.Cause(ctx))
		}
		if err == nil && len(sigs) > 0 {
			return &FetchResult{Store: stores[i], Signatures: sigs, Tried: tried}, nil
		}
	}
	return nil, &FetchError{Digest: d, Tried: tried}
}

// parseStore checks a store URL.
func parseStore(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("signature store %q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("signature store %q: no host", s)
		}
	case "file":
		// file:///abs/dir; "file://dir" would make "dir" a host.
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("signature store %q: a file:// store needs an absolute path (file:///dir), not host %q", s, u.Host)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("signature store %q: no directory", s)
		}
	default:
		return nil, fmt.Errorf("signature store %q: scheme %q unsupported; use http, https or file", s, u.Scheme)
	}
	return u, nil
}

// fetchStore reads the signatures of d from one store. It returns an error
// when the store failed on some signature; no signature and no error means
// the store has none.
func (f *Fetcher) fetchStore(ctx context.Context, client *http.Client, store string, base *url.URL, d digest.Digest, tried *[]Attempt) ([]Fetched, error) {
	maxSigs := f.MaxSignatures
	if maxSigs <= 0 {
		maxSigs = DefaultMaxSignatures
	}
	var sigs []Fetched
	for n := 1; n <= maxSigs; n++ {
		u := base.JoinPath(StorePath(d, n))
		data, tries, err := f.get(ctx, client, u)
		a := Attempt{URL: u.String()}
		switch {
		case err == nil && data == nil:
			a.Answer = "not found"
		case err == nil:
			a.Answer = fmt.Sprintf("signature (%d bytes)", len(data))
		default:
			a.Answer, a.Err = answerFor(err), err
		}
		if tries > 1 {
			a.Answer += fmt.Sprintf(" (after %d tries)", tries)
		}
		*tried = append(*tried, a)
		if err != nil {
			return nil, err
		}
		if data == nil {
			break
		}
		sigs = append(sigs, Fetched{Store: store, N: n, URL: u.String(), Data: data})
	}
	return sigs, nil
}

// get reads u, retrying transient failures. It returns nil data and no
// error for not-found, and how many tries it made.
func (f *Fetcher) get(ctx context.Context, client *http.Client, u *url.URL) (data []byte, tries int, err error) {
	if u.Scheme == "file" {
		data, err := f.readFile(u)
		return data, 1, err
	}
	attempts := f.Retry.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	for tries = 1; ; tries++ {
		data, err := f.getOnce(ctx, client, u)
		var t *transientError
		if err == nil || !errors.As(err, &t) || tries >= attempts || ctx.Err() != nil {
			return data, tries, err
		}
		wait := f.backoff(tries)
		if t.hasRetryAfter {
			if maxDelay := f.maxDelay(); t.retryAfter > maxDelay {
				return nil, tries, &retryAfterError{err: err, after: t.retryAfter, limit: maxDelay}
			}
			wait = t.retryAfter
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, tries, err
		}
	}
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

// retryAfterError ends the retries of a store that asks to wait too long.
type retryAfterError struct {
	err          error
	after, limit time.Duration
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("%v; the store asks to retry after %s, more than the %s limit", e.err, e.after, e.limit)
}

func (e *retryAfterError) Unwrap() error { return e.err }

// answerFor describes a failure for Attempt.Answer, without repeating the
// URL the Attempt already names.
func answerFor(err error) string {
	var (
		ra       *retryAfterError
		status   *StatusError
		tooLarge *TooLargeError
		urlErr   *url.Error
	)
	switch {
	case errors.As(err, &ra):
		return fmt.Sprintf("%s; asks to retry after %s, more than the %s limit", answerFor(ra.err), ra.after, ra.limit)
	case errors.As(err, &status):
		return status.Status
	case errors.As(err, &tooLarge):
		return fmt.Sprintf("body larger than the %d-byte limit", tooLarge.Limit)
	case errors.As(err, &urlErr):
		return urlErr.Err.Error()
	}
	return err.Error()
}

// getOnce makes one GET. A transient failure is a *transientError.
func (f *Fetcher) getOnce(ctx context.Context, client *http.Client, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	ua := f.UserAgent
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

	switch {
	case resp.StatusCode == http.StatusOK:
		limit := f.maxBody()
		if resp.ContentLength > limit {
			return nil, &TooLargeError{URL: u.String(), Limit: limit}
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			// Cut off mid-body: the next try may get it whole.
			return nil, &transientError{err: fmt.Errorf("GET %s: reading body: %w", u, err)}
		}
		if int64(len(data)) > limit {
			return nil, &TooLargeError{URL: u.String(), Limit: limit}
		}
		return data, nil
	case resp.StatusCode == http.StatusNotFound:
		drain(resp.Body)
		return nil, nil
	}
	drain(resp.Body)
	err = &StatusError{URL: u.String(), Status: resp.Status, Code: resp.StatusCode}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, &transientError{err: err, retryAfter: after, hasRetryAfter: ok}
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return nil, err // server errors that will not go away
	}
	if resp.StatusCode >= 500 {
		return nil, &transientError{err: err}
	}
	return nil, err
}

// readFile reads signature u of a file:// store; a missing file is
// not-found.
func (f *Fetcher) readFile(u *url.URL) (data []byte, err error) {
	path := filepath.FromSlash(u.Path)
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read signature: %w", err)
	}
	defer func() {
		if cerr := file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("read signature %s: close: %w", path, cerr)
		}
	}()
	limit := f.maxBody()
	data, err = io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read signature %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{URL: u.String(), Limit: limit}
	}
	// Distinguish an empty file from not-found: it is a (bad) signature.
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// defaultClient is the client of a Fetcher without one.
func defaultClient() *http.Client {
	// http.DefaultTransport's clone keeps ProxyFromEnvironment, the
	// dialer timeouts and HTTP/2.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	return &http.Client{Transport: t, Timeout: DefaultRequestTimeout}
}

func (f *Fetcher) maxBody() int64 {
	if f.MaxBody > 0 {
		return f.MaxBody
	}
	return MaxSignatureSize
}

func (f *Fetcher) maxDelay() time.Duration {
	if f.Retry.MaxDelay > 0 {
		return f.Retry.MaxDelay
	}
	return DefaultMaxDelay
}

// backoff is the wait after the given try: BaseDelay doubled per try,
// capped at MaxDelay, with the upper half jittered so that many clients
// do not retry in step.
func (f *Fetcher) backoff(try int) time.Duration {
	base := f.Retry.BaseDelay
	if base <= 0 {
		base = DefaultBaseDelay
	}
	d := f.maxDelay()
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
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
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
		return false // the caller gave up; Fetch notices its context
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

func drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, errorBodyDrain))
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
