package inventory

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

const mirrorRepo = "ocp4/openshift4"

func scanOptions(t *testing.T) ScanOptions {
	t.Helper()
	return ScanOptions{Registry: registry.Options{
		AuthFile: filepath.Join(t.TempDir(), "auth.json"), // none: the host's credentials stay out
		Retry:    registry.RetryPolicy{Attempts: 2, Base: time.Millisecond},
	}}
}

// TestScanSeesTaggedImages: a multi-arch release whose release image and
// signatures are tagged in the scanned repository (its components are not):
// the inventory holds exactly the tagged manifests, their children, and
// every blob of those, and the release.
func TestScanSeesTaggedImages(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	rel := testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{
		Components: 3, Multi: true, Sigstore: true, ReleaseRepo: mirrorRepo, Repos: []string{"other/components"},
	})
	opts := scanOptions(t)
	var calls atomic.Int32
	opts.Progress = func(done, total int) { calls.Add(1) }
	inv, err := Scan(context.Background(), reg.Host+"/"+mirrorRepo, opts)
	if err != nil {
		t.Fatal(err)
	}
	wantManifests := map[digest.Digest]bool{}
	wantBlobs := map[digest.Digest]int64{}
	for _, im := range rel.Images {
		if im.Repository != mirrorRepo {
			continue
		}
		wantManifests[im.Digest] = true
		for _, b := range im.Blobs {
			wantBlobs[b] = rel.Blobs[b]
		}
	}
	if len(inv.Manifests) != len(wantManifests) {
		t.Errorf("%d manifests, want %d", len(inv.Manifests), len(wantManifests))
	}
	for _, d := range inv.Manifests {
		if !wantManifests[d] {
			t.Errorf("manifest %s is not one tagged in %s", d, mirrorRepo)
		}
	}
	got := inv.BlobSet()
	if len(got) != len(wantBlobs) {
		t.Errorf("%d blobs, want %d", len(got), len(wantBlobs))
	}
	for d, size := range wantBlobs {
		if b, ok := got[d]; !ok || b.Size != size || b.MediaType == "" {
			t.Errorf("blob %s: %+v, want %d bytes with a media type", d, b, size)
		}
	}
	if len(inv.Releases) != 1 || inv.Releases[0] != (Release{Version: rel.Version, Arch: "multi", Digest: rel.Digest}) {
		t.Errorf("releases %+v, want %s-multi %s", inv.Releases, rel.Version, rel.Digest)
	}
	if inv.Source != "registry "+reg.Host+"/"+mirrorRepo || int(calls.Load()) < 2 {
		t.Errorf("source %q, %d progress calls", inv.Source, calls.Load())
	}
	if _, err := inv.Marshal(); err != nil {
		t.Errorf("the scanned inventory does not marshal: %v", err)
	}
}

func TestScanUnknownRepositoryIsEmpty(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	inv, err := Scan(context.Background(), reg.Host+"/no/such/repo", scanOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Manifests)+len(inv.Blobs)+len(inv.Releases) != 0 {
		t.Errorf("inventory of a missing repository: %+v", inv)
	}
}

func TestScanRefusesBadArguments(t *testing.T) {
	for _, repo := range []string{"host/repo:tag", "Not A Repo", "host/repo@" + digest.FromString("x").String()} {
		if _, err := Scan(context.Background(), repo, scanOptions(t)); err == nil {
			t.Errorf("Scan(%q) succeeded", repo)
		}
	}
}

func TestScanUnreachable(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	reg.Close()
	if _, err := Scan(context.Background(), reg.Host+"/"+mirrorRepo, scanOptions(t)); err == nil {
		t.Error("scanning a stopped registry succeeded")
	}
}

// pushImage pushes a one-layer OCI image into repo under tag and returns
// its digest and its blobs.
func pushImage(t *testing.T, c *testbed.Client, repo, tag, layer string) (digest.Digest, []digest.Digest) {
	t.Helper()
	ctx := context.Background()
	cfg, err := c.PushBlob(ctx, repo, []byte(`{"architecture":"amd64","os":"linux"}`))
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.PushBlob(ctx, repo, []byte(layer))
	if err != nil {
		t.Fatal(err)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":37},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, cfg, ocispec.MediaTypeImageLayerGzip, l, len(layer))
	d, err := c.PushManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, []byte(m))
	if err != nil {
		t.Fatal(err)
	}
	return d, []digest.Digest{cfg, l}
}

// TestScanReadsPathsUnderTarget: the repositories under the target named
// in Paths are read with their tags, each on its own: their blobs do not
// count for the target, nor the target's for them; a path the registry
// does not know is recorded empty.
func TestScanReadsPathsUnderTarget(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	c := testbed.NewClient(reg.Host)
	_, rootBlobs := pushImage(t, c, mirrorRepo, "4.15.0-x86_64", "release layer")
	tool, toolBlobs := pushImage(t, c, mirrorRepo+"/extras/tool", "v1", "tool layer")
	opts := scanOptions(t)
	opts.Paths = []string{"extras/tool", "graph-image"}
	inv, err := Scan(context.Background(), reg.Host+"/"+mirrorRepo, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := inv.BlobSet()[toolBlobs[1]]; ok || len(inv.Blobs) != 2 {
		t.Errorf("the target's blobs %+v hold the tool's layer, or not just its own", inv.Blobs)
	}
	r := inv.Repository("extras/tool")
	if r == nil || r.TagDigest("v1") != tool || len(r.Tags) != 1 || !slices.Equal(r.Manifests, []digest.Digest{tool}) {
		t.Fatalf("repository extras/tool: %+v, want v1 -> %s", r, tool)
	}
	if held := r.BlobSet(); len(held) != 2 || held[toolBlobs[1]].Size != int64(len("tool layer")) {
		t.Errorf("extras/tool blobs %+v", r.Blobs)
	}
	if _, ok := r.BlobSet()[rootBlobs[1]]; ok {
		t.Errorf("the target's layer is claimed for extras/tool")
	}
	if g := inv.Repository("graph-image"); g == nil || len(g.Tags)+len(g.Blobs)+len(g.Manifests) != 0 {
		t.Errorf("graph-image, not in the registry: %+v, want recorded empty", g)
	}
	if inv.Repository("other") != nil {
		t.Error("a repository not read is known")
	}
	data, err := inv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v\n%s", err, data)
	}
	again, err := back.Marshal()
	if err != nil || !bytes.Equal(again, data) || back.Repository("extras/tool").TagDigest("v1") != tool {
		t.Errorf("the repositories do not round-trip (%v):\n%s\n%s", err, data, again)
	}
}
