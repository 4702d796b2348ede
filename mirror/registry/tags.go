package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/mirror/retry"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/types"
)

// Why ferry lists tags itself: containers/image's docker.GetRepositoryTags
// follows Link headers for as long as the registry sends them, decodes each
// page without a size limit and keeps every page's body open until it
// returns, so a registry that paginates forever (or sends one endless page)
// grows it without bound, and nothing outside it can stop it short of a
// timeout. So ListTags asks for pages of tagsPageSize itself, through the
// Client's hostClient (see hostclient.go), and caps each page's body, the
// pages and the tags.

// Bounds of ListTags.
const (
	// MaxTags caps the tags of one repository: ferry tags about 300 per
	// release (components and signatures), so this holds over 600
	// releases in one mirror repository, in some 20 MB.
	MaxTags = 200_000
	// maxTagPages caps the pages of one listing: pages are tagsPageSize
	// tags unless the registry chooses fewer (Quay sends 50 at least), so
	// a registry reaching it is paginating forever, even with empty pages
	// that would never reach MaxTags.
	maxTagPages = 10_000
	// tagsPageSize is the n= asked for: few requests, small pages.
	tagsPageSize = 1000
	// maxTagsPageBytes caps one page's body: MaxTags tags of the longest
	// form (128 characters) fit, for a registry that ignores n= and sends
	// everything at once.
	maxTagsPageBytes = 32 << 20
	// maxTokenBodySize caps a token answer (containers/image's limit).
	maxTokenBodySize = 1 << 20
	// maxErrorBody is how much of an error answer is read, to quote.
	maxErrorBody = 4 << 10
)

// TagListBoundError reports a listing stopped at one of its bounds.
type TagListBoundError struct {
	// Repository is host/path.
	Repository string
	// Bound names the constant (MaxTags, maxTagPages), Limit its value.
	Bound string
	Limit int
}

func (e *TagListBoundError) Error() string {
	what := "tags"
	if e.Bound == "maxTagPages" {
		what = "pages of tags"
	}
	return fmt.Sprintf("listing tags of %s: the registry lists more than %d %s (the bound registry.%s): it paginates without end, or the repository is far larger than any mirror of releases",
		e.Repository, e.Limit, what, e.Bound)
}

// StatusError is an unexpected answer of a registry (to a listing, a
// read or a push) or of its token server. StatusCode is
// what this package's error classes (ErrNotFound, ErrUnauthorized, ...)
// and IsTransient go by.
type StatusError struct {
	// Method is the request's method; empty means GET.
	Method     string
	URL        string
	StatusCode int
	Status     string
	// Body is the start of the answer, for the message.
	Body string
	// RetryAfter is the wait the answer's Retry-After asks for, or 0.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	method := e.Method
	if method == "" {
		method = http.MethodGet
	}
	msg := fmt.Sprintf("%s %s: %s", method, e.URL, e.Status)
	if b := strings.TrimSpace(e.Body); b != "" {
		msg += ": " + b
	}
	return msg
}

// ListTags lists the tags of repo (host/path, without tag or digest), page
// by page, at most MaxTags of them; a registry that lists more, or more
// than maxTagPages pages, gives a *TagListBoundError. Each page is tried
// with the Client's retry policy. A repository the registry does not know
// gives an error satisfying errors.Is(err, ErrNotFound).
func (c *Client) ListTags(ctx context.Context, repo string) ([]string, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, fmt.Errorf("invalid repository %q: %w", repo, err)
	}
	named = reference.TrimNamed(named)
	h, auth, err := c.access(named, "listing tags of")
	if err != nil {
		return nil, err
	}
	l := &tagLister{h: h, auth: auth, scopes: []string{pullScope(named)}}
	next := apiPath(named, "tags/list?n="+strconv.Itoa(tagsPageSize))
	var tags []string
	for pages := 0; next != ""; pages++ {
		if pages == maxTagPages {
			return nil, &TagListBoundError{Repository: named.String(), Bound: "maxTagPages", Limit: maxTagPages}
		}
		var page []string
		var after string
		op := "listing tags of " + named.String()
		err := Do(ctx, c.opts.Retry, op, func(ctx context.Context) error {
			// Each page within the response timeout: a registry that goes
			// silent mid-listing fails like any other call. A failed try
			// leaves next as it was, so the retry asks for the same page.
			return c.opts.Bounded(ctx, op, func(ctx context.Context) error {
				var err error
				page, after, err = l.page(ctx, next)
				if err != nil {
					return fmt.Errorf("%s: %w", op, classify(err))
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		next = after
		for _, tag := range page {
			if _, err := reference.WithTag(named, tag); err != nil {
				// Nexus sends nulls and Artifactory digests among the
				// tags; neither names anything to scan.
				if _, derr := digest.Parse(tag); tag == "" || derr == nil {
					continue
				}
				return nil, fmt.Errorf("listing tags of %s: the registry lists an invalid tag %q: %w", named, tag, err)
			}
			if len(tags) == MaxTags {
				return nil, &TagListBoundError{Repository: named.String(), Bound: "MaxTags", Limit: MaxTags}
			}
			tags = append(tags, tag)
		}
	}
	return tags, nil
}

// tagLister reads tag pages from one repository.
type tagLister struct {
	h      *hostClient
	auth   types.DockerAuthConfig
	scopes []string
}

// certDir is where containers/image would look for host's certificates.
func certDir(sys *types.SystemContext, host string) string {
	if sys.DockerCertPath != "" {
		return sys.DockerCertPath
	}
	dirs := []string{"/etc/containers/certs.d", "/etc/docker/certs.d"}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append([]string{filepath.Join(home, ".config/containers/certs.d")}, dirs...)
	}
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(d, host)); err == nil && st.IsDir() {
			return filepath.Join(d, host)
		}
	}
	return ""
}

// page reads the page at pathQuery and returns its tags and the path and
// query of the next page, "" at the end.
func (l *tagLister) page(ctx context.Context, pathQuery string) ([]string, string, error) {
	resp, err := l.h.do(ctx, request{method: http.MethodGet, path: pathQuery, auth: l.auth, scopes: l.scopes})
	if err != nil {
		return nil, "", err
	}
	u := resp.Request.URL.String()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", statusError(u, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTagsPageBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxTagsPageBytes {
		return nil, "", fmt.Errorf("GET %s: the page is larger than %d bytes", u, maxTagsPageBytes)
	}
	var page struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, "", fmt.Errorf("GET %s: decoding the tag list: %w", u, err)
	}
	next, err := nextPage(resp.Header.Get("Link"))
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	return page.Tags, next, nil
}

// nextPage is the path and query of the Link header's target. Like
// containers/image, only those are taken: the next page is on this
// registry, whatever host the header names.
func nextPage(link string) (string, error) {
	if link == "" {
		return "", nil
	}
	target, _, _ := strings.Cut(link, ";")
	u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
	if err != nil || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("invalid Link header %q", link)
	}
	if u.RawQuery != "" {
		return u.Path + "?" + u.RawQuery, nil
	}
	return u.Path, nil
}

func statusError(u string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{URL: u, StatusCode: resp.StatusCode, Status: resp.Status, Body: string(body),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// retryAfter is the wait a Retry-After header asks for, 0 when there is
// none or it does not parse.
func retryAfter(v string, now time.Time) time.Duration {
	d, _ := retry.ParseAfter(v, now)
	return d
}

func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}

// challenge is the first WWW-Authenticate challenge of a /v2/ answer.
type challenge struct {
	scheme string // "basic", "bearer", or "" for none
	params map[string]string
}

// parseChallenge parses `Bearer realm="...",service="...",scope="..."`.
func parseChallenge(h string) challenge {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	c := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var value string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			value, rest = b.String(), after[min(i+1, len(after)):]
		} else {
			value, rest, _ = strings.Cut(after, ",")
			rest = "," + rest
		}
		c.params[key] = strings.TrimSpace(value)
		rest = strings.TrimLeft(rest, ", ")
	}
	return c
}
