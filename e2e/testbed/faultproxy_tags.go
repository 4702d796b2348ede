package testbed

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// EndlessTagsProxy is an HTTP proxy in front of a registry whose tag lists
// never end: every answer to GET /v2/<repo>/tags/list carries a Link to a
// next page. The first page is the registry's own answer (its real tags);
// the pages after it are made up: n tags each ("endless-<page>-<i>", n as
// the client asks, 100 if it does not, at most 1000), or none with Empty.
// Everything else passes through unchanged. It is stopped when the test
// ends.
type EndlessTagsProxy struct {
	// URL is "http://127.0.0.1:<port>"; Host is "127.0.0.1:<port>".
	URL, Host string
	// Empty makes the made-up pages hold no tags: a listing that never
	// grows and never ends. Set it before clients start.
	Empty bool

	pages atomic.Int64
}

// Bounds of EndlessTagsProxy's pages.
const (
	endlessDefaultPage = 100
	endlessMaxPage     = 1000
	// endlessMaxFirstPage caps the registry's own answer read to rewrite.
	endlessMaxFirstPage = 16 << 20
)

// NewEndlessTagsProxy starts an EndlessTagsProxy in front of target, a base
// URL such as Registry.URL or FaultProxy.URL.
func NewEndlessTagsProxy(t testing.TB, target string) *EndlessTagsProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		t.Fatalf("endless tags proxy: target %q is not a base URL", target)
	}
	p := &EndlessTagsProxy{}
	forward := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo, ok := tagsListRepo(r)
		if !ok {
			forward.ServeHTTP(w, r)
			return
		}
		p.serveTags(w, r, u, repo)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// Pages is how many tag-list pages were served, the first ones included.
func (p *EndlessTagsProxy) Pages() int64 { return p.pages.Load() }

// tagsListRepo returns the repository of a GET /v2/<repo>/tags/list.
func tagsListRepo(r *http.Request) (string, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok || r.Method != http.MethodGet {
		return "", false
	}
	return strings.CutSuffix(rest, "/tags/list")
}

func (p *EndlessTagsProxy) serveTags(w http.ResponseWriter, r *http.Request, target *url.URL, repo string) {
	n := endlessDefaultPage
	if v, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && v > 0 {
		n = min(v, endlessMaxPage)
	}
	page := 0
	if last, ok := strings.CutPrefix(r.URL.Query().Get("last"), "endless-"); ok {
		num, _, _ := strings.Cut(last, "-")
		page, _ = strconv.Atoi(num)
	}
	body := map[string]any{"name": repo}
	if page == 0 {
		real, status, err := p.firstPage(r, target)
		if err != nil || status != http.StatusOK {
			http.Error(w, fmt.Sprintf("endless tags proxy: the registry answered %d: %v", status, err), http.StatusBadGateway)
			return
		}
		body["tags"] = real
	} else {
		tags := []string{}
		for i := 0; i < n && !p.Empty; i++ {
			tags = append(tags, fmt.Sprintf("endless-%d-%d", page, i))
		}
		body["tags"] = tags
	}
	p.pages.Add(1)
	next := url.Values{"n": {strconv.Itoa(n)}, "last": {fmt.Sprintf("endless-%d-x", page+1)}}
	w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?%s>; rel="next"`, repo, next.Encode()))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// firstPage asks the registry for the tags, with the client's
// credentials.
func (p *EndlessTagsProxy) firstPage(r *http.Request, target *url.URL) ([]string, int, error) {
	u := *target
	u.Path, u.RawQuery = r.URL.Path, ""
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var list struct {
		Tags []string `json:"tags"`
	}
	if resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(io.LimitReader(resp.Body, endlessMaxFirstPage)).Decode(&list)
	}
	return list.Tags, resp.StatusCode, err
}
