package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// proxyGet sends one request through a fresh connection (a reset must not
// spoil the next) and returns the status, headers and as much body as came.
func proxyGet(t *testing.T, method, u string, header http.Header) (int, http.Header, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

func TestFaultProxyPassesThrough(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	p := NewFaultProxy(t, reg.URL)
	ctx := context.Background()
	data := bytes.Repeat([]byte("ferry"), 1000)
	d, err := p.Client().PushBlob(ctx, "test/repo", data)
	if err != nil {
		t.Fatalf("push through the proxy: %v", err)
	}
	got, err := reg.GetBlob(ctx, "test/repo", d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the registry does not hold the blob pushed through the proxy: %v", err)
	}
	got, err = p.Client().GetBlob(ctx, "test/repo", d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob read through the proxy: %v", err)
	}
	s := p.Stats()
	if s.Requests < 4 || s.BlobBytes != int64(len(data)) || s.Errors+s.Resets+s.TooMany != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestFaultProxyStatusFaults(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	p := NewFaultProxy(t, reg.URL)
	p.SetFaults(Faults{Errors: 1, ErrorStatus: http.StatusBadGateway, Times: 2})
	for i, want := range []int{http.StatusBadGateway, http.StatusBadGateway, http.StatusOK, http.StatusOK} {
		code, _, _, err := proxyGet(t, http.MethodGet, p.URL+"/v2/", nil)
		if err != nil || code != want {
			t.Errorf("request %d: %d %v, want %d", i+1, code, err, want)
		}
	}
	p.SetFaults(Faults{TooMany: 1, RetryAfter: "3", Times: 1})
	code, h, _, err := proxyGet(t, http.MethodGet, p.URL+"/v2/", nil)
	if err != nil || code != http.StatusTooManyRequests || h.Get("Retry-After") != "3" {
		t.Errorf("429 fault: %d %v, Retry-After %q", code, err, h.Get("Retry-After"))
	}
	p.SetFaults(Faults{Errors: 1}) // Times 0: for ever
	for range 5 {
		if code, _, _, _ := proxyGet(t, http.MethodGet, p.URL+"/v2/", nil); code != http.StatusServiceUnavailable {
			t.Fatalf("a fault that never stops let a request through: %d", code)
		}
	}
	p.SetFaults(Faults{Errors: 1, Match: func(r *http.Request) bool { return r.Method == http.MethodHead }})
	if code, _, _, _ := proxyGet(t, http.MethodGet, p.URL+"/v2/", nil); code != http.StatusOK {
		t.Errorf("a request Match refuses was faulted: %d", code)
	}
	if s := p.Stats(); s.Errors != 2+5 || s.TooMany != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestFaultProxyResets(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	p := NewFaultProxy(t, reg.URL)
	data := bytes.Repeat([]byte("0123456789"), 10000)
	d, err := reg.PushBlob(context.Background(), "test/repo", data)
	if err != nil {
		t.Fatal(err)
	}
	p.SetFaults(Faults{Resets: 1, Times: 1})
	blobURL := p.URL + "/v2/test/repo/blobs/" + d.String()
	code, h, body, err := proxyGet(t, http.MethodGet, blobURL, nil)
	if err == nil || code != http.StatusOK || h.Get("Content-Length") != fmt.Sprint(len(data)) || len(body) >= len(data) {
		t.Errorf("cut blob: status %d, Content-Length %s, %d of %d bytes, error %v", code, h.Get("Content-Length"), len(body), len(data), err)
	}
	if _, _, body, err := proxyGet(t, http.MethodGet, blobURL, nil); err != nil || !bytes.Equal(body, data) {
		t.Errorf("second read: %d bytes, %v", len(body), err)
	}
	// A ranged read is another key: it is cut too, once.
	hdr := http.Header{"Range": {"bytes=100-"}}
	if _, _, body, err := proxyGet(t, http.MethodGet, blobURL, hdr); err == nil || len(body) >= len(data)-100 {
		t.Errorf("ranged read not cut: %d bytes, %v", len(body), err)
	}
	if code, _, body, err := proxyGet(t, http.MethodGet, blobURL, hdr); err != nil || code != http.StatusPartialContent || !bytes.Equal(body, data[100:]) {
		t.Errorf("ranged read: %d, %d bytes, %v", code, len(body), err)
	}
	if _, _, _, err := proxyGet(t, http.MethodGet, p.URL+"/v2/", nil); err == nil {
		t.Error("a reset request got an answer")
	}
	if s := p.Stats(); s.Resets != 3 {
		t.Errorf("stats %+v", s)
	}
}

// TestFaultProxyDeterministic: the same seed faults the same keys whatever
// the order of the requests; another seed faults others.
func TestFaultProxyDeterministic(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	p := NewFaultProxy(t, reg.URL)
	var paths []string
	for i := range 40 {
		paths = append(paths, fmt.Sprintf("/v2/test/repo/manifests/tag%d", i))
	}
	faulted := func(seed int64, order []string) []string {
		p.SetFaults(Faults{Seed: seed, Errors: 0.5, Times: 1})
		var out []string
		for _, path := range order {
			if code, _, _, _ := proxyGet(t, http.MethodHead, p.URL+path, nil); code == http.StatusServiceUnavailable {
				out = append(out, path)
			}
		}
		slices.Sort(out)
		return out
	}
	a := faulted(1, paths)
	reversed := slices.Clone(paths)
	slices.Reverse(reversed)
	b := faulted(1, reversed)
	c := faulted(2, paths)
	if !slices.Equal(a, b) {
		t.Errorf("seed 1 faults differ with the order:\n%v\n%v", a, b)
	}
	if len(a) < 10 || len(a) > 30 || slices.Equal(a, c) {
		t.Errorf("%d of 40 keys faulted at share 0.5; seed 2 the same: %v", len(a), slices.Equal(a, c))
	}
}

func TestFaultProxyTokenAuth(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	p := NewFaultProxy(t, reg.URL)
	p.SetAuth(&TokenAuth{Username: "user", Password: "secret", Uses: 2})
	code, h, _, err := proxyGet(t, http.MethodHead, p.URL+"/v2/test/repo/manifests/latest", nil)
	challenge := h.Get("WWW-Authenticate")
	if err != nil || code != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer realm=\""+p.URL+TokenPath+"\"") ||
		!strings.Contains(challenge, `scope="repository:test/repo:pull"`) {
		t.Fatalf("no token: %d %v, challenge %q", code, err, challenge)
	}
	token := func(user, pass string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, p.URL+TokenPath+"?service=x&scope=repository:test/repo:pull", nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct {
			Token     string `json:"token"`
			ExpiresIn int    `json:"expires_in"`
		}
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.ExpiresIn != defaultTokenLifetime {
				t.Fatalf("token answer: %v %+v", err, tok)
			}
		}
		return resp.StatusCode, tok.Token
	}
	if code, _ := token("user", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}
	code, tok := token("user", "secret")
	if code != http.StatusOK || tok == "" {
		t.Fatalf("token: %d %q", code, tok)
	}
	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	for i := range 2 {
		if code, _, _, err := proxyGet(t, http.MethodGet, p.URL+"/v2/", bearer); err != nil || code != http.StatusOK {
			t.Errorf("use %d of the token: %d %v", i+1, code, err)
		}
	}
	code, h, _, _ = proxyGet(t, http.MethodGet, p.URL+"/v2/", bearer)
	if code != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("spent token: %d, challenge %q", code, h.Get("WWW-Authenticate"))
	}
	if got := p.IssuedTokens(); !slices.Equal(got, []string{tok}) {
		t.Errorf("issued %v", got)
	}
	if s := p.Stats(); s.TokenRequests != 2 || s.TokensIssued != 1 || s.Unauthorized != 2 || s.Expired != 1 {
		t.Errorf("stats %+v", s)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(AuthFile(p.Host, "user", "secret"), &cfg); err != nil || cfg.Auths[p.Host].Auth != "dXNlcjpzZWNyZXQ=" {
		t.Errorf("auth file: %v %+v", err, cfg)
	}
}

func TestFaultProxyOnRequest(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	p := NewFaultProxy(t, reg.URL)
	var seen []int64
	p.OnRequest(func(n int64, r *http.Request) bool {
		seen = append(seen, n)
		return n != 2
	})
	for i := range 3 {
		_, _, _, err := proxyGet(t, http.MethodGet, p.URL+"/v2/", nil)
		if (err != nil) != (i == 1) {
			t.Errorf("request %d: %v (only the second is dropped)", i+1, err)
		}
	}
	if !slices.Equal(seen, []int64{1, 2, 3}) {
		t.Errorf("ordinals %v", seen)
	}
	p.ResetStats()
	if _, _, _, err := proxyGet(t, http.MethodGet, p.URL+"/v2/", nil); err != nil || seen[len(seen)-1] != 1 {
		t.Errorf("after ResetStats: %v %v", seen, err)
	}
	p.WaitIdle() // nothing in flight: returns at once
}

func TestFaultProxyTLS(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	p := NewTLSFaultProxy(t, reg.URL)
	if !strings.HasPrefix(p.URL, "https://") || len(p.CertPEM) == 0 {
		t.Fatalf("URL %s, %d bytes of certificate", p.URL, len(p.CertPEM))
	}
	_, err := http.Get(p.URL + "/v2/")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an untrusted certificate was accepted: %v", err)
	}
}

// heldGet sends a GET through the proxy on a fresh connection, reads want
// bytes of the body, waits until the proxy holds the request, cancels it
// and returns what came and the error the client saw.
func heldGet(t *testing.T, p *FaultProxy, u string, want int) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	type result struct {
		body []byte
		err  error
	}
	done := make(chan result, 1)
	gotWant := make(chan struct{})
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer resp.Body.Close()
		body := make([]byte, want)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			done <- result{nil, fmt.Errorf("reading the first %d bytes: %w", want, err)}
			return
		}
		close(gotWant)
		rest, err := io.ReadAll(resp.Body)
		done <- result{append(body, rest...), err}
	}()
	if want > 0 { // else the client is still waiting for the headers
		select {
		case <-gotWant:
		case r := <-done:
			return r.body, r.err
		}
	}
	p.WaitHeld(1)
	cancel()
	r := <-done
	return r.body, r.err
}

// TestFaultProxyFaultsThatDoNotEnd: a hang never answers, a stall stops in
// the middle of the body, a trickle sends a byte at a time; each is held
// until its client goes away, and then nothing of it is left running.
func TestFaultProxyFaultsThatDoNotEnd(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	p := NewFaultProxy(t, reg.URL)
	data := bytes.Repeat([]byte("0123456789"), 10000)
	d, err := reg.PushBlob(context.Background(), "test/repo", data)
	if err != nil {
		t.Fatal(err)
	}
	blobURL := p.URL + "/v2/test/repo/blobs/" + d.String()

	p.SetFaults(Faults{Hangs: 1, Times: 1})
	if body, err := heldGet(t, p, blobURL, 0); !errors.Is(err, context.Canceled) || len(body) != 0 {
		t.Errorf("hang: %d bytes, error %v; want no answer until the client gave up", len(body), err)
	}
	p.WaitIdle() // the held request ended with its client
	if _, _, body, err := proxyGet(t, http.MethodGet, blobURL, nil); err != nil || !bytes.Equal(body, data) {
		t.Errorf("after one hang (Times 1): %d bytes, %v", len(body), err)
	}

	p.SetFaults(Faults{Stalls: 1})
	if body, err := heldGet(t, p, blobURL, len(data)/2); !errors.Is(err, context.Canceled) || !bytes.Equal(body, data[:len(data)/2]) {
		t.Errorf("stall: %d bytes, error %v; want the first half, then nothing", len(body), err)
	}
	p.WaitIdle()

	p.SetFaults(Faults{Trickles: 1, TrickleInterval: time.Nanosecond})
	if body, err := heldGet(t, p, blobURL, 3); !errors.Is(err, context.Canceled) || !bytes.Equal(body, data[:len(body)]) {
		t.Errorf("trickle: %d bytes, error %v; want a prefix of the blob", len(body), err)
	}
	p.WaitIdle()

	small, err := reg.PushBlob(context.Background(), "test/repo", []byte("ferry"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, body, err := proxyGet(t, http.MethodGet, p.URL+"/v2/test/repo/blobs/"+small.String(), nil); err != nil || string(body) != "ferry" {
		t.Errorf("a trickle that ends: %q, %v", body, err)
	}
	p.WaitIdle()
	if s := p.Stats(); s.Hangs != 1 || s.Stalls != 1 || s.Trickles != 2 || s.Held != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestFaultProxyHeldUntilTestEnds: a request held when the test ends is let
// go by the proxy's cleanup: its client gets an error, not a hang.
func TestFaultProxyHeldUntilTestEnds(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	errs := make(chan error, 1)
	t.Run("held", func(t *testing.T) {
		p := NewFaultProxy(t, reg.URL)
		p.SetFaults(Faults{Hangs: 1})
		go func() {
			resp, err := http.Get(p.URL + "/v2/")
			if err == nil {
				resp.Body.Close()
				err = fmt.Errorf("answered %s", resp.Status)
			}
			errs <- err
		}()
		p.WaitHeld(1)
	})
	if err := <-errs; err == nil || strings.HasPrefix(err.Error(), "answered") {
		t.Errorf("the held request: %v; want its connection cut when the test ended", err)
	}
}
