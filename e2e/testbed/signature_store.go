package testbed

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// SignatureStorePath is the path under which a SignatureStore serves, like
// the real store's, so that clients must join URLs properly.
const SignatureStorePath = "/pub/openshift-v4/signatures/openshift/release"

// SignatureStore is a GPG release signature store over HTTP on 127.0.0.1,
// as mirror.openshift.com serves (SPEC §2): GET <URL>/<algo>=<hex>/signature-<N>
// answers the N-th signature added for that digest, and 404 past the last.
// Faults can be injected for the next requests. Safe for concurrent use;
// stopped when the test ends.
type SignatureStore struct {
	// URL is the store's base URL, to hand to ferry (no trailing slash).
	URL    string
	server *httptest.Server

	mu         sync.Mutex
	sigs       map[digest.Digest][][]byte
	failures   []int  // statuses of the next requests
	retryAfter string // sent with each 429 and 503 failure
	oversize   map[digest.Digest]int64
	requests   []string
}

// NewSignatureStore starts an empty store.
func NewSignatureStore(t testing.TB) *SignatureStore {
	t.Helper()
	s := &SignatureStore{sigs: map[digest.Digest][][]byte{}, oversize: map[digest.Digest]int64{}}
	s.server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.server.Close)
	s.URL = s.server.URL + SignatureStorePath
	return s
}

// Add appends sig as the next signature of d (signature-1, -2, ...).
func (s *SignatureStore) Add(d digest.Digest, sig []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sigs[d] = append(s.sigs[d], sig)
}

// SignRelease signs rel.Digest with key, identity rel.PullSpec, adds the
// signature and returns it.
func (s *SignatureStore) SignRelease(t testing.TB, key *Key, rel *Release) []byte {
	t.Helper()
	sig := key.SignRelease(t, rel.Digest.String(), rel.PullSpec)
	s.Add(rel.Digest, sig)
	return sig
}

// FailNext makes the next n requests, whatever they ask, fail with status.
// A 429 or 503 carries Retry-After (see RetryAfter; "0" unless set).
func (s *SignatureStore) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, status)
	}
}

// RetryAfter sets the Retry-After value sent with injected 429 and 503
// answers: seconds ("2") or an HTTP date.
func (s *SignatureStore) RetryAfter(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = v
}

// Oversize makes signature-1 of d a body of size bytes, sent without a
// Content-Length, so a client must cap what it reads.
func (s *SignatureStore) Oversize(d digest.Digest, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oversize[d] = size
}

// Requests is how many requests the store has answered.
func (s *SignatureStore) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// RequestLog lists the paths asked for, relative to URL, in order.
func (s *SignatureStore) RequestLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// WriteTree writes every signature under dir as <algo>=<hex>/signature-<N>,
// the layout of a file:// store, and returns that store's URL.
func (s *SignatureStore) WriteTree(t testing.TB, dir string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for d, sigs := range s.sigs {
		sub := filepath.Join(dir, d.Algorithm().String()+"="+d.Encoded())
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatalf("signature tree: %v", err)
		}
		for i, sig := range sigs {
			if err := os.WriteFile(filepath.Join(sub, "signature-"+strconv.Itoa(i+1)), sig, 0o644); err != nil {
				t.Fatalf("signature tree: %v", err)
			}
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("signature tree: %v", err)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

func (s *SignatureStore) serve(w http.ResponseWriter, r *http.Request) {
	rel, inStore := strings.CutPrefix(r.URL.Path, SignatureStorePath+"/")
	s.mu.Lock()
	s.requests = append(s.requests, rel)
	var fail int
	if len(s.failures) > 0 {
		fail, s.failures = s.failures[0], s.failures[1:]
	}
	retryAfter := s.retryAfter
	s.mu.Unlock()

	if fail != 0 {
		if fail == http.StatusTooManyRequests || fail == http.StatusServiceUnavailable {
			if retryAfter == "" {
				retryAfter = "0"
			}
			w.Header().Set("Retry-After", retryAfter)
		}
		http.Error(w, http.StatusText(fail), fail)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	d, n, ok := parseSignaturePath(rel)
	if !inStore || !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	big, over := s.oversize[d]
	var sig []byte
	if n <= len(s.sigs[d]) {
		sig = s.sigs[d][n-1]
	}
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/octet-stream")
	switch {
	case over && n == 1:
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			// Zeros, written until done or the client hangs up.
			_, _ = io.Copy(w, io.LimitReader(zeroReader{}, big))
		}
	case sig == nil:
		http.NotFound(w, r)
	default:
		w.Header().Set("Content-Length", strconv.Itoa(len(sig)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(sig)
		}
	}
}

// parseSignaturePath reads "<algo>=<hex>/signature-<N>", N ≥ 1.
func parseSignaturePath(p string) (digest.Digest, int, bool) {
	dir, file, ok := strings.Cut(p, "/")
	if !ok {
		return "", 0, false
	}
	algo, hex, ok := strings.Cut(dir, "=")
	if !ok {
		return "", 0, false
	}
	d, err := digest.Parse(algo + ":" + hex)
	if err != nil {
		return "", 0, false
	}
	num, ok := strings.CutPrefix(file, "signature-")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || strconv.Itoa(n) != num {
		return "", 0, false
	}
	return d, n, true
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
