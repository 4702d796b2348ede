package e2e

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
)

// incrementalMaxOverhead is how much larger than its new blobs plus its
// index an incremental bundle may be: manifests, signatures, tar headers.
const incrementalMaxOverhead = 0.01

// releasePair is two signed releases in a registry process, the second
// sharing most blobs with the first.
type releasePair struct {
	src           *testbed.DockerRegistry
	first, second *testbed.Release
	keyFile       string
	store         string
}

func newReleasePair(t *testing.T, opts testbed.ReleaseOptions) *releasePair {
	t.Helper()
	src := testbed.StartDockerRegistry(t)
	first := testbed.BuildRelease(t, src.Host, opts)
	opts.Version, opts.ShareWith, opts.Previous = "4.15.1", first, []string{first.Version}
	second := testbed.BuildRelease(t, src.Host, opts)
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	store.SignRelease(t, key, first)
	store.SignRelease(t, key, second)
	keyFile := filepath.Join(t.TempDir(), "key.asc")
	if err := os.WriteFile(keyFile, key.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return &releasePair{src: src, first: first, second: second, keyFile: keyFile, store: store.URL}
}

func (p *releasePair) pack(out string, args ...string) []string {
	// --no-self: the bastion has ferry already; the 1% bound is about blobs.
	return append([]string{"pack", "-o", out, "--no-self", "--src-tls-verify=false", "--keyring", p.keyFile,
		"--signature-store", p.store, "--quiet"}, args...)
}

func (p *releasePair) apply(bundlePath, target string) []string {
	return []string{"apply", bundlePath, "--to", target + "/" + targetRepo, "--dest-tls-verify=false",
		"--keyring", p.keyFile, "--no-cluster", "--quiet", "--output-dir", filepath.Join(filepath.Dir(bundlePath), "manifests")}
}

// incremental is release 2 packed against the inventory of a mirror that
// holds release 1.
type incremental struct {
	mirror    *testbed.DockerRegistry
	inventory string
	bundle    string
	// size is the bundle's size; newBytes the size of release 2's blobs
	// that release 1 lacks. `make bench` reports size/newBytes.
	size, newBytes int64
}

// packIncremental packs and applies release 1 into a fresh mirror, takes
// the mirror's inventory, and packs release 2 against it.
func packIncremental(t *testing.T, p *releasePair) *incremental {
	t.Helper()
	dir := t.TempDir()
	inc := &incremental{mirror: testbed.StartDockerRegistry(t), inventory: filepath.Join(dir, "inventory.json"),
		bundle: filepath.Join(dir, "second.tar")}
	first := filepath.Join(dir, "first.tar")
	mustRun(t, nil, p.pack(first, p.first.PullSpec)...)
	mustRun(t, nil, p.apply(first, inc.mirror.Host)...)
	mustRun(t, nil, "inventory", "--to", inc.mirror.Host+"/"+targetRepo, "--dest-tls-verify=false", "-o", inc.inventory)
	mustRun(t, nil, p.pack(inc.bundle, p.second.PullSpec, "--since", inc.inventory)...)
	for d, size := range p.second.Blobs {
		if _, shared := p.first.Blobs[d]; !shared {
			inc.newBytes += size
		}
	}
	inc.size = fileSize(t, inc.bundle)
	return inc
}

// TestIncrementalBundles: two releases sharing most layers. Release 1 is
// packed and applied; the mirror's inventory makes release 2's bundle hold
// only its new blobs (and its index, manifests and signatures: under 1%
// more); it applies cleanly, and an empty registry refuses it before any
// push, naming a missing prerequisite. A bundle of the update path
// 4.15.0 -> 4.15.1 stores the shared blobs once.
func TestIncrementalBundles(t *testing.T) {
	// Layers large enough that a bundle's metadata is small beside them,
	// as in real releases.
	p := newReleasePair(t, testbed.ReleaseOptions{Components: 8, LayerSize: 4 << 20, Sigstore: true})
	inc := packIncremental(t, p)
	second, mirror := inc.bundle, inc.mirror
	size, newBytes, indexSize := inc.size, inc.newBytes, tarEntrySize(t, inc.bundle, bundle.IndexName)
	ratio := float64(size) / float64(newBytes+indexSize)
	t.Logf("incremental bundle: %d bytes; new unique blobs %d bytes + index %d bytes; bundle/(new+index) = %.4f, bundle/new = %.4f",
		size, newBytes, indexSize, ratio, float64(size)/float64(newBytes))
	if ratio < 1 || ratio > 1+incrementalMaxOverhead {
		t.Errorf("the incremental bundle is %d bytes, %.2f%% over its new blobs plus index (%d bytes); want at most %.0f%%",
			size, (ratio-1)*100, newBytes+indexSize, incrementalMaxOverhead*100)
	}
	mustRun(t, nil, "verify", second, "--keyring", p.keyFile, "--quiet")

	// An empty registry lacks the prerequisites: nothing is pushed.
	empty := testbed.NewMemoryRegistry(t)
	res := runFerry(t, nil, p.apply(second, empty.Host)...)
	prereq := firstPrerequisite(t, second)
	if res.code != 3 || !strings.Contains(res.stderr, prereq.String()) {
		t.Errorf("apply to an empty registry: exit %d (want 3), stderr should name prerequisite %s:\n%s", res.code, prereq, res.stderr)
	}
	if repos, err := empty.Client().Catalog(context.Background()); err != nil || len(repos) != 0 {
		t.Errorf("the empty registry was changed: %v %v", repos, err)
	}

	// The mirror holds them: release 2 lands, and its tag is release 2.
	mustRun(t, nil, p.apply(second, mirror.Host)...)
	desc, err := mirror.Client().HeadManifest(context.Background(), targetRepo, p.second.Tag)
	if err != nil || desc.Digest != p.second.Digest {
		t.Errorf("release 2's tag in the mirror: %v (%v)", desc.Digest, err)
	}

	t.Run("update path", func(t *testing.T) {
		graphURL := writeGraph(t, p.first, p.second)
		path := filepath.Join(t.TempDir(), "path.tar")
		mustRun(t, nil, p.pack(path, "--channel", "stable-4.15", "--from", "4.15.0", "--to", "4.15.1", "--graph-url", graphURL)...)
		idx := inspect(t, path)
		if len(idx.Releases) != 2 || strings.Join(idx.UpdatePath, " ") != "4.15.0 4.15.1" {
			t.Fatalf("releases %d, update path %v", len(idx.Releases), idx.UpdatePath)
		}
		stored := map[string]int{}
		for _, f := range idx.Files {
			stored[f.Name]++
		}
		shared := 0
		for d := range p.second.Blobs {
			if _, ok := p.first.Blobs[d]; ok {
				shared++
			}
		}
		for _, rel := range []*testbed.Release{p.first, p.second} {
			for d := range rel.Blobs {
				if n := stored[bundle.BlobName(d)]; n != 1 {
					t.Errorf("blob %s stored %d times", d, n)
				}
			}
		}
		if shared == 0 {
			t.Error("the releases share no blob")
		}
		mustRun(t, nil, "verify", path, "--keyring", p.keyFile, "--quiet")
	})
}

// writeGraph writes a one-channel update graph first -> second whose
// payloads are the test releases, and returns its file:// URL.
func writeGraph(t *testing.T, first, second *testbed.Release) string {
	t.Helper()
	node := func(r *testbed.Release) map[string]any {
		return map[string]any{"version": r.Version, "payload": r.DigestSpec(),
			"metadata": map[string]string{"io.openshift.upgrades.graph.release.channels": "stable-4.15"}}
	}
	data, err := json.Marshal(map[string]any{"version": 1, "nodes": []any{node(first), node(second)},
		"edges": [][2]int{{0, 1}}, "conditionalEdges": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "graph.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return (&url.URL{Scheme: "file", Path: p}).String()
}

// inspect reads a bundle's index through `ferry inspect --json`.
func inspect(t *testing.T, path string) *bundle.Index {
	t.Helper()
	var idx bundle.Index
	if err := json.Unmarshal([]byte(mustRun(t, nil, "inspect", path, "--json").stdout), &idx); err != nil {
		t.Fatal(err)
	}
	return &idx
}

func firstPrerequisite(t *testing.T, path string) digest.Digest {
	t.Helper()
	idx := inspect(t, path)
	if len(idx.Prerequisites) == 0 {
		t.Fatal("the incremental bundle lists no prerequisite")
	}
	return idx.Prerequisites[0].Digest
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// tarEntrySize is the data size of the named entry of a tar file.
func tarEntrySize(t *testing.T, path, name string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no entry %s", path, name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == name {
			return hdr.Size
		}
	}
}
