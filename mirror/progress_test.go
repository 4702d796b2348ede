package mirror

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestBlobOwners: a blob is named after the first image it belongs to, an
// untagged child of a manifest list after the list, and an untagged image
// after its repository.
func TestBlobOwners(t *testing.T) {
	d := func(s string) digest.Digest { return digest.FromString(s) }
	owners := BlobOwners([]BlobOwner{
		{Name: OwnerName("quay.io/ocp/release", []string{"4.16.3-x86_64-etcd", "other"}), Digest: d("list"), Children: []digest.Digest{d("amd64")}},
		{Name: OwnerName("quay.io/ocp/release", nil), Digest: d("amd64"), Blobs: []digest.Digest{d("layer"), d("shared")}},
		{Name: OwnerName("quay.io/ocp/release", []string{"4.16.3-x86_64-cli"}), Digest: d("cli"), Blobs: []digest.Digest{d("shared"), d("own")}},
		{Name: OwnerName("registry.example/tools/ubi", nil), Digest: d("ubi"), Blobs: []digest.Digest{d("ubi-layer")}},
	})
	for blob, want := range map[string]string{"layer": "4.16.3-x86_64-etcd", "shared": "4.16.3-x86_64-etcd", "own": "4.16.3-x86_64-cli", "ubi-layer": "ubi"} {
		if got := owners[d(blob)]; got != want {
			t.Errorf("blob %s is named %q, want %q", blob, got, want)
		}
	}
	if got, want := ItemName("4.16.3-x86_64-cli", d("own")), "4.16.3-x86_64-cli "+d("own").Encoded()[:12]; got != want {
		t.Errorf("ItemName = %q, want %q", got, want)
	}
	if got := ItemName("", d("own")); got != d("own").Encoded()[:12] {
		t.Errorf("ItemName without an owner = %q, want the short digest", got)
	}
}
