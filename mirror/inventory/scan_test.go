package inventory

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

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
