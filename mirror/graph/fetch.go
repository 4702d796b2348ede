package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ferryhq/ferry/mirror/internal/httpget"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/retry"
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
	// DefaultRequestTimeout bounds one try, answer and body, when Timeout
	// is not set: a channel's graph is well under 1 MiB, which even a
	// slow satellite link carries in this time.
	DefaultRequestTimeout = 2 * time.Minute
	// DefaultStallTimeout ends a try whose body moves no byte for this
	// long when StallTimeout is not set: a lossy link can pause TCP for
	// ~30 s, a minute of silence is a dead stream.
	DefaultStallTimeout = time.Minute
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
	// out after Timeout.
	Client *http.Client
	// Timeout bounds one try, answer and body; all the tries then take at
	// most Attempts × Timeout plus the waits. 0 means
	// DefaultRequestTimeout.
	Timeout time.Duration
	// StallTimeout ends a try whose body moves no byte for that long.
	// 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// MaxBody caps the graph document; a larger one is a *TooLargeError.
	// 0 means MaxGraphSize.
	MaxBody int64
	// Retry is the retry policy for transient failures: a connection
	// refused, reset or timed out, a body cut short, a 5xx answer (but 501
	// and 505) or a 429. Other answers, an oversized body and TLS or DNS
	// failures are not retried. Its zero value tries once; a Retry-After
	// longer than its Max ends the retries. OnRetry is given
	// "fetch graph <URL>" as the operation.
	Retry retry.Policy
	// UserAgent is sent with each request; empty means "ferry".
	UserAgent string
}

// DefaultRetry is the retry policy of the package defaults:
// DefaultAttempts, DefaultBaseDelay, DefaultMaxDelay.
func DefaultRetry() retry.Policy {
	return retry.Policy{Attempts: DefaultAttempts, Base: DefaultBaseDelay, Max: DefaultMaxDelay}
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
	if u.Scheme != "file" {
		q := u.Query()
		q.Set("channel", opts.Channel)
		q.Set("arch", arch)
		u.RawQuery = q.Encode()
	}
	data, err := opts.get(ctx, u)
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

// get reads u, an http(s) URL with its query or a file:// URL, retrying
// transient failures.
func (o *FetchOptions) get(ctx context.Context, u *url.URL) ([]byte, error) {
	client := o.Client
	if client == nil {
		client = httpget.NewClient(orDefault(o.Timeout, DefaultRequestTimeout))
		defer client.CloseIdleConnections()
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "ferry"
	}
	maxBody := o.MaxBody
	if maxBody <= 0 {
		maxBody = MaxGraphSize
	}
	g := &httpget.Getter{
		Client:       client,
		Header:       http.Header{"Accept": {"application/json"}, "User-Agent": {ua}},
		MaxBody:      maxBody,
		ErrorBody:    maxErrorBody,
		Retry:        o.Retry,
		Timeout:      orDefault(o.Timeout, DefaultRequestTimeout),
		StallTimeout: orDefault(o.StallTimeout, DefaultStallTimeout),
		Redact:       true,
		NoteTries:    true,
		What:         "graph",
		Server:       "service",
		TooLarge:     func(u string, limit int64) error { return &TooLargeError{URL: u, Limit: limit} },
		StatusError:  statusError,
	}
	data, _, err := g.Get(ctx, u)
	return data, err
}

// orDefault is d, or def when d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// statusError makes the error of an answer other than 200 from up to
// maxErrorBody bytes of its body: an *APIError when the body is the
// service's {"kind", "value"}, else a *StatusError.
func statusError(u string, resp *http.Response, body []byte) error {
	var e struct {
		Kind  string `json:"kind"`
		Value string `json:"value"`
	}
	if json.Unmarshal(body, &e) == nil && e.Kind != "" {
		return &APIError{URL: u, StatusCode: resp.StatusCode, Kind: e.Kind, Value: e.Value}
	}
	return &StatusError{URL: u, Status: resp.Status, Code: resp.StatusCode}
}
