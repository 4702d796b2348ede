// Package httpget reads one small document (a signature, an update graph)
// from an http, https or file:// URL, for the fetchers of package mirror's
// subpackages.
//
// A [Getter] caps what it reads into memory, retries transient failures
// with exponential backoff and jitter, honours Retry-After, and leaves
// everything a caller's users see to the caller: the client and headers,
// the limits and retry policy with their defaults already applied, and the
// typed errors its failures become. It keeps no state between calls and
// reads no global configuration.
//
// Transient failures, the ones retried, are: a connection refused, reset,
// aborted or closed early; a timeout, the Getter's own (Timeout,
// StallTimeout) or the client's; a body cut short; a 429 or a 5xx answer
// other than 501 and 505. Everything else, including a body over
// the cap and TLS or DNS-name failures, fails at once.
package httpget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/mirror/retry"
)

// clientTimeoutSlack is how much longer than a Getter's Timeout the
// client's own timeout runs. A Getter ends a try at its Timeout itself and
// says so (a *TimeoutError naming the bound); were the client's timeout the
// same, the two would race, and when the client won the error would be
// net/http's "Client.Timeout exceeded" instead. The client's timeout stays
// as a backstop.
const clientTimeoutSlack = time.Second

// NewClient returns the client a fetcher uses when its caller gives none:
// it honours the proxy environment (HTTPS_PROXY, NO_PROXY, ...), keeps
// http.DefaultTransport's dialer timeouts and HTTP/2, and times a request
// out a little after timeout (a Getter with that Timeout ends the try
// first). The caller owns it and should CloseIdleConnections when done.
func NewClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	if timeout > 0 {
		timeout += clientTimeoutSlack
	}
	return &http.Client{Transport: t, Timeout: timeout}
}

// Getter reads documents. Fill in Client (for http and https), MaxBody and
// Retry; the other fields may be left zero. A Getter is safe for concurrent use if its
// Client and hooks are.
type Getter struct {
	// Client makes the requests; it is not used for file:// URLs.
	Client *http.Client
	// Header is sent with each request (User-Agent, Accept, ...).
	Header http.Header
	// MaxBody caps a document, over HTTP or from a file. A larger one
	// fails with the TooLarge error and is not retried; 0 allows only an
	// empty document.
	MaxBody int64
	// ErrorBody is how much of the body of an answer other than 200 is
	// read: it is given to StatusError, and reading it lets the
	// connection be reused.
	ErrorBody int64
	// Retry is the retry policy; its zero value tries once. Its OnRetry
	// is given "fetch <What> <URL>" as the operation. A Retry-After that
	// asks for longer than its Max ends the retries.
	Retry retry.Policy
	// Timeout bounds one try whole: the connection, the answer and the
	// reading of the document. It also bounds one Get, tries and waits
	// included, to Attempts × Timeout + (Attempts − 1) × Max, so a
	// server that trickles fails in bounded time. 0 means no bound beyond
	// the Client's.
	Timeout time.Duration
	// StallTimeout ends a try whose body moves no byte for that long.
	// 0 means no bound.
	StallTimeout time.Duration

	// NotFoundOK makes a 404 answer or a missing file a not-found: Get
	// returns a nil body and no error. Otherwise they are errors.
	NotFoundOK bool
	// Redact masks the password of a URL in errors (see url.URL.Redacted).
	Redact bool
	// NoteTries makes an error that ends the retries because the tries ran
	// out say how many there were: "... (after 3 tries)".
	NoteTries bool
	// What names the document: "read <What> ..." in errors reading a
	// file, "fetch <What> <URL>" as the operation retried.
	What string
	// Server names the server in a *RetryAfterError: "the <Server> asks
	// ..."; empty means "server".
	Server string

	// TooLarge makes the error for a document over MaxBody, given its URL
	// as errors show it. Nil means a *TooLargeError.
	TooLarge func(url string, limit int64) error
	// StatusError makes the error for an answer other than 200 (or a 404
	// under NotFoundOK), given the URL as errors show it, the answer and
	// up to ErrorBody bytes of its body. Whether it is retried depends on
	// the status code alone. Nil means a *StatusError.
	StatusError func(url string, resp *http.Response, body []byte) error
}

// StatusError is an HTTP answer other than 200, as a Getter without a
// StatusError hook reports it.
type StatusError struct {
	URL    string
	Status string // e.g. "503 Service Unavailable"
	Code   int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: %s", e.URL, e.Status)
}

// TooLargeError is a document over the cap, as a Getter without a
// TooLarge hook reports it. Callers with messages of their own define
// their error types on its fields: type TooLargeError httpget.TooLargeError.
type TooLargeError struct {
	URL   string // where the document was read from
	Limit int64  // the cap, in bytes
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: body larger than the %d-byte limit", e.URL, e.Limit)
}

// TimeoutError is a try, or a whole Get, that ran out of time.
type TimeoutError struct {
	URL string
	// Bound is the bound that ran out.
	Bound time.Duration
	// Stalled: the body moved no byte for Bound; else the try (or, with
	// AllTries, the Get) did not complete within Bound.
	Stalled, AllTries bool
}

func (e *TimeoutError) Error() string {
	switch {
	case e.Stalled:
		return fmt.Sprintf("GET %s: no data for %s (stalled)", e.URL, e.Bound)
	case e.AllTries:
		return fmt.Sprintf("GET %s: no complete answer within %s, retries included (timed out)", e.URL, e.Bound)
	}
	return fmt.Sprintf("GET %s: no complete answer within %s (timed out)", e.URL, e.Bound)
}

// Timeout reports true: a TimeoutError is a timeout, as net.Error says.
func (e *TimeoutError) Timeout() bool { return true }

// RetryAfterError ends the retries when a server's Retry-After asks for a
// longer wait than Retry.Max allows.
type RetryAfterError struct {
	// Err is the failure of the answer that asked.
	Err error
	// After is the wait asked for; Limit is Retry.Max.
	After, Limit time.Duration

	server string
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v; the %s asks to retry after %s, more than the %s limit", e.Err, e.server, e.After, e.Limit)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// Get reads the document at u, an http, https or file:// URL, retrying
// transient failures over HTTP. It returns the document (empty but not nil
// for an empty one) and how many tries it made: 1 for a file.
//
// A failure is, as the Getter's fields say, the StatusError or TooLarge
// error, a *RetryAfterError, the client's or the file system's error with
// context, or context.Cause(ctx), with the last try's error, when ctx ends
// during a wait. An error that was retried unwraps to the last try's.
func (g *Getter) Get(ctx context.Context, u *url.URL) (body []byte, tries int, err error) {
	if u.Scheme == "file" {
		body, err := g.readFile(u)
		return body, 1, err
	}
	parent := ctx
	if total := g.maxTime(max(g.Retry.Attempts, 1)); total > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, total, &TimeoutError{URL: g.show(u), Bound: total, AllTries: true})
		defer cancel()
	}
	op := "fetch " + g.What + " " + g.show(u)
	err = retry.Do(ctx, g.Retry, op, func(ctx context.Context) error {
		tries++
		body, err = g.getOnce(ctx, u)
		return err
	}, retry.If(transient), retry.Wait(g.retryAfter))
	if err == nil {
		return body, tries, nil
	}
	if ctx.Err() != nil && parent.Err() == nil {
		return nil, tries, context.Cause(ctx) // the bound on the whole Get
	}
	if ex, ok := errors.AsType[*retry.ExhaustedError](err); ok {
		err = ex.Err
		if g.NoteTries {
			err = fmt.Errorf("%w (after %d tries)", err, ex.Attempts)
		}
	}
	return nil, tries, err
}

// maxTime is the bound on one Get of so many attempts, or 0 for none.
func (g *Getter) maxTime(attempts int) time.Duration {
	if g.Timeout <= 0 {
		return 0
	}
	return time.Duration(attempts)*g.Timeout + time.Duration(attempts-1)*max(g.Retry.Max, 0)
}

// getOnce makes one try within Timeout and StallTimeout. A failure worth
// retrying is a *transientError.
func (g *Getter) getOnce(ctx context.Context, u *url.URL) ([]byte, error) {
	shown := g.show(u)
	try, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if g.Timeout > 0 {
		timer := time.AfterFunc(g.Timeout, func() { cancel(&TimeoutError{URL: shown, Bound: g.Timeout}) })
		defer timer.Stop()
	}
	body, err := g.request(try, u, shown, cancel)
	if err != nil && try.Err() != nil && ctx.Err() == nil {
		// One of this try's bounds ran out: say which, and try again.
		return nil, &transientError{err: context.Cause(try)}
	}
	return body, err
}

// request sends the request and reads the answer; cancel ends the try
// when the body stalls.
func (g *Getter) request(ctx context.Context, u *url.URL, shown string, cancel context.CancelCauseFunc) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", shown, err)
	}
	for k, vs := range g.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := g.Client.Do(req)
	if err != nil {
		if transientNetError(err) {
			return nil, &transientError{err: err}
		}
		return nil, err
	}
	defer resp.Body.Close()
	body := io.Reader(resp.Body)
	if g.StallTimeout > 0 {
		stall := &stallReader{r: resp.Body, bound: g.StallTimeout}
		stall.timer = time.AfterFunc(g.StallTimeout, func() {
			cancel(&TimeoutError{URL: shown, Bound: g.StallTimeout, Stalled: true})
		})
		defer stall.timer.Stop()
		body = stall
	}

	if resp.StatusCode == http.StatusOK {
		if resp.ContentLength > g.MaxBody {
			return nil, g.tooLarge(shown)
		}
		data, err := io.ReadAll(io.LimitReader(body, g.MaxBody+1))
		if err != nil {
			// Cut off mid-body: the next try may get it whole.
			return nil, &transientError{err: fmt.Errorf("GET %s: reading body: %w", shown, err)}
		}
		if int64(len(data)) > g.MaxBody {
			return nil, g.tooLarge(shown)
		}
		return data, nil
	}

	errBody, _ := io.ReadAll(io.LimitReader(body, g.ErrorBody))
	if resp.StatusCode == http.StatusNotFound && g.NotFoundOK {
		return nil, nil
	}
	if g.StatusError != nil {
		err = g.StatusError(shown, resp, errBody)
	} else {
		err = &StatusError{URL: shown, Status: resp.Status, Code: resp.StatusCode}
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		after, ok := retry.ParseAfter(resp.Header.Get("Retry-After"), time.Now())
		return nil, &transientError{err: err, retryAfter: after, hasRetryAfter: ok}
	case resp.StatusCode == http.StatusNotImplemented || resp.StatusCode == http.StatusHTTPVersionNotSupported:
		return nil, err // server errors that will not go away
	case resp.StatusCode >= 500:
		return nil, &transientError{err: err}
	}
	return nil, err
}

// stallReader restarts its timer each time a byte arrives.
type stallReader struct {
	r     io.Reader
	bound time.Duration
	timer *time.Timer
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.bound)
	}
	return n, err
}

// readFile reads the document of a file:// URL.
func (g *Getter) readFile(u *url.URL) (data []byte, err error) {
	path := filepath.FromSlash(u.Path)
	f, err := os.Open(path)
	if g.NotFoundOK && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", g.What, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("read %s %s: close: %w", g.What, path, cerr)
		}
	}()
	data, err = io.ReadAll(io.LimitReader(f, g.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", g.What, path, err)
	}
	if int64(len(data)) > g.MaxBody {
		return nil, g.tooLarge(u.String())
	}
	if data == nil {
		data = []byte{} // an empty file is an empty document, not a not-found
	}
	return data, nil
}

func (g *Getter) show(u *url.URL) string {
	if g.Redact {
		return u.Redacted()
	}
	return u.String()
}

func (g *Getter) tooLarge(url string) error {
	if g.TooLarge != nil {
		return g.TooLarge(url, g.MaxBody)
	}
	return &TooLargeError{URL: url, Limit: g.MaxBody}
}

func (g *Getter) server() string {
	if g.Server == "" {
		return "server"
	}
	return g.Server
}
