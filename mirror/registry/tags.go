package registry

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/pkg/tlsclientconfig"
	"go.podman.io/image/v5/types"
)

// Why ferry lists tags itself: containers/image's docker.GetRepositoryTags
// follows Link headers for as long as the registry sends them, decodes each
// page without a size limit and keeps every page's body open until it
// returns, so a registry that paginates forever (or sends one endless page)
// grows it without bound, and nothing outside it can stop it short of a
// timeout. Its client, with the auth and TLS handling, is unexported. So
// ListTags asks for pages of tagsPageSize itself, caps each page's body, the
// pages and the tags, and builds its client from the same public pieces of
// containers/image that the rest of this package is configured through:
// credentials from auth.json (pkg/docker/config), CA and client
// certificates (pkg/tlsclientconfig, Options.CertDir or certs.d), insecure
// registries from registries.conf (pkg/sysregistriesv2), and the
// distribution token protocol (a basic or bearer challenge from /v2/).

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

// StatusError is an answer other than 200 to a listing. StatusCode is
// what this package's error classes (ErrNotFound, ErrUnauthorized, ...)
// and IsTransient go by.
type StatusError struct {
	URL        string
	StatusCode int
	Status     string
	// Body is the start of the answer, for the message.
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: %s", e.URL, e.Status)
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
	l, err := c.newTagLister(named)
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", named, err)
	}
	defer l.client.CloseIdleConnections()
	next := "/v2/" + reference.Path(named) + "/tags/list?n=" + strconv.Itoa(tagsPageSize)
	var tags []string
	for pages := 0; next != ""; pages++ {
		if pages == maxTagPages {
			return nil, &TagListBoundError{Repository: named.String(), Bound: "maxTagPages", Limit: maxTagPages}
		}
		var page []string
		op := "listing tags of " + named.String()
		err := Do(ctx, c.opts.Retry, op, func(ctx context.Context) error {
			// Each page within the response timeout: a registry that goes
			// silent mid-listing fails like any other call.
			return c.opts.Bounded(ctx, op, func(ctx context.Context) error {
				var err error
				page, next, err = l.page(ctx, next)
				if err != nil {
					return fmt.Errorf("%s: %w", op, classify(err))
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
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

// tagLister reads tag pages from one registry.
type tagLister struct {
	client    *http.Client
	host      string // host[:port] to connect to
	scheme    string // "" until /v2/ answered
	insecure  bool   // plain HTTP may be tried
	userAgent string
	auth      types.DockerAuthConfig
	scope     string // repository:<path>:pull
	challenge challenge
	token     string
}

func (c *Client) newTagLister(named reference.Named) (*tagLister, error) {
	sys := c.sys
	host := reference.Domain(named)
	auth, err := config.GetCredentialsForRef(sys, named)
	if err != nil {
		return nil, fmt.Errorf("reading credentials: %w", err)
	}
	tlsConfig := &tls.Config{}
	if dir := certDir(sys, host); dir != "" {
		if err := tlsclientconfig.SetupCertificates(dir, tlsConfig); err != nil {
			return nil, err
		}
	}
	reg, err := sysregistriesv2.FindRegistry(sys, named.Name())
	if err != nil {
		return nil, fmt.Errorf("loading registries.conf: %w", err)
	}
	if reg != nil && reg.Blocked {
		return nil, fmt.Errorf("registry %s is blocked in registries.conf", reg.Prefix)
	}
	insecure := !c.opts.TLSVerify || (reg != nil && reg.Insecure)
	tlsConfig.InsecureSkipVerify = insecure
	tr := tlsclientconfig.NewTransport()
	tr.TLSClientConfig = tlsConfig
	if host == "docker.io" {
		host = "registry-1.docker.io"
	}
	ua := c.opts.UserAgent
	if ua == "" {
		ua = "ferry"
	}
	return &tagLister{
		client: &http.Client{Transport: tr}, host: host, insecure: insecure, userAgent: ua,
		auth: auth, scope: "repository:" + reference.Path(named) + ":pull",
	}, nil
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
	if err := l.ping(ctx); err != nil {
		return nil, "", err
	}
	u := l.scheme + "://" + l.host + pathQuery
	resp, err := l.get(ctx, u, true)
	if err != nil {
		return nil, "", err
	}
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
	if err != nil || u.Path == "" {
		return "", fmt.Errorf("invalid Link header %q", link)
	}
	if u.RawQuery != "" {
		return u.Path + "?" + u.RawQuery, nil
	}
	return u.Path, nil
}

// ping reads the registry's challenge from /v2/, over HTTPS or, for an
// insecure registry that does not speak it, plain HTTP.
func (l *tagLister) ping(ctx context.Context) error {
	if l.scheme != "" {
		return nil
	}
	var err error
	for _, scheme := range []string{"https", "http"} {
		if scheme == "http" && !l.insecure {
			break
		}
		var resp *http.Response
		u := scheme + "://" + l.host + "/v2/"
		if resp, err = l.get(ctx, u, false); err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
			err = statusError(u, resp)
			continue
		}
		l.scheme, l.challenge = scheme, parseChallenge(resp.Header.Get("WWW-Authenticate"))
		return nil
	}
	return fmt.Errorf("pinging registry %s: %w", l.host, err)
}

// get sends a GET, authenticated as the ping's challenge says when auth
// is set. A bearer token refused as expired is renewed once.
func (l *tagLister) get(ctx context.Context, u string, auth bool) (*http.Response, error) {
	return l.send(ctx, http.MethodGet, u, auth)
}

// send is get with another method (DELETE, for delete.go).
func (l *tagLister) send(ctx context.Context, method, u string, auth bool) (*http.Response, error) {
	for renewed := false; ; renewed = true {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", l.userAgent)
		if auth {
			if err := l.authorize(ctx, req, renewed); err != nil {
				return nil, err
			}
		}
		resp, err := l.client.Do(req)
		if err != nil || !auth || renewed || resp.StatusCode != http.StatusUnauthorized || l.challenge.scheme != "bearer" {
			return resp, err
		}
		drainClose(resp)
	}
}

// authorize adds the credentials the challenge asks for.
func (l *tagLister) authorize(ctx context.Context, req *http.Request, renew bool) error {
	switch l.challenge.scheme {
	case "basic":
		if l.auth.Username != "" {
			req.SetBasicAuth(l.auth.Username, l.auth.Password)
		}
	case "bearer":
		if l.token == "" || renew {
			token, err := l.fetchToken(ctx)
			if err != nil {
				return fmt.Errorf("getting a token from %s: %w", l.challenge.params["realm"], err)
			}
			l.token = token
		}
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	return nil
}

// fetchToken asks the challenge's realm for a pull token: with the
// username and password (GET), or an identity token (OAuth2 POST).
func (l *tagLister) fetchToken(ctx context.Context) (string, error) {
	realm := l.challenge.params["realm"]
	if realm == "" {
		return "", errors.New("the registry's bearer challenge names no realm")
	}
	params := url.Values{}
	if s := l.challenge.params["service"]; s != "" {
		params.Set("service", s)
	}
	params.Set("scope", l.scope)
	var req *http.Request
	var err error
	if l.auth.IdentityToken != "" {
		params.Set("grant_type", "refresh_token")
		params.Set("refresh_token", l.auth.IdentityToken)
		params.Set("client_id", "containers/image")
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(params.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		if l.auth.Username != "" {
			params.Set("account", l.auth.Username)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, realm, nil)
		if err == nil {
			req.URL.RawQuery = params.Encode()
			if l.auth.Username != "" && l.auth.Password != "" {
				req.SetBasicAuth(l.auth.Username, l.auth.Password)
			}
		}
	}
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", l.userAgent)
	resp, err := l.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", statusError(realm, resp)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBodySize+1))
	if err == nil && len(body) > maxTokenBodySize {
		err = fmt.Errorf("the answer is larger than %d bytes", maxTokenBodySize)
	}
	if err == nil {
		err = json.Unmarshal(body, &tok)
	}
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	if tok.Token != "" {
		return tok.Token, nil
	}
	if tok.AccessToken == "" {
		return "", errors.New("the answer holds no token")
	}
	return tok.AccessToken, nil
}

func statusError(u string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{URL: u, StatusCode: resp.StatusCode, Status: resp.Status, Body: string(body)}
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
