package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// This file counts what ferry costs a registry, by a counting proxy in
// front of it (testbed.CountingProxy): TCP connections, and requests by
// method and path. Counts, not times: a client that opens a connection per
// blob, or sends more requests per upload than it needs, fails here
// whatever the machine's speed.

// connRelease has many small blobs, so that a client opening a connection
// per blob stands out against one that keeps its pool: 40 components of 2
// layers of 8 KiB, their configs and the shared base layers (about 170
// blobs with the cosign signatures), signed so that pack reads signature
// tags too.
var connRelease = testbed.ReleaseOptions{Components: 40, LayerSize: 8 << 10, Sigstore: true}

// connParallel is the --parallel the tests give: more than Go's default of
// two idle connections per host, so that a client keeping only that many
// churns.
const connParallel = 6

// maxConnections bounds the connections of one pack or apply: each of the
// --parallel workers holds one connection at a time, and the pool keeps
// all of them idle between blobs. Beside them run as many requests again:
// in pack, the walk reads manifests with --parallel workers while as many
// look up signature tags; in apply, as many existence checks (HEAD) run
// ahead of the uploads. The pool never holds more than 2×--parallel+2
// connections to a host at once (those being dialled included); beyond
// that, the one HTTPS attempt that finds a plain-HTTP registry, and one to
// spare should the registry close one. Before the shared pool, a pack of
// connRelease opened about 200.
const maxConnections = 2*connParallel + 4

// connBed is a release in an in-process registry behind a counting proxy,
// built through it, and the key and signature store that prove it.
type connBed struct {
	proxy   *testbed.CountingProxy
	rel     *testbed.Release
	keyFile string
	store   string
}

func newConnBed(t *testing.T, opts testbed.ReleaseOptions) *connBed {
	t.Helper()
	reg := testbed.NewMemoryRegistry(t)
	b := &connBed{proxy: testbed.NewCountingProxy(t, reg.URL)}
	b.rel = testbed.BuildRelease(t, b.proxy.Host, opts)
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	store.SignRelease(t, key, b.rel)
	b.store = store.URL
	b.keyFile = filepath.Join(t.TempDir(), "key.asc")
	if err := os.WriteFile(b.keyFile, key.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(b.rel.Blobs) < 8*maxConnections {
		t.Fatalf("the release has %d blobs: too few for a connection per blob to stand out", len(b.rel.Blobs))
	}
	return b
}

// pack packs the release with --parallel connParallel.
func (b *connBed) pack(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bundle.tar")
	mustFerry(t, "pack", b.rel.DigestSpec(), "-o", out, "--src-tls-verify=false", "--keyring", b.keyFile,
		"--signature-store", b.store, "--parallel", strconv.Itoa(connParallel), "--quiet")
	return out
}

// TestConnectionsPack: a pack of a release of many blobs opens a bounded
// pool of connections, not one per blob, and fetches each blob once.
func TestConnectionsPack(t *testing.T) {
	b := newConnBed(t, connRelease)
	b.proxy.Reset()
	b.pack(t)
	conns, reqs := b.proxy.Connections(), b.proxy.Requests()
	t.Logf("pack of %d blobs: %d connections; requests %v; first requests of a connection %v", len(b.rel.Blobs), conns, reqs, b.proxy.Openings())
	if conns > maxConnections {
		t.Errorf("pack opened %d connections for %d blobs with --parallel %d, want at most %d", conns, len(b.rel.Blobs), connParallel, maxConnections)
	}
	if pings := b.proxy.Count(http.MethodGet, testbed.KindPing); pings > 1 {
		t.Errorf("pack pinged the registry %d times, want once", pings)
	}
}

// applyInto applies bundlePath into a fresh registry behind a counting
// proxy (refusing monolithic uploads with status refuse, unless 0), and
// returns the proxy, the registry and the number of blobs apply pushed.
func applyInto(t *testing.T, b *connBed, bundlePath string, refuse int) (*testbed.CountingProxy, *testbed.Registry, int) {
	t.Helper()
	reg := testbed.NewMemoryRegistry(t)
	proxy := testbed.NewCountingProxy(t, reg.URL)
	proxy.RefuseMonolithic(refuse)
	out := mustFerry(t, applyArgs(t, bundlePath, b.keyFile, proxy.Host, "--parallel", strconv.Itoa(connParallel), "--json")...)
	var sum struct {
		BlobsPushed  int `json:"blobsPushed"`
		BlobsSkipped int `json:"blobsSkipped"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("apply --json: %v\n%s", err, out)
	}
	if sum.BlobsPushed == 0 || sum.BlobsSkipped != 0 {
		t.Fatalf("apply into an empty registry pushed %d blobs and skipped %d", sum.BlobsPushed, sum.BlobsSkipped)
	}
	return proxy, reg, sum.BlobsPushed
}

// TestConnectionsApply: apply into an empty registry opens a bounded pool
// of connections, checks each blob once (one HEAD, and one more for the
// access check), and uploads each small blob in two requests: POST, then
// PUT with the body. An inventory of the mirror then reads every tag on a
// bounded pool too.
func TestConnectionsApply(t *testing.T) {
	b := newConnBed(t, connRelease)
	proxy, reg, pushed := applyInto(t, b, b.pack(t), 0)
	conns, got := proxy.Connections(), proxy.Uploads()
	t.Logf("apply of %d blobs: %d connections; requests %v", pushed, conns, proxy.Requests())
	if conns > maxConnections {
		t.Errorf("apply opened %d connections for %d blobs with --parallel %d, want at most %d", conns, pushed, connParallel, maxConnections)
	}
	if got.Heads > pushed+1 {
		t.Errorf("apply checked %d times whether a blob exists for %d blobs, want at most one each (and the access check)", got.Heads, pushed)
	}
	if got.Patches != 0 || got.Posts != pushed || got.Puts != pushed {
		t.Errorf("apply uploaded %d small blobs with %d POST, %d PATCH, %d PUT; want one POST and one PUT each", pushed, got.Posts, got.Patches, got.Puts)
	}
	assertReadBack(t, reg, b.rel)

	proxy.Reset()
	mustFerry(t, "inventory", "--to", proxy.Host+"/"+targetRepo, "--dest-tls-verify=false", "--parallel", strconv.Itoa(connParallel),
		"-o", filepath.Join(t.TempDir(), "inventory.json"))
	tagReads := proxy.Count(http.MethodGet, testbed.KindManifest)
	t.Logf("inventory: %d connections; requests %v", proxy.Connections(), proxy.Requests())
	if tagReads < 3*maxConnections {
		t.Fatalf("inventory read %d manifests: too few for a connection per tag to stand out", tagReads)
	}
	if conns := proxy.Connections(); conns > maxConnections {
		t.Errorf("inventory opened %d connections to read %d manifests, want at most %d", conns, tagReads, maxConnections)
	}
}

// TestConnectionsApplyChunkedOnly: a registry that refuses a blob sent in
// the PUT that completes its upload still gets the whole release, chunked:
// the refusal is met once, not once per blob.
func TestConnectionsApplyChunkedOnly(t *testing.T) {
	b := newConnBed(t, connRelease)
	bundlePath := b.pack(t)
	for _, status := range []int{http.StatusBadRequest, http.StatusRequestedRangeNotSatisfiable} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			proxy, reg, pushed := applyInto(t, b, bundlePath, status)
			got := proxy.Uploads()
			t.Logf("apply of %d blobs: requests %v", pushed, proxy.Requests())
			// Each worker may send one monolithic upload before the first
			// refusal is known: those are sent again, chunked.
			if got.Patches != pushed || got.Posts > pushed+connParallel || got.Puts > pushed+connParallel {
				t.Errorf("apply of %d blobs to a chunked-only registry: %d POST, %d PATCH, %d PUT; want one chunked upload each after at most %d refusals",
					pushed, got.Posts, got.Patches, got.Puts, connParallel)
			}
			if got.Puts == pushed {
				t.Error("no monolithic upload was tried: the test tests nothing")
			}
			assertReadBack(t, reg, b.rel)
		})
	}
}

// assertReadBack reads every blob of rel back from the target repository
// and checks its digest, and checks that every tag names a whole image.
func assertReadBack(t *testing.T, reg *testbed.Registry, rel *testbed.Release) {
	t.Helper()
	ctx := context.Background()
	for d := range rel.Blobs {
		data, err := reg.GetBlob(ctx, targetRepo, d)
		if err != nil {
			t.Errorf("blob %s in the target: %v", d, err)
			continue
		}
		if got := digest.FromBytes(data); got != d {
			t.Errorf("blob %s in the target has digest %s", d, got)
		}
	}
	if _, _, err := reg.GetManifest(ctx, targetRepo, rel.Digest.String()); err != nil {
		t.Errorf("the release manifest in the target: %v", err)
	}
	assertTagsComplete(t, reg, targetRepo)
}

// TestConnectionsMirror: ferry mirror, reading one registry and writing
// another at once, keeps a bounded pool on each side, and uploads each
// small blob with one check, one POST and one PUT.
func TestConnectionsMirror(t *testing.T) {
	b := newConnBed(t, connRelease)
	reg := testbed.NewMemoryRegistry(t)
	target := testbed.NewCountingProxy(t, reg.URL)
	b.proxy.Reset()
	mustFerry(t, "mirror", b.rel.DigestSpec(), "--to", target.Host+"/"+targetRepo, "--src-tls-verify=false", "--dest-tls-verify=false",
		"--keyring", b.keyFile, "--signature-store", b.store, "--parallel", strconv.Itoa(connParallel),
		"--no-cluster", "--output-dir", filepath.Join(t.TempDir(), "manifests"), "--quiet")
	t.Logf("mirror: source %d connections, requests %v; target %d connections, requests %v",
		b.proxy.Connections(), b.proxy.Requests(), target.Connections(), target.Requests())
	for side, p := range map[string]*testbed.CountingProxy{"source": b.proxy, "target": target} {
		if conns := p.Connections(); conns > maxConnections {
			t.Errorf("mirror opened %d connections to the %s for %d blobs with --parallel %d, want at most %d",
				conns, side, len(b.rel.Blobs), connParallel, maxConnections)
		}
	}
	got := target.Uploads()
	if got.Patches != 0 || got.Posts != got.Puts || got.Posts > len(b.rel.Blobs) || got.Heads > got.Posts+1 {
		t.Errorf("mirror uploaded with %d HEAD, %d POST, %d PATCH, %d PUT; want one check, one POST and one PUT per blob", got.Heads, got.Posts, got.Patches, got.Puts)
	}
	assertReadBack(t, reg, b.rel)
}
