package bundle

import (
	"archive/tar"
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// TestOpenNamesTheBrokenEntry: a header in volume 0 that declares far more
// data than the volume holds (a tar bomb) hides the index; Open refuses the
// bundle, naming that entry, without reading its declared size.
func TestOpenNamesTheBrokenEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.tar")
	writeFixture(t, path, WriteOptions{}, smallFixture())
	tartamper.InsertBefore(t, path, IndexName, tartamper.Raw(t, tar.Header{Name: "mirror/bomb", Mode: 0o644, Size: 1 << 50}, []byte("tiny")))
	mustOpenFail(t, path, ReadOptions{}, `volume 0: the tar is damaged or truncated after "mirror/bomb"`, "1125899906842624 bytes")
}

// TestOCIIndexSorted: the layout index does not depend on the order in
// which a caller found its entries.
func TestOCIIndexSorted(t *testing.T) {
	a, b := digest.FromString("a"), digest.FromString("b")
	entries := []LayoutEntry{
		{Digest: b, MediaType: MediaTypeDockerManifestList, Size: 3, RefName: "4.15.0-x86_64-etcd"},
		{Digest: a, MediaType: MediaTypeDockerManifestList, Size: 3, RefName: "4.15.0-x86_64"},
		{Digest: b, MediaType: MediaTypeDockerManifestList, Size: 3},
		{Digest: a, MediaType: MediaTypeDockerManifestList, Size: 3},
	}
	first, err := OCIIndex(entries)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(entries)
	given := slices.Clone(entries)
	again, err := OCIIndex(entries)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Errorf("the same entries in another order give another index:\n%s\n%s", first, again)
	}
	if !slices.Equal(entries, given) {
		t.Error("OCIIndex reordered its caller's slice")
	}
}
