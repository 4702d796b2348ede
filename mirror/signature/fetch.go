package signature

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror/internal/httpget"
	"github.com/ferryhq/ferry/mirror/retry"
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
	// MaxSignaturesPerDigest caps the signatures of one digest fetched
	// and kept, whatever Fetcher.MaxSignatures says: the cluster tries
	// signature-1 to signature-9 and no further (SPEC §2), so a store
	// offering more offers nothing a cluster would read, and a store
	// that never answers 404 costs at most this many requests.
	MaxSignaturesPerDigest = 9
	// DefaultMaxSignatures is how many signatures of one digest are read
	// at most unless told fewer.
	DefaultMaxSignatures = MaxSignaturesPerDigest
	// DefaultAttempts is how many times one URL is tried when the store
	// fails transiently (see DefaultRetry); enough to ride out a blip, not
	// an outage.
	DefaultAttempts = 4
	// DefaultBaseDelay is the wait before the first retry; it doubles at
	// each retry up to DefaultMaxDelay.
	DefaultBaseDelay = 500 * time.Millisecond
	// DefaultMaxDelay caps one wait between tries. A Retry-After asking
	// for longer ends the retries instead.
	DefaultMaxDelay = 10 * time.Second
	// DefaultRequestTimeout bounds one try of one signature, answer and
	// body, when Timeout is not set: signatures are tiny, so a slow answer
	// is a broken one.
	DefaultRequestTimeout = time.Minute
	// DefaultStallTimeout ends a try whose body moves no byte for this
	// long when StallTimeout is not set: no signature should take longer
	// than a second, but a lossy satellite link can pause TCP for ~30 s.
	DefaultStallTimeout = time.Minute
	// errorBodyDrain is how much of a non-200 body is read (and
	// dropped) so the connection can be reused.
	errorBodyDrain = 4 << 10
)

// Fetcher reads release signatures from signature stores. The zero value
// is ready to use: Red Hat's stores, a proxy-aware client, defaults below,
// each URL tried once (set Retry to DefaultRetry() to retry).
// A Fetcher is safe for concurrent use if its Client is.
type Fetcher struct {
	// Stores are base URLs tried in order: http://, https:// or file://
	// (a local directory holding the same <algo>=<hex>/signature-<N>
	// tree). Nil means DefaultStores.
	Stores []string
	// Client makes the HTTP requests. Nil means a client that honours
	// the proxy environment (HTTPS_PROXY, NO_PROXY, ...) and times a
	// request out after Timeout.
	Client *http.Client
	// Timeout bounds one try of one signature, answer and body; the
	// retries of one signature then take at most Attempts × Timeout plus
	// the waits. 0 means DefaultRequestTimeout.
	Timeout time.Duration
	// StallTimeout ends a try whose body moves no byte for that long.
	// 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// MaxSignatures is the most signatures read per release digest; 0
	// means DefaultMaxSignatures, and more than MaxSignaturesPerDigest
	// means MaxSignaturesPerDigest.
	MaxSignatures int
	// MaxImageSignatures is the most signatures read per image by
	// FetchImage; 0 or more than MaxSignaturesPerImage means
	// MaxSignaturesPerImage.
	MaxImageSignatures int
	// MaxBody caps one signature; a larger one is refused with a
	// *TooLargeError. 0 means MaxSignatureSize (64 KiB).
	MaxBody int64
	// Retry is the retry policy for transient failures: a connection
	// refused, reset or timed out, a body cut short, a 5xx answer (but 501
	// and 505), or a 429. Any other answer, an oversized body and TLS or
	// DNS failures are not retried. Its zero value tries once; a
	// Retry-After longer than its Max ends the retries. OnRetry is given
	// "fetch signature <URL>" as the operation, and must be safe for
	// concurrent use if the Fetcher is used concurrently.
	Retry retry.Policy
	// UserAgent is sent with each request; empty means "ferry".
	UserAgent string
}

// DefaultRetry is the retry policy of the package defaults:
// DefaultAttempts, DefaultBaseDelay, DefaultMaxDelay.
func DefaultRetry() retry.Policy {
	return retry.Policy{Attempts: DefaultAttempts, Base: DefaultBaseDelay, Max: DefaultMaxDelay}
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
	client, done := f.httpClient()
	defer done()
	g := f.getter(client)
	var tried []Attempt
	for i, base := range bases {
		sigURL := func(n int) *url.URL { return base.JoinPath(StorePath(d, n)) }
		sigs, err := f.fetchStore(ctx, g, stores[i], f.releaseMax(), sigURL, &tried)
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

// releaseMax is how many signatures of a release digest are read at most.
func (f *Fetcher) releaseMax() int {
	if f.MaxSignatures <= 0 {
		return DefaultMaxSignatures
	}
	return min(f.MaxSignatures, MaxSignaturesPerDigest)
}

// fetchStore reads signature-1..maxSigs from one store, signature n at
// sigURL(n), until the first not-found. It returns an error when the store
// failed on some signature; no signature and no error means the store has
// none.
func (f *Fetcher) fetchStore(ctx context.Context, g *httpget.Getter, store string, maxSigs int, sigURL func(n int) *url.URL, tried *[]Attempt) ([]Fetched, error) {
	var sigs []Fetched
	for n := 1; n <= maxSigs; n++ {
		u := sigURL(n)
		data, tries, err := g.Get(ctx, u)
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

// answerFor describes a failure for Attempt.Answer, without repeating the
// URL the Attempt already names.
func answerFor(err error) string {
	var (
		ra       *httpget.RetryAfterError
		status   *StatusError
		tooLarge *TooLargeError
		urlErr   *url.Error
	)
	switch {
	case errors.As(err, &ra):
		return fmt.Sprintf("%s; asks to retry after %s, more than the %s limit", answerFor(ra.Err), ra.After, ra.Limit)
	case errors.As(err, &status):
		return status.Status
	case errors.As(err, &tooLarge):
		return fmt.Sprintf("body larger than the %d-byte limit", tooLarge.Limit)
	case errors.As(err, &urlErr):
		return urlErr.Err.Error()
	}
	return err.Error()
}

// httpClient is f.Client, or a client of its own that done releases.
func (f *Fetcher) httpClient() (client *http.Client, done func()) {
	if f.Client != nil {
		return f.Client, func() {}
	}
	client = httpget.NewClient(orDefault(f.Timeout, DefaultRequestTimeout))
	return client, client.CloseIdleConnections
}

// getter reads one signature from a store over client.
func (f *Fetcher) getter(client *http.Client) *httpget.Getter {
	ua := f.UserAgent
	if ua == "" {
		ua = "ferry"
	}
	maxBody := f.MaxBody
	if maxBody <= 0 {
		maxBody = MaxSignatureSize
	}
	return &httpget.Getter{
		Client:       client,
		Header:       http.Header{"User-Agent": {ua}},
		MaxBody:      maxBody,
		ErrorBody:    errorBodyDrain,
		Retry:        f.Retry,
		Timeout:      orDefault(f.Timeout, DefaultRequestTimeout),
		StallTimeout: orDefault(f.StallTimeout, DefaultStallTimeout),
		NotFoundOK:   true,
		What:         "signature",
		Server:       "store",
		TooLarge:     func(u string, limit int64) error { return &TooLargeError{URL: u, Limit: limit} },
	}
}

// orDefault is d, or def when d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
