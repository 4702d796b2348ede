package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testImage is an image pushed in a test: its manifest and every blob.
type testImage struct {
	manifest digest.Digest
	blobs    map[digest.Digest]int64 // config and layers, with sizes
}

// pushImage pushes an OCI image of config and layers to repo:tag.
func pushImage(t *testing.T, s *testServer, repo, tag string, config []byte, layers ...[]byte) testImage {
	t.Helper()
	img := testImage{blobs: map[digest.Digest]int64{}}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: pushBlob(t, s, repo, config), Size: int64(len(config))}
	img.blobs[m.Config.Digest] = m.Config.Size
	for _, l := range layers {
		d := pushBlob(t, s, repo, l)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(l))})
		img.blobs[d] = int64(len(l))
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, s.scheme+"://"+s.Address+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push manifest %s:%s: %d", repo, tag, resp.StatusCode)
	}
	img.manifest = digest.FromBytes(data)
	img.blobs[img.manifest] = int64(len(data))
	return img
}

// blobOnDisk says whether the registry in root still stores d.
func blobOnDisk(t *testing.T, root string, d digest.Digest) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(storageDir), "blobs", d.Algorithm().String(), d.Encoded()[:2], d.Encoded(), "data"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestGarbageCollect: two images share a layer; one is deleted through the
// API. A dry run reports exactly the deleted image's own blobs (its
// manifest, config and unique layer) and their bytes, and removes nothing;
// the collection removes exactly those; the other image, with the shared
// layer, still reads back whole. A second collection frees nothing.
func TestGarbageCollect(t *testing.T) {
	root := t.TempDir()
	s := startServer(t, Options{Root: root})
	shared := []byte("shared layer, in both images")
	gone := pushImage(t, s, "team/app", "old", []byte(`{"old":true}`), shared, []byte("only the old image's layer"))
	kept := pushImage(t, s, "team/app", "new", []byte(`{"new":true}`), shared, []byte("only the new image's layer"))
	// An untagged image, held by digest only, as mirrors hold a release's
	// components: it must survive.
	byDigest := pushImage(t, s, "team/component", "tmp", []byte(`{"component":true}`), []byte("component layer"))
	for _, path := range []string{"/v2/team/component/manifests/tmp", "/v2/team/app/manifests/" + gone.manifest.String()} {
		if got, body := s.do(t, http.MethodDelete, path, "", "", nil); got != http.StatusAccepted {
			t.Fatalf("DELETE %s: %d %s", path, got, body)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	var want []digest.Digest
	var wantBytes int64
	for d, size := range gone.blobs {
		if _, isShared := kept.blobs[d]; !isShared {
			want = append(want, d)
			wantBytes += size
		}
	}
	slices.Sort(want)
	if len(want) != 3 {
		t.Fatalf("test setup: the deleted image has %d blobs of its own, want 3", len(want))
	}

	dry, err := GarbageCollect(t.Context(), root, GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dry.Blobs, want) || dry.Bytes != wantBytes || !dry.DryRun {
		t.Errorf("dry run: %d blobs %v, %d bytes; want %v, %d bytes", len(dry.Blobs), dry.Blobs, dry.Bytes, want, wantBytes)
	}
	for _, d := range want {
		if !blobOnDisk(t, root, d) {
			t.Errorf("the dry run removed %s", d)
		}
	}

	res, err := GarbageCollect(t.Context(), root, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Blobs, want) || res.Bytes != wantBytes || res.DryRun {
		t.Errorf("collection: %d blobs %v, %d bytes; want %v, %d bytes", len(res.Blobs), res.Blobs, res.Bytes, want, wantBytes)
	}
	for _, d := range want {
		if blobOnDisk(t, root, d) {
			t.Errorf("%s of the deleted image is still stored", d)
		}
	}

	ro := startServer(t, Options{Root: root, ReadOnly: true})
	for repo, img := range map[string]testImage{"team/app": kept, "team/component": byDigest} {
		if got, _ := ro.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+img.manifest.String(), "", "", nil); got != http.StatusOK {
			t.Errorf("%s@%s after the collection: %d", repo, img.manifest, got)
		}
		for d := range img.blobs {
			if d == img.manifest {
				continue // read above, as a manifest
			}
			if got, body := ro.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), "", "", nil); got != http.StatusOK || digest.FromBytes(body) != d {
				t.Errorf("%s blob %s after the collection: %d", repo, d, got)
			}
		}
	}
	again, err := GarbageCollect(t.Context(), root, GCOptions{})
	if err != nil || len(again.Blobs) != 0 || again.Bytes != 0 {
		t.Errorf("a second collection: %+v, %v; want nothing freed", again, err)
	}
}

// TestGarbageCollectEmpty: a root nothing was pushed to has nothing to
// free; a missing root is refused.
func TestGarbageCollectEmpty(t *testing.T) {
	res, err := GarbageCollect(t.Context(), t.TempDir(), GCOptions{})
	if err != nil || len(res.Blobs) != 0 {
		t.Errorf("empty root: %+v, %v", res, err)
	}
	if _, err := GarbageCollect(t.Context(), filepath.Join(t.TempDir(), "gone"), GCOptions{}); err == nil {
		t.Error("a missing root was collected")
	}
}
