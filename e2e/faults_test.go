package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

// This file proves ferry's promise on a bad network: through a fault
// proxy (testbed.FaultProxy) that answers 5xx, cuts connections in the
// middle of a blob, answers 429 with Retry-After, answers late and revokes
// bearer tokens, pack and apply finish with exactly what a fault-free run
// gives; with faults that never stop they give up after bounded retries,
// with a clear message, leaving no partial bundle and no tag behind. It also
// holds the helpers the other hardening tests share.

// Exit codes of the binary, as the README documents them.
const (
	codeOK           = 0
	codeFailure      = 1
	codeUsage        = 2
	codeVerification = 3
)

// retryAttempts is ferry's number of tries of one registry operation, as
// its messages report it.
const retryAttempts = registry.DefaultRetryAttempts

// smallRelease is big enough to have many requests and blobs to break,
// small enough for dozens of runs: 6 components of 2 layers of 32 KiB, with
// cosign signatures (about 65 registry requests and 530 KB per pack).
var smallRelease = testbed.ReleaseOptions{Components: 6, LayerSize: 32 << 10, Sigstore: true}

// faultBed is the connected side of the journey with a fault proxy on every
// wire: a release in an in-process registry, built through its proxy (so
// image-references names the proxy and every byte ferry reads passes it), a
// signature store behind a proxy of its own, and the key that signs.
type faultBed struct {
	reg        *testbed.Registry
	proxy      *testbed.FaultProxy // in front of reg
	rel        *testbed.Release
	store      *testbed.SignatureStore
	storeProxy *testbed.FaultProxy // in front of store
	storeURL   string              // the store, through storeProxy
	keyFile    string
	dir        string
}

func newFaultBed(t *testing.T, opts testbed.ReleaseOptions) *faultBed {
	t.Helper()
	b := &faultBed{dir: t.TempDir()}
	b.reg = testbed.NewMemoryRegistry(t)
	b.proxy = testbed.NewFaultProxy(t, b.reg.URL)
	b.rel = testbed.BuildRelease(t, b.proxy.Host, opts)
	key := testbed.NewKey(t, "release")
	b.store = testbed.NewSignatureStore(t)
	b.store.SignRelease(t, key, b.rel)
	b.storeProxy = testbed.NewFaultProxy(t, strings.TrimSuffix(b.store.URL, testbed.SignatureStorePath))
	b.storeURL = b.storeProxy.URL + testbed.SignatureStorePath
	b.keyFile = filepath.Join(b.dir, "release-key.asc")
	if err := os.WriteFile(b.keyFile, key.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	b.proxy.ResetStats()
	return b
}

// packArgs packs the release by digest into out, quietly.
func (b *faultBed) packArgs(out string, extra ...string) []string {
	return append([]string{"pack", b.rel.DigestSpec(), "-o", out, "--src-tls-verify=false",
		"--keyring", b.keyFile, "--signature-store", b.storeURL, "--quiet"}, extra...)
}

// pack packs the release without faults and returns the bundle's path.
func (b *faultBed) pack(t *testing.T, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bundle.tar")
	mustFerry(t, b.packArgs(out, extra...)...)
	return out
}

// applyArgs applies bundlePath into host/ocp4/openshift4 without a cluster,
// rendering the manifests into a test directory.
func applyArgs(t *testing.T, bundlePath, keyFile, host string, extra ...string) []string {
	return append([]string{"apply", bundlePath, "--to", host + "/" + targetRepo, "--dest-tls-verify=false",
		"--keyring", keyFile, "--no-cluster", "--output-dir", filepath.Join(t.TempDir(), "manifests"), "--quiet"}, extra...)
}

// ferryIn runs the binary with dir as its working directory, so that a
// default output path (bundle.tar, mirror/, ferry-manifests/) can only land
// in a test directory, never in the source tree.
func ferryIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(t.Context(), ferryBin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errOut
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run ferry: %v", err)
	}
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// ferryRun is ferryIn in a fresh test directory.
func ferryRun(t *testing.T, args ...string) result {
	t.Helper()
	return ferryIn(t, t.TempDir(), args...)
}

// bgFerry is a ferry process running in the background. The fault tests
// spend most of their time in ferry's retry backoff; started together,
// their waits overlap, whatever go test's -parallel allows.
type bgFerry struct {
	out, errOut bytes.Buffer
	done        chan struct{}
	err         error
}

// startFerry starts ferry with args in dir; wait collects the result. The
// process is killed if the test ends first.
func startFerry(t *testing.T, dir string, args ...string) *bgFerry {
	t.Helper()
	f := &bgFerry{done: make(chan struct{})}
	cmd := exec.CommandContext(t.Context(), ferryBin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &f.out, &f.errOut
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ferry: %v", err)
	}
	go func() {
		f.err = cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(func() { <-f.done })
	return f
}

func (f *bgFerry) wait(t *testing.T) result {
	t.Helper()
	<-f.done
	res := result{stdout: f.out.String(), stderr: f.errOut.String()}
	if exit, ok := f.err.(*exec.ExitError); ok {
		res.code = exit.ExitCode()
	} else if f.err != nil {
		t.Fatalf("run ferry: %v", f.err)
	}
	return res
}

// mustFerry runs a command that must succeed and returns its stdout.
func mustFerry(t *testing.T, args ...string) string {
	t.Helper()
	res := ferryRun(t, args...)
	if res.code != codeOK {
		t.Fatalf("ferry %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// wantExit fails unless res has the exit code and its output (stdout and
// stderr) every one of wants.
func wantExit(t *testing.T, what string, res result, code int, wants ...string) {
	t.Helper()
	out := res.stdout + res.stderr
	if res.code != code {
		t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, res.code, code, res.stdout, lastLines(res.stderr, 20))
		return
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: the output does not say %q\nstdout:\n%s\nstderr:\n%s", what, w, res.stdout, lastLines(res.stderr, 20))
		}
	}
}

// bundleContent is what a bundle carries, independent of its id, creation
// time, volume layout and the order in which images were discovered: every
// file's sha256 by name (volume markers left out; the OCI layout's
// index.json as its sorted entries), and the index's releases and images,
// sorted.
type bundleContent struct {
	Files    map[string]string
	Layout   []string
	Releases []bundle.Release
	Images   []bundle.Image
}

func readBundleContent(t *testing.T, path string, volumes ...string) bundleContent {
	t.Helper()
	r, err := bundle.Open(path, bundle.ReadOptions{Volumes: volumes})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer r.Close()
	idx := r.Index()
	c := bundleContent{Files: map[string]string{}, Releases: idx.Releases, Images: slices.Clone(idx.Images)}
	for _, f := range idx.Files {
		if f.Name != bundle.VolumeMarkerName && f.Name != bundle.LayoutIndexName {
			c.Files[f.Name] = f.SHA256
		}
	}
	slices.SortFunc(c.Images, func(a, b bundle.Image) int {
		return strings.Compare(a.Source+"@"+a.Digest.String(), b.Source+"@"+b.Digest.String())
	})
	for i := range c.Images {
		c.Images[i].Tags = slices.Sorted(slices.Values(c.Images[i].Tags))
	}
	sr, err := r.Open(bundle.LayoutIndexName)
	if err != nil {
		t.Fatal(err)
	}
	var layout ocispec.Index
	if err := json.NewDecoder(sr).Decode(&layout); err != nil {
		t.Fatalf("%s: %v", bundle.LayoutIndexName, err)
	}
	for _, m := range layout.Manifests {
		c.Layout = append(c.Layout, fmt.Sprintf("%s %s %d %s", m.Annotations[ocispec.AnnotationRefName], m.Digest, m.Size, m.MediaType))
	}
	slices.Sort(c.Layout)
	return c
}

// assertSameContent fails unless two bundles carry the same bytes.
func assertSameContent(t *testing.T, got, want bundleContent) {
	t.Helper()
	for name, sum := range want.Files {
		if got.Files[name] != sum {
			t.Errorf("%s: sha256 %q, the fault-free bundle has %s", name, got.Files[name], sum)
		}
	}
	for name := range got.Files {
		if _, ok := want.Files[name]; !ok {
			t.Errorf("%s: not in the fault-free bundle", name)
		}
	}
	if !slices.Equal(got.Layout, want.Layout) {
		t.Errorf("%s lists other images than the fault-free bundle's:\n%q\n%q", bundle.LayoutIndexName, got.Layout, want.Layout)
	}
	g, _ := json.Marshal([]any{got.Releases, got.Images})
	w, _ := json.Marshal([]any{want.Releases, want.Images})
	if string(g) != string(w) {
		t.Errorf("the index's releases and images differ from the fault-free bundle's:\n%s\n%s", g, w)
	}
}

// targetState is what a repository serves: every tag with the digest of
// the manifest it names.
func targetState(t *testing.T, reg *testbed.Registry, repo string) map[string]digest.Digest {
	t.Helper()
	ctx := context.Background()
	state := map[string]digest.Digest{}
	repos, err := reg.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(repos, repo) {
		return state
	}
	tags, err := reg.Tags(ctx, repo)
	if errors.Is(err, testbed.ErrNotFound) {
		return state // blobs or manifests, but no tag yet
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		desc, err := reg.HeadManifest(ctx, repo, tag)
		if err != nil {
			t.Fatalf("tag %s: %v", tag, err)
		}
		state[tag] = desc.Digest
	}
	return state
}

// assertSameTarget fails unless the repository serves exactly want's tags,
// each naming the same digest, and every tag's image is complete.
func assertSameTarget(t *testing.T, reg *testbed.Registry, want map[string]digest.Digest) {
	t.Helper()
	got := targetState(t, reg, targetRepo)
	if !maps.Equal(got, want) {
		for tag, d := range want {
			if got[tag] != d {
				t.Errorf("tag %s: %q, the fault-free target has %s", tag, got[tag], d)
			}
		}
		for tag := range got {
			if _, ok := want[tag]; !ok {
				t.Errorf("tag %s: not in the fault-free target", tag)
			}
		}
	}
	assertTagsComplete(t, reg, targetRepo)
}

// assertTagsComplete fails for any tag naming a manifest whose blobs or
// child manifests the repository does not hold: what an interrupted or
// failed apply must never leave.
func assertTagsComplete(t *testing.T, reg *testbed.Registry, repo string) {
	t.Helper()
	ctx := context.Background()
	var check func(ref string, depth int) error
	check = func(ref string, depth int) error {
		data, mediaType, err := reg.GetManifest(ctx, repo, ref)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", ref, err)
		}
		var m struct {
			Config    *ocispec.Descriptor  `json:"config"`
			Layers    []ocispec.Descriptor `json:"layers"`
			Manifests []ocispec.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("manifest %s (%s): %w", ref, mediaType, err)
		}
		for _, child := range m.Manifests {
			if depth > 0 {
				return fmt.Errorf("manifest %s nests lists", ref)
			}
			if err := check(child.Digest.String(), depth+1); err != nil {
				return fmt.Errorf("child of %s: %w", ref, err)
			}
		}
		blobs := m.Layers
		if m.Config != nil {
			blobs = append(blobs, *m.Config)
		}
		for _, b := range blobs {
			ok, err := reg.BlobExists(ctx, repo, b.Digest)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("manifest %s references blob %s, which is missing", ref, b.Digest)
			}
		}
		return nil
	}
	for tag := range targetState(t, reg, repo) {
		if err := check(tag, 0); err != nil {
			t.Errorf("tag %s names an incomplete image: %v", tag, err)
		}
	}
}

// bundleFiles lists the files in dir that belong to the bundle base: its
// volumes and their .partial files.
func bundleFiles(t *testing.T, dir, base string) []string {
	t.Helper()
	stem := strings.TrimSuffix(base, ".tar")
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stem) {
			names = append(names, e.Name())
		}
	}
	return names
}

// assertNoBundle fails if dir holds any file of the bundle base.
func assertNoBundle(t *testing.T, dir, base string) {
	t.Helper()
	if left := bundleFiles(t, dir, base); len(left) > 0 {
		t.Errorf("left behind in %s: %v", dir, left)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeAuthFile(t *testing.T, host, user, password string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(p, testbed.AuthFile(host, user, password), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// isBlobGet matches the requests that read a config or a layer.
func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// componentLayer is the top layer of the first component: a blob that only
// the blob phase of pack reads, and only the blob phase of apply pushes.
func componentLayer(t *testing.T, rel *testbed.Release) digest.Digest {
	t.Helper()
	img, ok := rel.Image(rel.Components[0].Digest)
	if !ok {
		t.Fatal("no image for the first component")
	}
	var m struct{ Layers []ocispec.Descriptor }
	if err := json.Unmarshal(img.Manifest, &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("component manifest: %v", err)
	}
	return m.Layers[len(m.Layers)-1].Digest
}

// faultCase is one fault scenario: a schedule for the registry's proxy,
// optionally token authentication, a schedule for the signature store's
// proxy, and what must have happened for the run to have tested anything.
type faultCase struct {
	name   string
	faults testbed.Faults
	auth   *testbed.TokenAuth
	store  testbed.Faults
	// injected checks the registry proxy's counters after the run.
	injected func(s testbed.ProxyStats) bool
}

const (
	faultUser     = "ferry-test"
	faultPassword = "fault-password"
)

// tokenRevoked: tokens declare 5 minutes but die after uses requests, as
// with a registry whose clock runs ahead or which revokes them.
func tokenRevoked(uses int) *testbed.TokenAuth {
	return &testbed.TokenAuth{Username: faultUser, Password: faultPassword, Uses: uses}
}

// tokenLapsed: tokens are issued already past their declared lifetime and
// good for one request, so a client that does not fetch a new one when its
// token expires is refused.
func tokenLapsed() *testbed.TokenAuth {
	return &testbed.TokenAuth{Username: faultUser, Password: faultPassword, Uses: 1, IssuedAt: time.Now().Add(-time.Hour)}
}

func expired(s testbed.ProxyStats) bool { return s.Expired > 0 }

// TestFaultsPack packs the same release through each kind of fault and
// compares every bundle with a fault-free one, file by file.
func TestFaultsPack(t *testing.T) {
	t.Parallel()
	cases := []faultCase{
		{name: "5xx on a share of requests", faults: testbed.Faults{Seed: 11, Errors: 0.3, ErrorStatus: http.StatusInternalServerError, Times: 1},
			injected: func(s testbed.ProxyStats) bool { return s.Errors > 0 }},
		{name: "connections reset in the middle of a blob", faults: testbed.Faults{Seed: 12, Resets: 0.5, Times: 1, Match: isBlobGet},
			injected: func(s testbed.ProxyStats) bool { return s.Resets > 0 }},
		{name: "429 with Retry-After", faults: testbed.Faults{Seed: 13, TooMany: 0.3, RetryAfter: "1", Times: 1},
			injected: func(s testbed.ProxyStats) bool { return s.TooMany > 0 }},
		{name: "slow responses", faults: testbed.Faults{Seed: 14, Slow: 0.5, SlowDelay: 5 * time.Millisecond},
			injected: func(s testbed.ProxyStats) bool { return s.Slow > 0 }},
		{name: "token revoked mid-run", auth: tokenRevoked(8), injected: expired},
		{name: "token lifetime ends mid-run", auth: tokenLapsed(),
			injected: func(s testbed.ProxyStats) bool { return s.TokensIssued > 20 }},
		{name: "signature store 5xx and 429", store: testbed.Faults{Seed: 15, Errors: 0.5, TooMany: 0.5, RetryAfter: "1", Times: 1}},
		{name: "everything at once", auth: tokenRevoked(8),
			faults: testbed.Faults{Seed: 16, Errors: 0.1, Resets: 0.1, TooMany: 0.1, Slow: 0.2, SlowDelay: 2 * time.Millisecond, Times: 1},
			store:  testbed.Faults{Errors: 1, Times: 1},
			injected: func(s testbed.ProxyStats) bool {
				return s.Errors > 0 && s.Resets > 0 && s.TooMany > 0 && s.Slow > 0 && s.Expired > 0
			}},
	}
	// Every case has a bed of its own (a proxy's schedule is per bed); the
	// faulty packs run in the background while the next beds are built.
	type packRun struct {
		b    *faultBed
		want bundleContent
		out  string
		run  *bgFerry
	}
	runs := make([]packRun, len(cases))
	for i, tc := range cases {
		b := newFaultBed(t, smallRelease)
		want := readBundleContent(t, b.pack(t))
		b.proxy.SetFaults(tc.faults)
		b.proxy.SetAuth(tc.auth)
		b.storeProxy.SetFaults(tc.store)
		b.proxy.ResetStats()
		b.storeProxy.ResetStats()
		out := filepath.Join(t.TempDir(), "bundle.tar")
		args := b.packArgs(out)
		if tc.auth != nil {
			args = append(args, "--authfile", writeAuthFile(t, b.proxy.Host, faultUser, faultPassword))
		}
		runs[i] = packRun{b: b, want: want, out: out, run: startFerry(t, t.TempDir(), args...)}
	}
	for i, tc := range cases {
		b, want, out := runs[i].b, runs[i].want, runs[i].out
		t.Run(tc.name, func(t *testing.T) {
			res := runs[i].run.wait(t)
			wantExit(t, "pack", res, codeOK)
			if res.code != codeOK {
				return
			}
			assertSameContent(t, readBundleContent(t, out), want)
			wantExit(t, "verify", ferryRun(t, "verify", out, "--keyring", b.keyFile, "--quiet"), codeOK)
			if s := b.proxy.Stats(); tc.injected != nil && !tc.injected(s) {
				t.Errorf("the faults were not injected as planned: %+v", s)
			}
			if s := b.storeProxy.Stats(); tc.store.Errors+tc.store.TooMany > 0 && s.Errors+s.TooMany == 0 {
				t.Errorf("the signature store's faults were not injected: %+v", s)
			}
		})
	}
}

// TestFaultsApply pushes one bundle through each kind of fault and compares
// every target with a fault-free one, tag by tag.
func TestFaultsApply(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	bundlePath := b.pack(t)
	clean := testbed.NewMemoryRegistry(t)
	mustFerry(t, applyArgs(t, bundlePath, b.keyFile, clean.Host)...)
	want := targetState(t, clean, targetRepo)
	if len(want) < len(b.rel.Components)+1 {
		t.Fatalf("the fault-free apply left %d tags", len(want))
	}
	cases := []faultCase{
		{name: "5xx on a share of requests", faults: testbed.Faults{Seed: 21, Errors: 0.15, ErrorStatus: http.StatusBadGateway, Times: 1},
			injected: func(s testbed.ProxyStats) bool { return s.Errors > 0 }},
		{name: "connections reset in the middle of uploads", faults: testbed.Faults{Seed: 22, Resets: 0.25, Times: 1},
			injected: func(s testbed.ProxyStats) bool { return s.Resets > 0 }},
		{name: "429 with Retry-After", faults: testbed.Faults{Seed: 23, TooMany: 0.2, RetryAfter: "1", Times: 1},
			injected: func(s testbed.ProxyStats) bool { return s.TooMany > 0 }},
		{name: "slow responses", faults: testbed.Faults{Seed: 24, Slow: 0.5, SlowDelay: 5 * time.Millisecond},
			injected: func(s testbed.ProxyStats) bool { return s.Slow > 0 }},
		{name: "token revoked mid-run", auth: tokenRevoked(50), injected: expired},
		{name: "token lifetime ends mid-run", auth: tokenLapsed(),
			injected: func(s testbed.ProxyStats) bool { return s.TokensIssued > 50 }},
		// Each transient failure gives the pusher a new client, and so a
		// new token: whether one lives to its 60th use is chance here;
		// expiry alone is the case above.
		{name: "everything at once", auth: tokenRevoked(60),
			faults: testbed.Faults{Seed: 26, Errors: 0.05, Resets: 0.05, TooMany: 0.05, Slow: 0.2, SlowDelay: 2 * time.Millisecond, Times: 1},
			injected: func(s testbed.ProxyStats) bool {
				return s.Errors > 0 && s.Resets > 0 && s.TooMany > 0 && s.Slow > 0 && s.TokensIssued > 1
			}},
	}
	type applyRun struct {
		target *testbed.Registry
		proxy  *testbed.FaultProxy
		run    *bgFerry
	}
	runs := make([]applyRun, len(cases))
	for i, tc := range cases {
		target := testbed.NewMemoryRegistry(t)
		p := testbed.NewFaultProxy(t, target.URL)
		p.SetFaults(tc.faults)
		p.SetAuth(tc.auth)
		args := applyArgs(t, bundlePath, b.keyFile, p.Host)
		if tc.auth != nil {
			args = append(args, "--authfile", writeAuthFile(t, p.Host, faultUser, faultPassword))
		}
		runs[i] = applyRun{target: target, proxy: p, run: startFerry(t, t.TempDir(), args...)}
	}
	for i, tc := range cases {
		target, p := runs[i].target, runs[i].proxy
		t.Run(tc.name, func(t *testing.T) {
			wantExit(t, "apply", runs[i].run.wait(t), codeOK)
			assertSameTarget(t, target, want)
			if s := p.Stats(); !tc.injected(s) {
				t.Errorf("the faults were not injected as planned: %+v", s)
			}
		})
	}
}

// TestFaultsNeverStop: with faults that never stop, pack and apply give up
// after a bounded number of tries, say what failed, and leave no partial
// bundle (pack) and no tag (apply) behind.
func TestFaultsNeverStop(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	bundlePath := b.pack(t)
	layer := componentLayer(t, b.rel)
	attempts := fmt.Sprintf("after %d attempts", retryAttempts)
	onLayer := func(layer digest.Digest) func(*http.Request) bool {
		return func(r *http.Request) bool { return strings.Contains(r.URL.Path, layer.String()) }
	}

	packCases := []struct {
		name string
		// faults for the registry and the signature store, and the
		// output the failure must have, for a bed and its layer.
		faults, store func(layer digest.Digest) testbed.Faults
		wants         func(bed *faultBed, layer digest.Digest) []string
		extra         []string
		// bound checks the registry proxy's counters: the tries are bounded.
		bound func(s testbed.ProxyStats) bool
	}{
		{name: "registry answers 503 to everything",
			faults: func(digest.Digest) testbed.Faults { return testbed.Faults{Errors: 1} },
			wants: func(bed *faultBed, _ digest.Digest) []string {
				return []string{"503 Service Unavailable", attempts, bed.rel.Digest.String()}
			},
			bound: func(s testbed.ProxyStats) bool { return s.Errors == retryAttempts }},
		{name: "one layer is never served",
			faults: func(l digest.Digest) testbed.Faults { return testbed.Faults{Errors: 1, Match: onLayer(l)} },
			wants: func(_ *faultBed, l digest.Digest) []string {
				return []string{"503 Service Unavailable", attempts, l.String()}
			},
			extra: []string{"--volume-size", "128KiB"},
			bound: func(s testbed.ProxyStats) bool { return s.Errors == retryAttempts && s.BlobBytes > 0 }},
		{name: "one layer is always cut short",
			faults: func(l digest.Digest) testbed.Faults { return testbed.Faults{Resets: 1, Match: onLayer(l)} },
			wants: func(_ *faultBed, l digest.Digest) []string {
				return []string{"connection reset", attempts, l.String()}
			},
			// containers/image reconnects once per try on its own
			bound: func(s testbed.ProxyStats) bool { return s.Resets > 0 && s.Resets <= 2*retryAttempts }},
		{name: "signature store answers 503 to everything",
			store: func(digest.Digest) testbed.Faults { return testbed.Faults{Errors: 1} },
			wants: func(bed *faultBed, _ digest.Digest) []string {
				return []string{"503 Service Unavailable", "no signature store served", bed.storeURL}
			},
			bound: func(s testbed.ProxyStats) bool { return s.BlobBytes == 0 }},
	}
	applyCases := []struct {
		name   string
		faults testbed.Faults
		wants  []string
		bound  func(s testbed.ProxyStats) bool
	}{
		{"registry answers 503 to everything", testbed.Faults{Errors: 1},
			[]string{"503 Service Unavailable", attempts},
			// every worker that started tries its blob retryAttempts times
			func(s testbed.ProxyStats) bool { return s.Errors <= registry.DefaultParallel*retryAttempts }},
		{"every manifest is refused", testbed.Faults{Errors: 1, Match: func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
		}}, []string{"503 Service Unavailable", attempts, "pushing manifest"},
			// manifests are pushed --parallel at once: each worker that
			// started tries its manifest at most retryAttempts times
			func(s testbed.ProxyStats) bool {
				return s.Errors >= retryAttempts && s.Errors <= registry.DefaultParallel*retryAttempts
			}},
		{"one layer's upload is always cut", testbed.Faults{Resets: 1, Match: func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.RawQuery, layer.Encoded())
		}}, []string{"connection reset", attempts, layer.String()},
			func(s testbed.ProxyStats) bool { return s.Resets == retryAttempts }},
	}

	// Every run starts before any is waited for: their backoffs overlap.
	// Each pack case has a bed of its own (a proxy's schedule is per bed).
	type packRun struct {
		bed   *faultBed
		layer digest.Digest
		dir   string
		run   *bgFerry
	}
	packRuns := make([]packRun, len(packCases))
	for i, tc := range packCases {
		bed := newFaultBed(t, smallRelease)
		layer := componentLayer(t, bed.rel)
		if tc.faults != nil {
			bed.proxy.SetFaults(tc.faults(layer))
		}
		if tc.store != nil {
			bed.storeProxy.SetFaults(tc.store(layer))
		}
		dir := t.TempDir()
		packRuns[i] = packRun{bed, layer, dir, startFerry(t, dir, bed.packArgs(filepath.Join(dir, "bundle.tar"), tc.extra...)...)}
	}
	type applyRun struct {
		target *testbed.Registry
		proxy  *testbed.FaultProxy
		run    *bgFerry
	}
	applyRuns := make([]applyRun, len(applyCases))
	for i, tc := range applyCases {
		target := testbed.NewMemoryRegistry(t)
		p := testbed.NewFaultProxy(t, target.URL)
		p.SetFaults(tc.faults)
		applyRuns[i] = applyRun{target, p, startFerry(t, t.TempDir(), applyArgs(t, bundlePath, b.keyFile, p.Host)...)}
	}

	for i, tc := range packCases {
		bed, layer, dir := packRuns[i].bed, packRuns[i].layer, packRuns[i].dir
		t.Run("pack/"+tc.name, func(t *testing.T) {
			wantExit(t, "pack", packRuns[i].run.wait(t), codeFailure, tc.wants(bed, layer)...)
			assertNoBundle(t, dir, "bundle.tar")
			if s := bed.proxy.Stats(); !tc.bound(s) {
				t.Errorf("tries not bounded as expected: %+v", s)
			}
		})
	}
	for i, tc := range applyCases {
		target, p := applyRuns[i].target, applyRuns[i].proxy
		t.Run("apply/"+tc.name, func(t *testing.T) {
			wantExit(t, "apply", applyRuns[i].run.wait(t), codeFailure, tc.wants...)
			if tags := targetState(t, target, targetRepo); len(tags) > 0 {
				t.Errorf("a failed apply left tags: %v", slices.Sorted(maps.Keys(tags)))
			}
			if s := p.Stats(); !tc.bound(s) {
				t.Errorf("tries not bounded as expected: %+v", s)
			}
			// Once the registry recovers, a rerun completes.
			p.SetFaults(testbed.Faults{})
			mustFerry(t, applyArgs(t, bundlePath, b.keyFile, p.Host)...)
			assertTagsComplete(t, target, targetRepo)
			if tags := targetState(t, target, targetRepo); len(tags) < len(b.rel.Components)+1 {
				t.Errorf("the rerun left %d tags", len(tags))
			}
		})
	}
}

// TestFaultFreePackReproducible: two fault-free packs of one release carry the same
// bytes, file for file, the OCI layout's index.json included.
func TestFaultFreePackReproducible(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	type packed struct {
		files map[string]string
		order []string // the index's images
	}
	read := func(path string) packed {
		r, err := bundle.Open(path, bundle.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		p := packed{files: map[string]string{}}
		for _, f := range r.Index().Files {
			if f.Name != bundle.VolumeMarkerName {
				p.files[f.Name] = f.SHA256
			}
		}
		for _, img := range r.Index().Images {
			p.order = append(p.order, img.Source+"@"+img.Digest.String())
		}
		return p
	}
	var packs []packed
	for range 4 {
		packs = append(packs, read(b.pack(t)))
	}
	for i, p := range packs[1:] {
		for name, sum := range packs[0].files {
			if p.files[name] != sum {
				t.Errorf("pack %d: %s differs from the first pack's", i+2, name)
			}
		}
		if len(p.files) != len(packs[0].files) {
			t.Errorf("pack %d has %d files, the first %d", i+2, len(p.files), len(packs[0].files))
		}
	}
	t.Run("image order", func(t *testing.T) {
		for i, p := range packs[1:] {
			if !slices.Equal(p.order, packs[0].order) {
				t.Errorf("pack %d lists the images in another order than the first", i+2)
			}
		}
	})
}
