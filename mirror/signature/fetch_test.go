package signature_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/retry"
	"github.com/ferryhq/ferry/mirror/signature"
)

const fetchDigest digest.Digest = testDigest

// fastRetry keeps test retries quick; the tests count requests, never time.
var fastRetry = retry.Policy{Attempts: 4, Base: time.Millisecond, Max: 5 * time.Millisecond}

// sigStore is a signature store served over HTTP. Each path has a script
// of answers, played in order; the last one repeats. Paths without a
// script are 404. It counts the requests for each path.
type sigStore struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script map[string][]answer
	count  map[string]int
}

type answer struct {
	status     int
	body       []byte
	retryAfter string
	hangUp     bool // close the connection without answering
}

func newSigStore(t *testing.T) *sigStore {
	s := &sigStore{t: t, script: map[string][]answer{}, count: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// base is the store URL to give a Fetcher.
func (s *sigStore) base() string { return s.srv.URL + "/pub/signatures" }

func (s *sigStore) url(n int) string { return s.base() + "/" + signature.StorePath(fetchDigest, n) }

func (s *sigStore) on(n int, answers ...answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script["/pub/signatures/"+signature.StorePath(fetchDigest, n)] = answers
}

// serveSignatures makes signature-1..n answer 200 with sigBody(i).
func (s *sigStore) serveSignatures(n int) {
	for i := 1; i <= n; i++ {
		s.on(i, answer{status: http.StatusOK, body: sigBody(i)})
	}
}

func (s *sigStore) requests(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count["/pub/signatures/"+signature.StorePath(fetchDigest, n)]
}

func (s *sigStore) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	k := s.count[r.URL.Path]
	s.count[r.URL.Path]++
	script := s.script[r.URL.Path]
	s.mu.Unlock()
	if len(script) == 0 {
		http.NotFound(w, r)
		return
	}
	a := script[min(k, len(script)-1)]
	if a.hangUp {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			s.t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
		return
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
	w.Write(a.body)
}

func sigBody(n int) []byte { return []byte(fmt.Sprintf("signature %d", n)) }

func fetcher(stores ...string) *signature.Fetcher {
	return &signature.Fetcher{Stores: stores, Retry: fastRetry}
}

func TestFetchUntilNotFound(t *testing.T) {
	s := newSigStore(t)
	s.serveSignatures(3)
	res, err := fetcher(s.base()).Fetch(context.Background(), fetchDigest)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if res.Store != s.base() || len(res.Signatures) != 3 {
		t.Fatalf("Fetch = store %s, %d signatures; want %s, 3", res.Store, len(res.Signatures), s.base())
	}
	for i, f := range res.Signatures {
		n := i + 1
		if f.N != n || f.Store != s.base() || f.URL != s.url(n) || !bytes.Equal(f.Data, sigBody(n)) {
			t.Errorf("signature %d = %+v, want N %d from %s with %q", i, f, n, s.url(n), sigBody(n))
		}
	}
	if len(res.Tried) != 4 || res.Tried[3].URL != s.url(4) || res.Tried[3].Answer != "not found" {
		t.Errorf("Tried = %+v, want signature-1..3 then signature-4 not found", res.Tried)
	}
	if s.requests(4) != 1 || s.requests(5) != 0 {
		t.Errorf("requests: signature-4 %d, signature-5 %d; want 1 and 0", s.requests(4), s.requests(5))
	}
}

func TestFetchRetriesTransientFailures(t *testing.T) {
	ok := answer{status: http.StatusOK, body: sigBody(1)}
	tests := []struct {
		name     string
		answers  []answer
		requests int
	}{
		{"500 then 200", []answer{{status: 500}, ok}, 2},
		{"429 with Retry-After 0", []answer{{status: 429, retryAfter: "0"}, ok}, 2},
		{"503 then 502 then 200", []answer{{status: 503}, {status: 502}, ok}, 3},
		{"connection closed", []answer{{hangUp: true}, ok}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSigStore(t)
			s.on(1, tt.answers...)
			res, err := fetcher(s.base()).Fetch(context.Background(), fetchDigest)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if len(res.Signatures) != 1 || !bytes.Equal(res.Signatures[0].Data, sigBody(1)) {
				t.Errorf("Fetch = %+v, want signature 1", res.Signatures)
			}
			if got := s.requests(1); got != tt.requests {
				t.Errorf("%d requests for signature-1, want %d", got, tt.requests)
			}
			wantContains(t, res.Tried[0].Answer, fmt.Sprintf("after %d tries", tt.requests))
		})
	}
}

func TestFetchGivesUp(t *testing.T) {
	tests := []struct {
		name     string
		answer   answer
		requests int
		want     []string
	}{
		{"500 every time", answer{status: 500}, fastRetry.Attempts, []string{"500 Internal Server Error", "after 4 tries"}},
		{"403 is not retried", answer{status: 403}, 1, []string{"403 Forbidden"}},
		{"501 is not retried", answer{status: 501}, 1, []string{"501 Not Implemented"}},
		{"Retry-After beyond the limit", answer{status: 429, retryAfter: "3600"}, 1, []string{"429", "retry after 1h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSigStore(t)
			s.on(1, tt.answer)
			_, err := fetcher(s.base()).Fetch(context.Background(), fetchDigest)
			t.Logf("error: %v", err)
			fe := wantErr[*signature.FetchError](t, err)
			if len(fe.Tried) != 1 || fe.Tried[0].URL != s.url(1) {
				t.Fatalf("Tried = %+v, want signature-1 only", fe.Tried)
			}
			wantContains(t, err.Error(), append([]string{s.url(1)}, tt.want...)...)
			if got := s.requests(1); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			var status *signature.StatusError
			if !errors.As(err, &status) || status.Code != tt.answer.status {
				t.Errorf("errors.As StatusError = %v, want code %d", status, tt.answer.status)
			}
		})
	}
}

func TestFetchRefusesLargeBody(t *testing.T) {
	s := newSigStore(t)
	s.on(1, answer{status: http.StatusOK, body: bytes.Repeat([]byte("x"), 5<<20)})
	_, err := fetcher(s.base()).Fetch(context.Background(), fetchDigest)
	tl := wantErr[*signature.TooLargeError](t, err)
	if tl.Limit != signature.MaxSignatureSize || tl.URL != s.url(1) {
		t.Errorf("TooLargeError = %+v, want limit %d for %s", tl, signature.MaxSignatureSize, s.url(1))
	}
	wantContains(t, err.Error(), "65536-byte limit")
	if got := s.requests(1); got != 1 {
		t.Errorf("%d requests, want 1: an oversized body is not retried", got)
	}

	// A smaller cap applies as given.
	s.on(1, answer{status: http.StatusOK, body: []byte("0123456789")})
	f := fetcher(s.base())
	f.MaxBody = 9
	_, err = f.Fetch(context.Background(), fetchDigest)
	if tl := wantErr[*signature.TooLargeError](t, err); tl.Limit != 9 {
		t.Errorf("limit = %d, want 9", tl.Limit)
	}
	f.MaxBody = 10
	if _, err := f.Fetch(context.Background(), fetchDigest); err != nil {
		t.Errorf("a body of exactly MaxBody bytes: %v", err)
	}
}

func TestFetchFallsThrough(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/sigs"
	down.Close() // nothing listens there any more: connection refused

	empty := newSigStore(t) // answers 404 for signature-1
	partial := newSigStore(t)
	partial.serveSignatures(1)
	partial.on(2, answer{status: 500})
	good := newSigStore(t)
	good.serveSignatures(2)

	res, err := fetcher(downURL, empty.base(), partial.base(), good.base()).Fetch(context.Background(), fetchDigest)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if res.Store != good.base() || len(res.Signatures) != 2 {
		t.Fatalf("Fetch = %d signatures from %s, want 2 from %s", len(res.Signatures), res.Store, good.base())
	}
	for _, f := range res.Signatures {
		if f.Store != good.base() {
			t.Errorf("signature %d from %s: a failing store must not contribute part of its set", f.N, f.Store)
		}
	}
	// down signature-1, empty signature-1, partial 1 and 2, good 1..3.
	var urls []string
	for _, a := range res.Tried {
		urls = append(urls, a.URL)
	}
	want := []string{
		downURL + "/" + signature.StorePath(fetchDigest, 1), empty.url(1),
		partial.url(1), partial.url(2), good.url(1), good.url(2), good.url(3),
	}
	if strings.Join(urls, " ") != strings.Join(want, " ") {
		t.Errorf("Tried = %v, want %v", urls, want)
	}
	for _, a := range res.Tried {
		t.Logf("tried %s: %s", a.URL, a.Answer)
	}
	if res.Tried[0].Err == nil || !strings.Contains(res.Tried[0].Answer, "connection refused") {
		t.Errorf("Tried[0] = %+v, want connection refused", res.Tried[0])
	}
	if got := partial.requests(2); got != fastRetry.Attempts {
		t.Errorf("partial store: %d requests for signature-2, want %d", got, fastRetry.Attempts)
	}
}

func TestFetchNoSignatureAnywhere(t *testing.T) {
	a, b := newSigStore(t), newSigStore(t)
	_, err := fetcher(a.base(), b.base()).Fetch(context.Background(), fetchDigest)
	fe := wantErr[*signature.FetchError](t, err)
	if fe.Digest != fetchDigest || len(fe.Tried) != 2 {
		t.Fatalf("FetchError = %+v, want both signature-1 URLs", fe)
	}
	wantContains(t, err.Error(), string(fetchDigest), a.url(1)+": not found", b.url(1)+": not found")
}

func TestFetchFileStore(t *testing.T) {
	dir := t.TempDir()
	for n := 1; n <= 2; n++ {
		p := filepath.Join(dir, filepath.FromSlash(signature.StorePath(fetchDigest, n)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, sigBody(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store := "file://" + filepath.ToSlash(dir)
	res, err := fetcher(store).Fetch(context.Background(), fetchDigest)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(res.Signatures) != 2 || !bytes.Equal(res.Signatures[1].Data, sigBody(2)) || res.Signatures[1].N != 2 {
		t.Fatalf("Fetch = %+v, want signatures 1 and 2", res.Signatures)
	}
	wantContains(t, res.Signatures[0].URL, "file://", "/"+signature.StorePath(fetchDigest, 1))

	// A file over the cap is refused; an empty directory has none.
	f := fetcher(store)
	f.MaxBody = 5
	_, err = f.Fetch(context.Background(), fetchDigest)
	wantErr[*signature.TooLargeError](t, err)
	_, err = fetcher("file://"+filepath.ToSlash(t.TempDir())).Fetch(context.Background(), fetchDigest)
	wantContains(t, wantErr[*signature.FetchError](t, err).Error(), "not found")
}

func TestFetchMaxSignatures(t *testing.T) {
	s := newSigStore(t)
	s.serveSignatures(12)
	res, err := fetcher(s.base()).Fetch(context.Background(), fetchDigest)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signatures) != signature.DefaultMaxSignatures || s.requests(signature.DefaultMaxSignatures+1) != 0 {
		t.Errorf("%d signatures, %d requests for the next; want %d and 0", len(res.Signatures), s.requests(10), signature.DefaultMaxSignatures)
	}
	f := fetcher(s.base())
	f.MaxSignatures = 2
	if res, err := f.Fetch(context.Background(), fetchDigest); err != nil || len(res.Signatures) != 2 {
		t.Errorf("with MaxSignatures 2: %v, %v", res, err)
	}
}

// TestFetchMaxSignaturesPerDigest: asking for more signatures than the
// cluster would ever read fetches no more than MaxSignaturesPerDigest,
// from a store that offers far more.
func TestFetchMaxSignaturesPerDigest(t *testing.T) {
	s := newSigStore(t)
	s.serveSignatures(50)
	f := fetcher(s.base())
	f.MaxSignatures = 40
	res, err := f.Fetch(context.Background(), fetchDigest)
	if err != nil {
		t.Fatal(err)
	}
	if n := signature.MaxSignaturesPerDigest; len(res.Signatures) != n || s.requests(n+1) != 0 || len(res.Tried) != n {
		t.Errorf("%d signatures, %d tries, %d requests for signature-%d; want %d, %d and 0",
			len(res.Signatures), len(res.Tried), s.requests(n+1), n+1, n, n)
	}
}

func TestFetchStopsWhenContextEnds(t *testing.T) {
	s := newSigStore(t)
	s.on(1, answer{status: 503})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fetcher(s.base(), s.base()).Fetch(ctx, fetchDigest)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch = %v, want context.Canceled", err)
	}
	var fe *signature.FetchError
	if errors.As(err, &fe) {
		t.Error("a cancelled fetch must not be reported as stores without signatures")
	}
}

func TestFetchRefusesBadInput(t *testing.T) {
	for _, tt := range []struct {
		stores []string
		d      digest.Digest
		want   string
	}{
		{[]string{"ftp://example.com/sigs"}, fetchDigest, `scheme "ftp"`},
		{[]string{"file://relative/dir"}, fetchDigest, "absolute path"},
		{[]string{"https:///nohost"}, fetchDigest, "no host"},
		{[]string{}, fetchDigest, "no signature stores"},
		{[]string{"https://example.com"}, "sha256:abc", "digest"},
	} {
		_, err := fetcher(tt.stores...).Fetch(context.Background(), tt.d)
		if err == nil {
			t.Errorf("Fetch(%v, %s) succeeded", tt.stores, tt.d)
			continue
		}
		wantContains(t, err.Error(), tt.want)
	}
}

func TestStorePath(t *testing.T) {
	if got, want := signature.StorePath(fetchDigest, 3), "sha256="+fetchDigest.Encoded()+"/signature-3"; got != want {
		t.Errorf("StorePath = %s, want %s", got, want)
	}
}

// TestFetchAndVerifyFromTestbedStore runs the whole path the CLI takes:
// fetch from a store as mirror.openshift.com lays it out (answering 503
// first), then keep only what verifies, renumbered without gaps.
func TestFetchAndVerifyFromTestbedStore(t *testing.T) {
	key := testbed.NewKey(t, "release")
	kr := parseKeyring(t, "test", key.PublicArmored(t))
	store := testbed.NewSignatureStore(t)
	v4 := key.SignRelease(t, testDigest, "example.com/release:1")
	v3 := key.SignBytesV3(t, mustJSON(t, testbed.ReleasePayload(testDigest, "example.com/release:1")), testbed.V3Options{Compress: true})
	store.Add(fetchDigest, v4)
	store.Add(fetchDigest, []byte("not a signature"))
	store.Add(fetchDigest, v3)
	store.FailNext(1, http.StatusServiceUnavailable)

	res, err := fetcher(store.URL).Fetch(context.Background(), fetchDigest)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(res.Signatures) != 3 {
		t.Fatalf("fetched %d signatures, want 3", len(res.Signatures))
	}
	wantContains(t, res.Tried[0].Answer, "after 2 tries") // the 503 was retried
	accepted, rejected := signature.VerifyAll(res.Signatures, kr, fetchDigest)
	if len(accepted) != 2 || len(rejected) != 1 {
		t.Fatalf("VerifyAll: %d accepted, %d rejected; want 2 and 1", len(accepted), len(rejected))
	}
	if accepted[1].N != 3 || accepted[1].Number != 2 || accepted[1].Verified.PacketVersion != 3 || !bytes.Equal(accepted[1].Data, v3) {
		t.Errorf("accepted[1] = N %d Number %d version %d; want signature-3 (v3) as number 2",
			accepted[1].N, accepted[1].Number, accepted[1].Verified.PacketVersion)
	}
	if rejected[0].N != 2 {
		t.Errorf("rejected signature-%d, want signature-2", rejected[0].N)
	}
}
