package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
)

// This file proves ferry's bounds on what it reads from outside: hostile
// registries whose content is self-consistent (digests match, registries
// accept it) but built to make ferry hold, read or inflate without end.
// Each run must fail with the bound's message, naming what crossed it, and
// leave nothing behind.

// tinyRelease is enough to have components and signatures.
var tinyRelease = testbed.ReleaseOptions{Components: 2, LayerSize: 1 << 10, Sigstore: true}

// pathLog records the paths of the requests a fault proxy forwards.
type pathLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *pathLog) record(_ int64, r *http.Request) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paths = append(l.paths, r.URL.Path)
	return true
}

func (l *pathLog) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range l.paths {
		if strings.Contains(p, sub) {
			n++
		}
	}
	return n
}

// pushIndex pushes n small images to repo and an OCI index of them under
// tag, directly into reg; it returns the children's digests.
func pushIndex(t *testing.T, reg *testbed.Registry, repo, tag string, n int) []digest.Digest {
	t.Helper()
	ctx := context.Background()
	c := reg.Client()
	layer := []byte("sig-list-layer")
	ld, err := c.PushBlob(ctx, repo, layer)
	if err != nil {
		t.Fatal(err)
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	var children []digest.Digest
	for i := range n {
		cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"n":"%d"}},"rootfs":{"type":"layers","diff_ids":[]}}`, i))
		cd, err := c.PushBlob(ctx, repo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
			Layers: []ocispec.Descriptor{{MediaType: testbed.MediaTypeCosignPayload, Digest: ld, Size: int64(len(layer))}}}
		m.SchemaVersion = 2
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.PushManifest(ctx, repo, digest.FromBytes(data).String(), m.MediaType, data)
		if err != nil {
			t.Fatal(err)
		}
		children = append(children, d)
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: int64(len(data))})
	}
	data, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushManifest(ctx, repo, tag, idx.MediaType, data); err != nil {
		t.Fatal(err)
	}
	return children
}

// TestBoundsSigstoreList: a component's cosign tag (sha256-<hex>.sig)
// that is a manifest list of many children fails pack, naming the tag,
// before a single child is read: the memory it could have taken is never
// asked for.
func TestBoundsSigstoreList(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, tinyRelease)
	var comp testbed.Component
	for _, c := range b.rel.Components {
		if c.Signed {
			comp = c
			break
		}
	}
	if comp.Name == "" {
		t.Fatal("no signed component")
	}
	tag := testbed.SigstoreTag(comp.Digest)
	children := pushIndex(t, b.reg, comp.Repository, tag, 200)
	log := &pathLog{}
	b.proxy.OnRequest(log.record)

	dir := t.TempDir()
	res := ferryIn(t, dir, b.packArgs(filepath.Join(dir, "bundle.tar"))...)
	wantExit(t, "pack", res, codeFailure,
		b.proxy.Host+"/"+comp.Repository+":"+tag, "is not a cosign signature", "manifest list")
	assertNoBundle(t, dir, "bundle.tar")
	if log.count("/manifests/"+tag) == 0 {
		t.Error("the signature tag was never read: the test tests nothing")
	}
	for _, d := range children {
		if n := log.count(d.String()); n > 0 {
			t.Errorf("child %s of the forged signature list was read %d times", d, n)
		}
	}
}

// TestBoundsEndlessTags: a mirror whose tag list always links to another
// page stops `ferry inventory` at registry.MaxTags, after a bounded
// number of pages, with no inventory written.
func TestBoundsEndlessTags(t *testing.T) {
	t.Parallel()
	reg := testbed.NewMemoryRegistry(t)
	testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Components: 1, ReleaseRepo: targetRepo})
	endless := testbed.NewEndlessTagsProxy(t, reg.URL)
	dir := t.TempDir()
	out := filepath.Join(dir, "inventory.json")
	res := ferryIn(t, dir, "inventory", "--to", endless.Host+"/"+targetRepo, "--dest-tls-verify=false", "-o", out)
	wantExit(t, "inventory", res, codeFailure,
		endless.Host+"/"+targetRepo, fmt.Sprintf("more than %d tags", registry.MaxTags), "registry.MaxTags")
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an inventory was written: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("left behind in %s: %v", dir, entries)
	}
	// The first page is the registry's; every other holds 1,000 tags.
	if pages, max := endless.Pages(), int64(registry.MaxTags/1000+1); pages > max || pages < 2 {
		t.Errorf("%d pages read, want 2 to %d", pages, max)
	}
}

// TestBoundsGzipBomb: a release whose top layer is a gzip bomb (half a MB
// inflating past release.MaxInflatedPerLayer) fails pack at the bound,
// naming the release image, with no bundle left.
func TestBoundsGzipBomb(t *testing.T) {
	t.Parallel()
	bomb, err := testbed.GzipBomb("release-manifests/0000_99_bomb.yaml", release.MaxInflatedPerLayer+1<<20)
	if err != nil {
		t.Fatal(err)
	}
	opts := tinyRelease
	opts.ReleaseTopLayer = &bomb
	b := newFaultBed(t, opts)
	dir := t.TempDir()
	res := ferryIn(t, dir, b.packArgs(filepath.Join(dir, "bundle.tar"))...)
	wantExit(t, "pack", res, codeFailure, b.rel.DigestSpec(), "release.MaxInflatedPerLayer",
		fmt.Sprintf("more than %d bytes", release.MaxInflatedPerLayer), "decompression bomb")
	assertNoBundle(t, dir, "bundle.tar")
}
