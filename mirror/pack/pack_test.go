package pack_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/pack"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/trust"
)

// testRetry retries fast: the test registries answer at once.
var testRetry = registry.RetryPolicy{Attempts: 2, Base: time.Millisecond}

// source is a test-bed release behind a proxy that counts the blobs it
// serves and can serve one of them tampered with.
type source struct {
	rel *testbed.Release

	mu      sync.Mutex
	fetched map[digest.Digest]int // blob GETs answered, by digest
	tamper  digest.Digest         // a blob served with one byte flipped
}

func newSource(t *testing.T, opts testbed.ReleaseOptions) *source {
	t.Helper()
	reg := testbed.NewMemoryRegistry(t)
	target, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	s := &source{fetched: map[digest.Digest]int{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = s.observe
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	s.rel = testbed.BuildRelease(t, strings.TrimPrefix(srv.URL, "http://"), opts)
	return s
}

// observe counts a blob answer and flips the first byte of the tampered
// blob: same length, same headers, so only its digest gives it away.
func (s *source) observe(resp *http.Response) error {
	req := resp.Request
	_, after, ok := strings.Cut(req.URL.Path, "/blobs/")
	if req.Method != http.MethodGet || !ok || resp.StatusCode != http.StatusOK {
		return nil
	}
	d := digest.Digest(after)
	s.mu.Lock()
	s.fetched[d]++
	tamper := s.tamper == d
	s.mu.Unlock()
	if !tamper {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	body[0] ^= 0xff
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// blobGETs is how many blob answers the proxy served since the last call.
func (s *source) blobGETs() map[digest.Digest]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.fetched
	s.fetched = map[digest.Digest]int{}
	return got
}

// plan walks the release as ferry pack does.
func (s *source) plan(t *testing.T) *mirror.Plan {
	t.Helper()
	ref, err := release.ParseRef(s.rel.DigestSpec(), "")
	if err != nil {
		t.Fatal(err)
	}
	client := registry.New(registry.Options{AuthFile: filepath.Join(t.TempDir(), "auth.json"), Retry: testRetry})
	plan, err := (&mirror.Planner{Registry: client}).Plan(t.Context(), []release.Ref{ref})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plan.Close() })
	s.blobGETs() // the walk's own reads do not count
	return plan
}

// signatures signs the release with key and verifies it as pack's caller
// does.
func signatures(t *testing.T, key *testbed.Key, rel *testbed.Release, kr *signature.Keyring) map[digest.Digest][]signature.Accepted {
	t.Helper()
	sig := key.SignRelease(t, rel.Digest.String(), rel.Host+"/"+rel.Repository)
	accepted, rejected := signature.VerifyAll([]signature.Fetched{{N: 1, Data: sig}}, kr, rel.Digest)
	if len(accepted) != 1 {
		t.Fatalf("the test signature does not verify: %+v", rejected)
	}
	return map[digest.Digest][]signature.Accepted{rel.Digest: accepted}
}

// verify opens the bundle at path, checks every byte of it and returns
// its index.
func verify(t *testing.T, path string) *bundle.Index {
	t.Helper()
	r, err := bundle.Open(path, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Verify(t.Context(), nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify %s: %v %+v", path, err, rep)
	}
	return r.Index()
}

// progressLog is a mirror.Progress that keeps what it was told.
type progressLog struct {
	mu           sync.Mutex
	total, bytes int64
	items, done  int
	finished     bool
}

func (p *progressLog) Phase(_ string, total int64, items int) mirror.PhaseProgress {
	p.total, p.items = total, items
	return p
}
func (p *progressLog) End() { p.finished = true }
func (p *progressLog) Item(string, int64) mirror.ItemProgress {
	return &progressLine{log: p}
}

type progressLine struct {
	log   *progressLog
	moved int64
}

func (l *progressLine) Add(n int) { l.moved += int64(n) }
func (l *progressLine) Reset()    { l.moved = 0 }
func (l *progressLine) Done(err error) {
	l.log.mu.Lock()
	defer l.log.mu.Unlock()
	if err == nil {
		l.log.bytes += l.moved
		l.log.done++
	}
}

// TestWriteSignedBundle packs a signed release with a signing key and a
// carried program: the bundle verifies byte for byte, the trust check
// proves the release chain and the bundle signature, every blob of the
// release is carried once, and the progress adds up to the blobs.
func TestWriteSignedBundle(t *testing.T) {
	src := newSource(t, testbed.ReleaseOptions{Components: 3, Sigstore: true})
	plan := src.plan(t)
	releaseKey, packerKey := testbed.NewKey(t, "release"), testbed.NewKey(t, "packer")
	releaseKeyring, err := signature.ParseKeyring("release", releaseKey.PublicArmored(t))
	if err != nil {
		t.Fatal(err)
	}
	bundleKeyring, err := signature.ParseKeyring("packer", packerKey.PublicArmored(t))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.ParseSigningKey("packer", packerKey.PrivateArmored(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(t.TempDir(), "ferry")
	if err := os.WriteFile(self, []byte("the packer's own program"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar")
	prog := &progressLog{}
	res, err := pack.Write(t.Context(), plan, pack.Options{
		Output:     out,
		VolumeSize: bundle.MinVolumeSize,
		Retry:      testRetry,
		Signatures: signatures(t, releaseKey, src.rel, releaseKeyring),
		SigningKey: signer,
		Self:       self,
		UpdatePath: []string{src.rel.Version},
		Tool:       bundle.Tool{Name: "ferry", Version: "test"},
		Record:     json.RawMessage(`{"by":"TestWriteSignedBundle"}`),
		Progress:   prog,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != len(src.rel.Blobs) || res.Bytes != src.rel.Bytes || res.Prerequisites != 0 {
		t.Errorf("result = %+v, want %d blobs of %d bytes", res, len(src.rel.Blobs), src.rel.Bytes)
	}
	if prog.total != src.rel.Bytes || prog.items != len(src.rel.Blobs) || prog.bytes != src.rel.Bytes || prog.done != prog.items || !prog.finished {
		t.Errorf("progress = %+v, want %d items of %d bytes, all done", prog, len(src.rel.Blobs), src.rel.Bytes)
	}
	for d, n := range src.blobGETs() {
		if n != 1 {
			t.Errorf("blob %s fetched %d times", d, n)
		}
	}

	idx := verify(t, out)
	if len(idx.Releases) != 1 || idx.Releases[0].Digest != src.rel.Digest || idx.Releases[0].Unsigned || idx.Tool.Version != "test" {
		t.Errorf("index releases %+v, tool %+v", idx.Releases, idx.Tool)
	}
	var record map[string]string
	if err := json.Unmarshal(idx.Options, &record); err != nil || record["by"] != "TestWriteSignedBundle" {
		t.Errorf("index options = %s (%v), want the caller's record", idx.Options, err)
	}
	files := map[string]int{}
	for _, f := range idx.Files {
		files[f.Name]++
	}
	for d := range src.rel.Blobs {
		if files[bundle.BlobName(d)] != 1 {
			t.Errorf("blob %s is in the bundle %d times", d, files[bundle.BlobName(d)])
		}
	}

	r, err := bundle.Open(out, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	proof := trust.Check(t.Context(), r, trust.Options{Keyring: releaseKeyring, BundleKeyring: bundleKeyring})
	if !proof.OK() || proof.BundleSigner == nil || len(proof.Unverified) != 0 {
		t.Errorf("trust check: faults %v, signer %v, unverified %v", proof.Faults, proof.BundleSigner, proof.Unverified)
	}
}

// TestWriteCache: a pack with a cache leaves every blob there, verified;
// the next pack fetches none of them; a corrupt entry is fetched again,
// with a warning, and replaced.
func TestWriteCache(t *testing.T) {
	src := newSource(t, testbed.ReleaseOptions{Components: 2})
	plan := src.plan(t)
	cache, dir := t.TempDir(), t.TempDir()
	var logged bytes.Buffer
	opts := pack.Options{Retry: testRetry, CacheDir: cache, Log: slog.New(slog.NewTextHandler(&logged, nil))}
	write := func(name string) {
		t.Helper()
		opts.Output = filepath.Join(dir, name)
		if _, err := pack.Write(t.Context(), plan, opts); err != nil {
			t.Fatal(err)
		}
		verify(t, opts.Output)
	}

	write("first.tar")
	if got := len(src.blobGETs()); got != len(src.rel.Blobs) {
		t.Errorf("the first pack fetched %d blobs, want %d", got, len(src.rel.Blobs))
	}
	for d := range src.rel.Blobs {
		data, err := os.ReadFile(filepath.Join(cache, "sha256", d.Encoded()))
		if sum := sha256.Sum256(data); err != nil || "sha256:"+hex.EncodeToString(sum[:]) != d.String() {
			t.Errorf("cache entry of %s: %v, content %x", d, err, sum)
		}
	}

	write("second.tar")
	if got := src.blobGETs(); len(got) != 0 {
		t.Errorf("the second pack fetched %v: the cache was not used", got)
	}

	victim := plan.Blobs[len(plan.Blobs)-1].Digest
	entry := filepath.Join(cache, "sha256", victim.Encoded())
	good, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entry, bytes.Repeat([]byte{'x'}, len(good)), 0o644); err != nil {
		t.Fatal(err)
	}
	write("third.tar")
	if got := src.blobGETs(); len(got) != 1 || got[victim] != 1 {
		t.Errorf("over a corrupt entry of %s the pack fetched %v, want that blob alone", victim, got)
	}
	if again, err := os.ReadFile(entry); err != nil || !bytes.Equal(again, good) {
		t.Errorf("the corrupt cache entry was not replaced (%v)", err)
	}
	if !strings.Contains(logged.String(), "cached blob is corrupt") || !strings.Contains(logged.String(), victim.String()) {
		t.Errorf("no warning naming %s: %q", victim, logged.String())
	}
}

// TestWriteRefusesTamperedBlob: a registry serving other bytes for a blob,
// of the declared length, fails the pack with a digest mismatch naming the
// blob, and leaves nothing behind: no bundle, no partial volume.
func TestWriteRefusesTamperedBlob(t *testing.T) {
	src := newSource(t, testbed.ReleaseOptions{Components: 2})
	plan := src.plan(t)
	victim := plan.Blobs[0].Digest
	src.mu.Lock()
	src.tamper = victim
	src.mu.Unlock()
	dir := t.TempDir()
	_, err := pack.Write(t.Context(), plan, pack.Options{Output: filepath.Join(dir, "bundle.tar"), Retry: testRetry})
	if !errors.Is(err, bundle.ErrDigestMismatch) || !strings.Contains(err.Error(), victim.String()) {
		t.Fatalf("error = %v, want a digest mismatch naming %s", err, victim)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") { // the lock file is hidden and stays
			t.Errorf("a failed pack left %s behind", e.Name())
		}
	}
}

// TestWriteRefusesExistingBundle: an existing bundle is replaced only with
// Force; without it the error is an *ExistsError, and the bundle intact.
func TestWriteRefusesExistingBundle(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bundle.tar")
	opts := pack.Options{Output: out, Record: json.RawMessage(`{"run":1}`)}
	if _, err := pack.Write(t.Context(), &mirror.Plan{}, opts); err != nil {
		t.Fatal(err)
	}
	opts.Record = json.RawMessage(`{"run":2}`)
	_, err := pack.Write(t.Context(), &mirror.Plan{}, opts)
	var exists *pack.ExistsError
	if !errors.As(err, &exists) || !errors.Is(err, fs.ErrExist) || strings.Contains(err.Error(), "--force") {
		t.Fatalf("second write without Force: %v, want an *ExistsError that names no flag", err)
	}
	if idx := verify(t, out); !bytes.Contains(idx.Options, []byte("1")) {
		t.Errorf("the refused write changed the bundle: options %s", idx.Options)
	}
	opts.Force = true
	if _, err := pack.Write(t.Context(), &mirror.Plan{}, opts); err != nil {
		t.Fatal(err)
	}
	if idx := verify(t, out); !bytes.Contains(idx.Options, []byte("2")) {
		t.Errorf("Force did not replace the bundle: options %s", idx.Options)
	}
}

// TestWriteLeavesOutPrerequisites: the blobs LeaveOut leaves out are
// listed in the index as prerequisites and not fetched; the rest are
// carried and the bundle verifies.
func TestWriteLeavesOutPrerequisites(t *testing.T) {
	src := newSource(t, testbed.ReleaseOptions{Components: 2})
	plan := src.plan(t)
	inv := inventoryOf(plan.Blobs, nil)
	carry, prereqs, mismatches := pack.LeaveOut(plan, inv)
	if len(prereqs) == 0 || len(carry) == 0 || len(mismatches) != 0 {
		t.Fatalf("LeaveOut over an inventory of every blob: %d carried, %d left out, %v", len(carry), len(prereqs), mismatches)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar")
	res, err := pack.Write(t.Context(), plan, pack.Options{Output: out, Retry: testRetry, Prerequisites: prereqs})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != len(carry) || res.Prerequisites != len(prereqs) || res.PrerequisiteBytes != pack.PrerequisiteBytes(prereqs) {
		t.Errorf("result = %+v, want %d carried and %d left out", res, len(carry), len(prereqs))
	}
	fetched := src.blobGETs()
	for _, p := range prereqs {
		if fetched[p.Digest] != 0 {
			t.Errorf("prerequisite %s was fetched", p.Digest)
		}
	}
	idx := verify(t, out)
	if len(idx.Prerequisites) != len(prereqs) {
		t.Errorf("index lists %d prerequisites, want %d", len(idx.Prerequisites), len(prereqs))
	}
}
