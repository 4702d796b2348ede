package testbed

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of the fault proxy.
const (
	// MaxSlowDelay caps Faults.SlowDelay: a slow answer is a few
	// milliseconds late, never long enough to matter to a test's runtime.
	MaxSlowDelay = 20 * time.Millisecond
	// MinTrickleInterval is the shortest Faults.TrickleInterval, and the
	// interval when none is set: a trickle must stay slower than any
	// client's patience for a whole small answer, yet never quiet long
	// enough to look stalled.
	MinTrickleInterval = 10 * time.Millisecond
	// unknownHalf is how much of a body of unknown length a Resets or
	// Stalls fault lets through before it strikes.
	unknownHalf = 1 << 10
	// TokenPath is where a FaultProxy with TokenAuth issues bearer tokens.
	TokenPath = "/token"
	// tokenService is the service named in the proxy's bearer challenges.
	tokenService = "ferry-faultproxy"
	// defaultTokenLifetime is the expires_in a token is declared with
	// unless TokenAuth says otherwise.
	defaultTokenLifetime = 300
	// maxTokens bounds the tokens one proxy issues: a client in a loop
	// must not eat the test's memory.
	maxTokens = 100000
)

// Faults is a fault schedule. Each fault kind takes a share of the request
// keys (method, path with upload session ids collapsed, the digest of an
// upload, Range): which keys is decided by a hash of Seed and the key, so the
// same requests fail whatever the order the client sends them in. A key that
// draws a fault fails its first Times occurrences and is then let through;
// Times 0 makes it fail for ever ("faults that never stop"). The shares of
// TooMany, Errors, Resets, Hangs, Stalls and Trickles are disjoint slices of
// [0,1); their sum is at most 1. Slow is drawn separately and delays every
// occurrence of its keys.
//
// Hangs, Stalls and Trickles are faults that do not end by themselves: the
// request is held until the client goes away or the test ends, whichever
// comes first; nothing of theirs outlives the test.
type Faults struct {
	Seed int64
	// Errors is the share of keys answered ErrorStatus (503 unless set).
	Errors      float64
	ErrorStatus int
	// TooMany is the share of keys answered 429 with Retry-After:
	// RetryAfter ("0" unless set).
	TooMany    float64
	RetryAfter string
	// Resets is the share of keys whose connection is cut: a blob GET
	// after half of its body was sent (with a Content-Length announcing
	// all of it), a request with a body after half of it was read, any
	// other request before it is answered. The connection is reset (RST).
	Resets float64
	// Hangs is the share of keys accepted and never answered: a request
	// body is read, then nothing is sent.
	Hangs float64
	// Stalls is the share of keys whose answer stops in the middle: the
	// headers and the first half of the body (at most 1 KiB when the length
	// is unknown) are sent, then nothing. A request with a body stops
	// instead after half of it is read, before any answer.
	Stalls float64
	// Trickles is the share of keys whose answer's body is sent one byte
	// per TrickleInterval (MinTrickleInterval unless set, never less).
	Trickles        float64
	TrickleInterval time.Duration
	// Slow is the share of keys answered SlowDelay late (at most
	// MaxSlowDelay).
	Slow      float64
	SlowDelay time.Duration
	// Times is how many occurrences of a faulted key fail; 0 means all.
	Times int
	// Match, when set, limits faults to the requests it accepts. The
	// token endpoint is never faulted.
	Match func(r *http.Request) bool
}

// TokenAuth puts bearer-token authentication in front of the target, as
// registries such as quay.io do: /v2/ requests without a valid token get 401
// with a `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge,
// and GET <URL>/token with the right basic credentials issues a token.
type TokenAuth struct {
	Username, Password string
	// Uses is how many requests a token is good for; after that it is
	// refused like an expired one (401 with error="invalid_token"). 0 means
	// no limit.
	Uses int
	// ExpiresIn is the lifetime in seconds declared to clients with each
	// token (containers/image reads at least 60); 0 means 300.
	ExpiresIn int
	// IssuedAt, when set, is declared as issued_at instead of the time of
	// issue: a time in the past makes clients consider the token expired
	// at once, so that they fetch a new one for each request.
	IssuedAt time.Time
}

// ProxyStats counts what a FaultProxy saw and did.
type ProxyStats struct {
	// Requests is every request answered or cut, token requests included.
	Requests int
	// TokenRequests were to the token endpoint; TokensIssued succeeded.
	TokenRequests, TokensIssued int
	// Unauthorized is how many 401s the proxy itself sent; Expired counts
	// those for a token it had issued but whose uses were spent.
	Unauthorized, Expired int
	// Injected faults by kind.
	Errors, TooMany, Resets, Slow int
	Hangs, Stalls, Trickles       int
	// Held is how many requests a Hangs, Stalls or Trickles fault is
	// holding right now.
	Held int
	// BlobBytes is the body bytes of blob GETs sent to clients.
	BlobBytes int64
	// Methods counts requests by method (token requests included).
	Methods map[string]int
}

// Writes counts the requests that could change the target: every method
// but GET and HEAD.
func (s ProxyStats) Writes() int {
	n := 0
	for m, c := range s.Methods {
		if m != http.MethodGet && m != http.MethodHead {
			n += c
		}
	}
	return n
}

// FaultProxy is an HTTP proxy on 127.0.0.1 in front of a registry or a
// signature store that injects faults on a deterministic schedule and can
// demand bearer tokens. Requests go to the target with the client's Host
// header, so a registry's Location headers name the proxy. Knobs may change
// while clients are running. It is stopped when the test ends.
type FaultProxy struct {
	// URL is "http://127.0.0.1:<port>" ("https://" for NewTLSFaultProxy).
	URL string
	// Host is "127.0.0.1:<port>", ready to prefix a repository name.
	Host string
	// CertPEM is the server certificate of a TLS proxy, PEM-encoded, for a
	// client's CA directory; nil otherwise.
	CertPEM []byte

	server    *httptest.Server
	target    *url.URL
	done      chan struct{} // closed when the test ends: held requests let go
	transport *http.Transport
	requests  atomic.Int64 // ordinal of the last request

	mu sync.Mutex
	// inflight counts requests being served; idle (on mu) is signalled
	// when it drops to zero, and when stats.Held changes.
	inflight  int
	idle      *sync.Cond
	faults    Faults
	auth      *TokenAuth
	seen      map[string]int // occurrences of each key
	tokens    map[string]int // valid tokens and the uses left (-1: no limit)
	issued    []string       // every token issued, for tests that search for them
	stats     ProxyStats
	onRequest func(n int64, r *http.Request) bool
}

// NewFaultProxy starts a plain-HTTP proxy in front of target, a base URL
// such as Registry.URL; with no faults set, it passes everything through.
func NewFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	return newFaultProxy(t, target, false)
}

// NewTLSFaultProxy is NewFaultProxy serving HTTPS with a certificate no
// system trusts (CertPEM is its own CA), for tests of TLS verification.
func NewTLSFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	return newFaultProxy(t, target, true)
}

func newFaultProxy(t testing.TB, target string, useTLS bool) *FaultProxy {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		t.Fatalf("fault proxy: target %q is not a base URL", target)
	}
	p := &FaultProxy{
		target: u,
		transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true, // bodies go through byte for byte
		},
		done:   make(chan struct{}),
		seen:   map[string]int{},
		tokens: map[string]int{},
		stats:  ProxyStats{Methods: map[string]int{}},
	}
	p.idle = sync.NewCond(&p.mu)
	p.server = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	if useTLS {
		p.server.StartTLS()
		p.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.server.Certificate().Raw})
	} else {
		p.server.Start()
	}
	t.Cleanup(func() {
		close(p.done) // before Close, which waits for every handler
		p.server.CloseClientConnections()
		p.server.Close()
		p.transport.CloseIdleConnections()
	})
	p.URL = p.server.URL
	p.Host = strings.TrimPrefix(strings.TrimPrefix(p.URL, "http://"), "https://")
	return p
}

// SetFaults replaces the fault schedule and forgets how often each key was
// seen, so that a new schedule starts afresh.
func (p *FaultProxy) SetFaults(f Faults) {
	if f.SlowDelay > MaxSlowDelay {
		f.SlowDelay = MaxSlowDelay
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
	p.seen = map[string]int{}
}

// SetAuth demands bearer tokens (nil: no authentication). Tokens issued
// before stay valid under the old rules.
func (p *FaultProxy) SetAuth(a *TokenAuth) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a != nil {
		c := *a
		a = &c
	}
	p.auth = a
}

// OnRequest sets a function called with each request's ordinal (1, 2, ...)
// as it arrives, before anything else: the request waits until f returns,
// and is dropped (its connection reset, nothing forwarded) if f returns
// false. Tests use it to act at a precise point of a client's run, such as
// killing the client as if it died just before sending that request.
func (p *FaultProxy) OnRequest(f func(n int64, r *http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onRequest = f
}

// WaitIdle returns once no request is being served. After killing a
// client, it makes sure that what the client had sent has fully reached the
// target before a test looks at the target.
func (p *FaultProxy) WaitIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.inflight > 0 {
		p.idle.Wait()
	}
}

// Stats returns a copy of the counters.
func (p *FaultProxy) Stats() ProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Methods = make(map[string]int, len(p.stats.Methods))
	for k, v := range p.stats.Methods {
		s.Methods[k] = v
	}
	return s
}

// ResetStats zeroes the counters (not Held) and the request ordinal.
func (p *FaultProxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = ProxyStats{Methods: map[string]int{}, Held: p.stats.Held} // Held is a gauge
	p.requests.Store(0)
}

// IssuedTokens returns every bearer token issued so far.
func (p *FaultProxy) IssuedTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.issued...)
}

// Client returns a registry client that talks to the target through the
// proxy (without authentication: use it with faults and auth off).
func (p *FaultProxy) Client() *Client { return NewClient(p.Host) }

// action is what the schedule decided for one request.
type action int

const (
	pass action = iota
	failStatus
	failTooMany
	failReset
	failHang
	failStall
	failTrickle
)

// uploadSession matches the session id of a blob upload URL.
var uploadSession = regexp.MustCompile(`(/blobs/uploads/)[^/?]+`)

// faultKey identifies a request for the schedule: retries of the same
// operation share it.
func faultKey(r *http.Request) string {
	path := uploadSession.ReplaceAllString(r.URL.Path, "${1}*")
	key := r.Method + " " + path
	if d := r.URL.Query().Get("digest"); d != "" {
		key += " digest=" + d
	}
	if rg := r.Header.Get("Range"); rg != "" {
		key += " range=" + rg
	}
	return key
}

// draw maps (seed, kind, key) to [0,1).
func draw(seed int64, kind, key string) float64 {
	h := sha256.New()
	_ = binary.Write(h, binary.BigEndian, seed)
	io.WriteString(h, kind+"\x00"+key)
	return float64(binary.BigEndian.Uint64(h.Sum(nil))>>11) / (1 << 53)
}

// decide applies the schedule f to r, which Match has accepted. Called with
// p.mu held.
func (p *FaultProxy) decide(f Faults, r *http.Request) (action, time.Duration) {
	key := faultKey(r)
	n := p.seen[key]
	p.seen[key] = n + 1
	var delay time.Duration
	if f.Slow > 0 && draw(f.Seed, "slow", key) < f.Slow {
		delay = f.SlowDelay
		p.stats.Slow++
	}
	if f.Times > 0 && n >= f.Times {
		return pass, delay
	}
	u := draw(f.Seed, "fail", key)
	switch {
	case u < f.TooMany:
		p.stats.TooMany++
		return failTooMany, delay
	case u < f.TooMany+f.Errors:
		p.stats.Errors++
		return failStatus, delay
	case u < f.TooMany+f.Errors+f.Resets:
		p.stats.Resets++
		return failReset, delay
	case u < f.TooMany+f.Errors+f.Resets+f.Hangs:
		p.stats.Hangs++
		return failHang, delay
	case u < f.TooMany+f.Errors+f.Resets+f.Hangs+f.Stalls:
		p.stats.Stalls++
		return failStall, delay
	case u < f.TooMany+f.Errors+f.Resets+f.Hangs+f.Stalls+f.Trickles:
		p.stats.Trickles++
		return failTrickle, delay
	}
	return pass, delay
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	n := p.requests.Add(1)
	p.mu.Lock()
	p.stats.Requests++
	p.stats.Methods[r.Method]++
	p.inflight++
	hook := p.onRequest
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflight--
		if p.inflight == 0 {
			p.idle.Broadcast()
		}
		p.mu.Unlock()
	}()
	if hook != nil && !hook(n, r) {
		resetConnection(w)
		return
	}
	if r.URL.Path == TokenPath {
		p.serveToken(w, r)
		return
	}
	p.mu.Lock()
	f := p.faults
	p.mu.Unlock()
	// Match is the test's code: it runs without the lock, so that a panic
	// in it cannot leave the proxy locked.
	matched := f.Match == nil || f.Match(r)
	p.mu.Lock()
	act, delay := pass, time.Duration(0)
	if matched {
		act, delay = p.decide(f, r)
	}
	challenge := p.checkAuth(r)
	p.mu.Unlock()
	status, retryAfter := f.ErrorStatus, f.RetryAfter
	trickle := max(f.TrickleInterval, MinTrickleInterval)

	if delay > 0 {
		// A bounded few milliseconds: what is tested is that a late
		// answer changes nothing, not how late it is.
		time.Sleep(delay)
	}
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return
	}
	switch act {
	case failTooMany:
		if retryAfter == "" {
			retryAfter = "0"
		}
		w.Header().Set("Retry-After", retryAfter)
		http.Error(w, "too many requests (injected)", http.StatusTooManyRequests)
		return
	case failStatus:
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		http.Error(w, "injected failure", status)
		return
	case failReset:
		if !isBlobGet(r) {
			if r.ContentLength != 0 && r.Body != nil {
				_, _ = io.CopyN(io.Discard, r.Body, half(r.ContentLength))
			}
			resetConnection(w)
			return
		}
	case failHang:
		_, _ = io.Copy(io.Discard, r.Body)
		p.hold(w, r)
		return
	case failStall:
		if r.ContentLength != 0 && r.Body != nil {
			_, _ = io.CopyN(io.Discard, r.Body, half(r.ContentLength))
			p.hold(w, r)
			return
		}
	}
	p.forward(w, r, answer{cut: act == failReset, stall: act == failStall, trickle: act == failTrickle, interval: trickle})
}

// hold keeps a request unanswered until its client goes away or the test
// ends; then its connection is reset, so that the client sees a failure,
// never an answer. A client's going away is noticed once its request body
// is read.
func (p *FaultProxy) hold(w http.ResponseWriter, r *http.Request) {
	defer p.holding()()
	select {
	case <-r.Context().Done():
	case <-p.done:
		resetConnection(w)
	}
}

// holding counts a request as held until the function it returns is called.
func (p *FaultProxy) holding() func() {
	p.mu.Lock()
	p.stats.Held++
	p.idle.Broadcast()
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.stats.Held--
		p.idle.Broadcast()
		p.mu.Unlock()
	}
}

// WaitHeld returns once at least n requests are held by a Hangs, Stalls or
// Trickles fault: a test then knows its client is waiting on one.
func (p *FaultProxy) WaitHeld(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.stats.Held < n {
		p.idle.Wait()
	}
}

// half is where a Resets or Stalls fault cuts a body of the given length
// (-1: unknown).
func half(length int64) int64 {
	if length < 0 {
		return unknownHalf
	}
	return length / 2
}

// answer is how forward sends the target's answer: whole; cut (half the
// body, then a reset); stalled (half the body, then held); or trickled
// (one byte per interval).
type answer struct {
	cut, stall, trickle bool
	interval            time.Duration
}

func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && !strings.Contains(r.URL.Path, "/blobs/uploads/")
}

// forward sends r to the target and copies the answer back as a says.
func (p *FaultProxy) forward(w http.ResponseWriter, r *http.Request, a answer) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.Host = r.Host // the registry builds Location headers from it...
	if r.TLS != nil {
		out.Header.Set("X-Forwarded-Proto", "https") // ...and from this
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	for _, h := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade"} {
		out.Header.Del(h)
	}
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, "fault proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if k == "Connection" || k == "Keep-Alive" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	body := io.Reader(resp.Body)
	if a.cut || a.stall {
		body = io.LimitReader(resp.Body, half(resp.ContentLength))
	}
	var written int64
	if a.trickle {
		written = p.trickle(w, r, body, a.interval)
	} else {
		written, _ = io.Copy(w, body)
	}
	if isBlobGet(r) && resp.StatusCode/100 == 2 {
		p.mu.Lock()
		p.stats.BlobBytes += written
		p.mu.Unlock()
	}
	if a.cut || a.stall {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	switch {
	case a.cut:
		resetConnection(w)
	case a.stall:
		p.hold(w, r)
	}
}

// trickle sends body one byte per interval, until it ends, the client goes
// away or the test ends; it returns the bytes sent.
func (p *FaultProxy) trickle(w http.ResponseWriter, r *http.Request, body io.Reader, interval time.Duration) int64 {
	defer p.holding()()
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush() // the headers go at once
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var sent int64
	one := make([]byte, 1)
	for {
		select {
		case <-r.Context().Done():
			return sent
		case <-p.done:
			return sent
		case <-tick.C:
		}
		if _, err := io.ReadFull(body, one); err != nil {
			return sent
		}
		if _, err := w.Write(one); err != nil {
			return sent
		}
		sent++
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// resetConnection drops the client's connection with a TCP reset.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fault proxy: the response writer cannot be hijacked")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	if buf != nil {
		_ = buf.Flush()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// checkAuth returns the challenge to answer r with, or "" when r may pass.
// Called with p.mu held.
func (p *FaultProxy) checkAuth(r *http.Request) string {
	a := p.auth
	if a == nil || !strings.HasPrefix(r.URL.Path, "/v2/") {
		return ""
	}
	challenge := fmt.Sprintf(`Bearer realm=%q,service=%q`, p.URL+TokenPath, tokenService)
	if scope := scopeOf(r); scope != "" {
		challenge += fmt.Sprintf(`,scope=%q`, scope)
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		p.stats.Unauthorized++
		return challenge
	}
	left, valid := p.tokens[token]
	if !valid || left == 0 {
		p.stats.Unauthorized++
		if valid {
			p.stats.Expired++
		}
		return challenge + `,error="invalid_token"`
	}
	if left > 0 {
		p.tokens[token] = left - 1
	}
	return ""
}

// scopeOf is the token scope a registry request needs.
func scopeOf(r *http.Request) string {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/")
	for _, sep := range []string{"/blobs/", "/manifests/", "/tags/"} {
		if i := strings.Index(rest, sep); i > 0 {
			actions := "pull"
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				actions = "pull,push"
			}
			return "repository:" + rest[:i] + ":" + actions
		}
	}
	return ""
}

// serveToken is the token endpoint: basic credentials in, a bearer token out.
func (p *FaultProxy) serveToken(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.TokenRequests++
	a := p.auth
	user, pass, ok := r.BasicAuth()
	if a == nil || !ok || user != a.Username || pass != a.Password {
		w.Header().Set("WWW-Authenticate", `Basic realm="ferry-faultproxy"`)
		http.Error(w, `{"details":"invalid credentials"}`, http.StatusUnauthorized)
		return
	}
	if len(p.issued) >= maxTokens {
		http.Error(w, "too many tokens", http.StatusTooManyRequests)
		return
	}
	token := randomToken()
	uses := a.Uses
	if uses <= 0 {
		uses = -1
	}
	p.tokens[token] = uses
	p.issued = append(p.issued, token)
	p.stats.TokensIssued++
	expires := a.ExpiresIn
	if expires <= 0 {
		expires = defaultTokenLifetime
	}
	issued := a.IssuedAt
	if issued.IsZero() {
		issued = time.Now()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": token, "access_token": token, "expires_in": expires,
		"issued_at": issued.UTC().Format(time.RFC3339),
	})
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "fp-" + hex.EncodeToString(b[:])
}

// AuthFile returns the contents of a containers auth.json giving username
// and password for host.
func AuthFile(host, username, password string) []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(username + ":" + password))
	data, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
	return data
}
