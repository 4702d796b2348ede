package graphdata

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/mirror/internal/httpget"
	"github.com/ferryhq/ferry/mirror/retry"
)

// DefaultURL is where Red Hat serves the update service's graph data, a
// gzip tarball of openshift/cincinnati-graph-data (SPEC §11).
const DefaultURL = "https://api.openshift.com/api/upgrades_info/graph-data"

// Fetch defaults.
const (
	// DefaultRequestTimeout bounds one try, answer and body, when
	// FetchOptions.Timeout is not set: the tarball is a few MB, which a
	// 1 Mbit/s link carries in well under this.
	DefaultRequestTimeout = 5 * time.Minute
	// DefaultStallTimeout ends a try whose body moves no byte for this
	// long when FetchOptions.StallTimeout is not set: a lossy link can
	// pause TCP for ~30 s, a minute of silence is a dead stream.
	DefaultStallTimeout = time.Minute
	// maxErrorBody caps what is read of an error answer's body.
	maxErrorBody = 64 << 10
)

// FetchOptions say how to fetch the graph data over HTTP. Their zero
// value tries once with the package's timeouts.
type FetchOptions struct {
	// Client makes the HTTP requests. Nil means a client that honours the
	// proxy environment (HTTPS_PROXY, NO_PROXY, ...).
	Client *http.Client
	// Timeout bounds one try, answer and body; 0 means
	// DefaultRequestTimeout.
	Timeout time.Duration
	// StallTimeout ends a try whose body moves no byte for that long; 0
	// means DefaultStallTimeout.
	StallTimeout time.Duration
	// Retry is the retry policy for transient failures (a connection
	// refused, reset or timed out, a body cut short, a 5xx answer but 501
	// and 505, a 429); its zero value tries once. The graph data comes
	// from the same service as the update graph: give it the same policy,
	// graph.DefaultRetry(). OnRetry is given "fetch graph data <URL>" as
	// the operation.
	Retry retry.Policy
	// UserAgent is sent with each request; empty means "ferry".
	UserAgent string
}

// Fetch reads the update service's graph data from src and keeps what the
// service reads (see [Data]). src is an http or https URL of a gzip
// tarball (empty means [DefaultURL]), or a file:// URL of a tarball saved
// earlier or of a directory holding the data (a checkout of
// openshift/cincinnati-graph-data, or the tarball unpacked).
//
// A tarball over [MaxCompressedSize] is a *TooLargeError; one that
// unpacks past [MaxUncompressedSize] or [MaxEntries] a *BoundError; a
// link, device, absolute path or ".." in it an *UnsafeEntryError; data
// the service could not read (no version, a channel that does not parse)
// a *MalformedError naming the file. An HTTP answer other than 200 is a
// *StatusError.
func Fetch(ctx context.Context, src string, opts FetchOptions) (*Data, error) {
	if src == "" {
		src = DefaultURL
	}
	u, err := parseSource(src)
	if err != nil {
		return nil, err
	}
	source := u.Redacted()
	var files map[string][]byte
	if u.Scheme == "file" {
		files, err = readFileSource(ctx, u, &opts)
	} else {
		files, err = readURL(ctx, u, &opts)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch graph data: %w", err)
	}
	d, err := newData(source, files)
	if err != nil {
		return nil, fmt.Errorf("graph data from %s: %w", source, err)
	}
	return d, nil
}

// parseSource checks a graph-data URL.
func parseSource(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("graph-data URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("graph-data URL %q: no host", s)
		}
	case "file":
		// file:///abs/graph-data.tar.gz; "file://graph-data.tar.gz" would make a host.
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("graph-data URL %q: a file:// URL needs an absolute path (file:///dir/graph-data.tar.gz), not host %q", s, u.Host)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("graph-data URL %q: no file", s)
		}
	default:
		return nil, fmt.Errorf("graph-data URL %q: scheme %q unsupported; use https, http or file", s, u.Scheme)
	}
	return u, nil
}

// readFileSource reads a file:// URL: a directory, or a tarball.
func readFileSource(ctx context.Context, u *url.URL, opts *FetchOptions) (map[string][]byte, error) {
	dir := filepath.FromSlash(u.Path)
	info, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return readURL(ctx, u, opts)
	}
	files, err := readDir(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", dir, err)
	}
	return files, nil
}

// readURL reads the tarball at u (http, https or file) and unpacks it.
func readURL(ctx context.Context, u *url.URL, opts *FetchOptions) (map[string][]byte, error) {
	timeout := orDefault(opts.Timeout, DefaultRequestTimeout)
	client := opts.Client
	if client == nil && u.Scheme != "file" {
		client = httpget.NewClient(timeout)
		defer client.CloseIdleConnections()
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = "ferry"
	}
	g := &httpget.Getter{
		Client:       client,
		Header:       http.Header{"Accept": {"application/gzip, */*;q=0.8"}, "User-Agent": {ua}},
		MaxBody:      MaxCompressedSize,
		ErrorBody:    maxErrorBody,
		Retry:        opts.Retry,
		Timeout:      timeout,
		StallTimeout: orDefault(opts.StallTimeout, DefaultStallTimeout),
		Redact:       true,
		NoteTries:    true,
		What:         "graph data",
		Server:       "graph-data server",
		TooLarge:     func(u string, limit int64) error { return &TooLargeError{URL: u, Limit: limit} },
	}
	compressed, _, err := g.Get(ctx, u)
	if err != nil {
		return nil, err
	}
	files, err := readArchive(ctx, compressed)
	if err != nil {
		return nil, fmt.Errorf("tarball %s: %w", u.Redacted(), err)
	}
	return files, nil
}

// orDefault is d, or def when d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
