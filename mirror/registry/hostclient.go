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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/pkg/tlsclientconfig"
	"go.podman.io/image/v5/types"
)

// Why ferry speaks to registries itself for blobs, tags and pushes:
// containers/image makes a new http.Transport for every ImageSource and
// ImageDestination, with Go's default of two idle connections per host,
// no HTTP/2, and a /v2/ ping whose unread answer costs a connection of its
// own. Ferry's workers then open a connection for nearly every blob (and
// three for every source, destination or tag it opens). A hostClient is
// one registry host for the whole life of a Client: one transport whose
// idle pool holds every worker's connection, HTTP/2 where TLS offers it,
// one ping, and bearer tokens kept by scope. It is built from the same
// public pieces of containers/image as the rest of this package:
// credentials from auth.json (pkg/docker/config), CA and client
// certificates (pkg/tlsclientconfig, Options.CertDir or certs.d), insecure
// and blocked registries from registries.conf (pkg/sysregistriesv2), and
// the distribution token protocol (a basic or bearer challenge from /v2/).

// idleHeadroom is how many connections per host are kept beyond two per
// worker: a plan's walk reads manifests with Parallel workers while as
// many look up signature tags beside it (mirror's probeSigstore), apply
// checks blobs (HEAD) with as many ahead of its uploads, and a few token
// and tag requests run beside them; none of them should cost a new
// connection.
const idleHeadroom = 2

// hostClient talks to one registry host. It is safe for concurrent use.
type hostClient struct {
	host      string // host[:port] connected to
	client    *http.Client
	insecure  bool // plain HTTP may be tried
	userAgent string
	// chunkedOnly is set once the registry refused a monolithic upload.
	chunkedOnly atomic.Bool

	pingMu sync.Mutex // one ping at a time
	mu     sync.Mutex
	scheme string // "" until /v2/ answered
	chal   challenge
	tokens map[string]bearerToken // by scope
}

// bearerToken is a token and the time it expires, as its issuer declared.
type bearerToken struct {
	value   string
	expires time.Time
}

// minTokenLifetime is the least lifetime a token is trusted for, whatever
// it declares: containers/image's (and the distribution spec's) 60 s.
const minTokenLifetime = 60 * time.Second

// hostFor returns the hostClient of named's registry, made on first use.
// A registry blocked in registries.conf is refused.
func (c *Client) hostFor(named reference.Named) (*hostClient, error) {
	reg, err := sysregistriesv2.FindRegistry(c.sys, named.Name())
	if err != nil {
		return nil, fmt.Errorf("loading registries.conf: %w", err)
	}
	if reg != nil && reg.Blocked {
		return nil, fmt.Errorf("registry %s is blocked in registries.conf", reg.Prefix)
	}
	host := reference.Domain(named)
	c.hostsMu.Lock()
	defer c.hostsMu.Unlock()
	if h, ok := c.hosts[host]; ok {
		return h, nil
	}
	insecure := !c.opts.TLSVerify || (reg != nil && reg.Insecure)
	tlsConfig := &tls.Config{InsecureSkipVerify: insecure}
	if dir := certDir(c.sys, host); dir != "" {
		if err := tlsclientconfig.SetupCertificates(dir, tlsConfig); err != nil {
			return nil, err
		}
	}
	tr := tlsclientconfig.NewTransport()
	tr.TLSClientConfig = tlsConfig
	// At most as many connections as are kept idle, counting those being
	// dialled: Go's transport dials for a request even as another
	// connection frees up to serve it, and a burst of such dials would
	// otherwise open connections no request needs.
	tr.MaxIdleConnsPerHost = 2*c.opts.parallel() + idleHeadroom
	tr.MaxConnsPerHost = tr.MaxIdleConnsPerHost
	tr.ForceAttemptHTTP2 = true
	dial := host
	if dial == "docker.io" {
		dial = "registry-1.docker.io"
	}
	ua := c.opts.UserAgent
	if ua == "" {
		ua = "ferry"
	}
	h := &hostClient{host: dial, client: &http.Client{Transport: tr}, insecure: insecure, userAgent: ua, tokens: map[string]bearerToken{}}
	c.hosts[host] = h
	return h, nil
}

// readsDirect reports whether named is read from its own registry: no
// registries.conf entry sends its pulls to a mirror or another location.
// Only then may its blobs and tags be read without containers/image,
// which alone follows such entries.
func (c *Client) readsDirect(named reference.Named) bool {
	reg, err := sysregistriesv2.FindRegistry(c.sys, named.Name())
	if err != nil || reg == nil {
		return err == nil
	}
	srcs, err := reg.PullSourcesFromReference(named)
	return err == nil && len(srcs) == 1 && srcs[0].Reference.Name() == named.Name()
}

// request is one request to a registry.
type request struct {
	method string
	// path is the path and query on the registry, or an absolute URL (an
	// upload's Location).
	path   string
	header http.Header
	// body is sent with length size (-1: unknown). A body that is not
	// replayable (bytes) is never sent twice: a stale token then fails
	// the request with a *staleTokenError for the caller's retry.
	body       io.Reader
	size       int64
	replayable bool
	// auth is the credentials for the repositories; scopes the token
	// scopes asked for ("repository:ns/name:pull,push").
	auth   types.DockerAuthConfig
	scopes []string
}

// do sends r, authenticated as the registry's challenge asks. A bearer
// token refused (401) is renewed once; the caller closes the answer.
func (h *hostClient) do(ctx context.Context, r request) (*http.Response, error) {
	if err := h.ping(ctx); err != nil {
		return nil, err
	}
	// A path ("/v2/...") is on this registry; anything else is an
	// absolute URL (an upload's Location), taken as the registry gave it.
	u := r.path
	if strings.HasPrefix(u, "/") {
		u = h.scheme + "://" + h.host + u
	}
	for renewed := false; ; renewed = true {
		req, err := http.NewRequestWithContext(ctx, r.method, u, r.body)
		if err != nil {
			return nil, err
		}
		if r.body != nil {
			req.ContentLength = r.size
			if r.size == 0 {
				req.Body = http.NoBody
			}
		}
		for k, v := range r.header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", h.userAgent)
		token, err := h.authorize(ctx, req, r, renewed)
		if err != nil {
			return nil, err
		}
		resp, err := h.client.Do(req)
		if err != nil || resp.StatusCode != http.StatusUnauthorized || token == "" || renewed {
			return resp, err
		}
		drainClose(resp)
		h.forget(r.scopes, token)
		if r.body != nil && !r.replayable {
			return nil, &staleTokenError{classify(&StatusError{Method: r.method, URL: u, StatusCode: resp.StatusCode, Status: resp.Status})}
		}
		if r.replayable && r.body != nil {
			if s, ok := r.body.(io.Seeker); ok {
				if _, err := s.Seek(0, io.SeekStart); err != nil {
					return nil, err
				}
			}
		}
	}
}

// ping reads the registry's challenge from /v2/, over HTTPS or, for an
// insecure registry that does not speak it, plain HTTP. The answer is read
// to its end so that its connection serves the next request.
func (h *hostClient) ping(ctx context.Context) error {
	h.pingMu.Lock()
	defer h.pingMu.Unlock()
	h.mu.Lock()
	done := h.scheme != ""
	h.mu.Unlock()
	if done {
		return nil
	}
	var err error
	for _, scheme := range []string{"https", "http"} {
		if scheme == "http" && !h.insecure {
			break
		}
		u := scheme + "://" + h.host + "/v2/"
		var req *http.Request
		if req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil); err != nil {
			return err
		}
		req.Header.Set("User-Agent", h.userAgent)
		var resp *http.Response
		if resp, err = h.client.Do(req); err != nil {
			continue
		}
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
			err = statusError(u, resp)
			resp.Body.Close()
			continue
		}
		drainClose(resp)
		h.mu.Lock()
		h.scheme, h.chal = scheme, parseChallenge(resp.Header.Get("WWW-Authenticate"))
		h.mu.Unlock()
		return nil
	}
	return fmt.Errorf("pinging registry %s: %w", h.host, err)
}

// authorize adds the credentials the challenge asks for, and returns the
// bearer token used, if any.
func (h *hostClient) authorize(ctx context.Context, req *http.Request, r request, renew bool) (string, error) {
	h.mu.Lock()
	chal := h.chal
	scope := strings.Join(r.scopes, " ")
	token := h.tokens[scope]
	h.mu.Unlock()
	switch chal.scheme {
	case "basic":
		if r.auth.Username != "" {
			req.SetBasicAuth(r.auth.Username, r.auth.Password)
		}
	case "bearer":
		if token.value == "" || renew || !time.Now().Before(token.expires) {
			var err error
			if token, err = fetchToken(ctx, h.client, h.userAgent, chal, r.auth, r.scopes); err != nil {
				return "", fmt.Errorf("getting a token from %s: %w", chal.params["realm"], classify(err))
			}
			h.mu.Lock()
			h.tokens[scope] = token
			h.mu.Unlock()
		}
		req.Header.Set("Authorization", "Bearer "+token.value)
	}
	return token.value, nil
}

// forget drops token, refused by the registry, unless another request
// replaced it already.
func (h *hostClient) forget(scopes []string, token string) {
	scope := strings.Join(scopes, " ")
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tokens[scope].value == token {
		delete(h.tokens, scope)
	}
}

// fetchToken asks the challenge's realm for a token of scopes: with the
// username and password (GET), or an identity token (OAuth2 POST).
func fetchToken(ctx context.Context, client *http.Client, userAgent string, chal challenge, auth types.DockerAuthConfig, scopes []string) (bearerToken, error) {
	realm := chal.params["realm"]
	if realm == "" {
		return bearerToken{}, errors.New("the registry's bearer challenge names no realm")
	}
	params := url.Values{}
	if s := chal.params["service"]; s != "" {
		params.Set("service", s)
	}
	params["scope"] = scopes
	var req *http.Request
	var err error
	if auth.IdentityToken != "" {
		params.Set("grant_type", "refresh_token")
		params.Set("refresh_token", auth.IdentityToken)
		params.Set("client_id", "containers/image")
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(params.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		if auth.Username != "" {
			params.Set("account", auth.Username)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, realm, nil)
		if err == nil {
			req.URL.RawQuery = params.Encode()
			if auth.Username != "" && auth.Password != "" {
				req.SetBasicAuth(auth.Username, auth.Password)
			}
		}
	}
	if err != nil {
		return bearerToken{}, err
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return bearerToken{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return bearerToken{}, statusError(realm, resp)
	}
	var tok struct {
		Token       string    `json:"token"`
		AccessToken string    `json:"access_token"`
		ExpiresIn   int       `json:"expires_in"`
		IssuedAt    time.Time `json:"issued_at"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBodySize+1))
	if err == nil && len(body) > maxTokenBodySize {
		err = fmt.Errorf("the answer is larger than %d bytes", maxTokenBodySize)
	}
	if err == nil {
		err = json.Unmarshal(body, &tok)
	}
	if err != nil {
		return bearerToken{}, fmt.Errorf("reading the token: %w", err)
	}
	value := tok.Token
	if value == "" {
		value = tok.AccessToken
	}
	if value == "" {
		return bearerToken{}, errors.New("the answer holds no token")
	}
	lifetime := max(time.Duration(tok.ExpiresIn)*time.Second, minTokenLifetime)
	issued := tok.IssuedAt
	if issued.IsZero() {
		issued = time.Now()
	}
	return bearerToken{value: value, expires: issued.Add(lifetime)}, nil
}

// credentials returns the auth.json credentials for named.
func (c *Client) credentials(named reference.Named) (types.DockerAuthConfig, error) {
	auth, err := config.GetCredentialsForRef(c.sys, named)
	if err != nil {
		return types.DockerAuthConfig{}, fmt.Errorf("reading credentials: %w", err)
	}
	return auth, nil
}

// access is what every request to repo needs: the pool of its registry
// host and the credentials for the repository. doing names the operation
// in errors ("pushing to").
func (c *Client) access(repo reference.Named, doing string) (*hostClient, types.DockerAuthConfig, error) {
	h, err := c.hostFor(repo)
	if err == nil {
		var auth types.DockerAuthConfig
		if auth, err = c.credentials(repo); err == nil {
			return h, auth, nil
		}
	}
	return nil, types.DockerAuthConfig{}, fmt.Errorf("%s %s: %w", doing, repo, err)
}

// apiPath is the path of rest ("manifests/<ref>", "blobs/<digest>",
// "blobs/uploads/", "tags/list") under repo in the distribution API.
func apiPath(repo reference.Named, rest string) string {
	return "/v2/" + reference.Path(repo) + "/" + rest
}

// pullScope and pushScope are the token scopes for reading and for
// writing the repository named.
func pullScope(named reference.Named) string {
	return "repository:" + reference.Path(named) + ":pull"
}

func pushScope(named reference.Named) string {
	return "repository:" + reference.Path(named) + ":pull,push"
}
