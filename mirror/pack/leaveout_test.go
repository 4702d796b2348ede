package pack_test

import (
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/inventory"
	"github.com/ferryhq/ferry/mirror/pack"
)

// inventoryOf is an inventory holding blobs, with the sizes in resize
// replacing theirs.
func inventoryOf(blobs []*mirror.Blob, resize map[digest.Digest]int64) *inventory.Inventory {
	inv := &inventory.Inventory{Source: "test"}
	for _, b := range blobs {
		size, ok := resize[b.Digest]
		if !ok {
			size = b.Size
		}
		inv.Blobs = append(inv.Blobs, inventory.Blob{Digest: b.Digest, Size: size, MediaType: b.MediaType})
	}
	return inv
}

func TestLeaveOut(t *testing.T) {
	blob := func(s string, size int64, releaseFiles bool) *mirror.Blob {
		return &mirror.Blob{Digest: digest.FromString(s), Size: size, MediaType: "layer", ReleaseFiles: releaseFiles}
	}
	releaseLayer, shared, changed, fresh := blob("release", 10, true), blob("shared", 20, false), blob("changed", 30, false), blob("fresh", 40, false)
	plan := &mirror.Plan{Blobs: []*mirror.Blob{releaseLayer, shared, changed, fresh}}
	cases := []struct {
		name       string
		inv        *inventory.Inventory
		carry      []*mirror.Blob
		leftOut    []*mirror.Blob
		mismatches int
	}{
		{"no inventory carries all", nil, plan.Blobs, nil, 0},
		{"an empty inventory carries all", inventoryOf(nil, nil), plan.Blobs, nil, 0},
		{"held blobs are left out, the release files never", inventoryOf([]*mirror.Blob{releaseLayer, shared, changed}, nil),
			[]*mirror.Blob{releaseLayer, fresh}, []*mirror.Blob{shared, changed}, 0},
		{"a blob held with another size is carried", inventoryOf([]*mirror.Blob{shared, changed}, map[digest.Digest]int64{changed.Digest: 31}),
			[]*mirror.Blob{releaseLayer, changed, fresh}, []*mirror.Blob{shared}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			carry, prereqs, mismatches := pack.LeaveOut(plan, tc.inv)
			if len(carry) != len(tc.carry) {
				t.Fatalf("carried %d blobs, want %d", len(carry), len(tc.carry))
			}
			for i := range carry {
				if carry[i] != tc.carry[i] {
					t.Errorf("carried[%d] = %s, want %s (in the plan's order)", i, carry[i].Digest, tc.carry[i].Digest)
				}
			}
			want := map[digest.Digest]int64{}
			for _, b := range tc.leftOut {
				want[b.Digest] = b.Size
			}
			if len(prereqs) != len(want) {
				t.Errorf("left out %d blobs, want %d", len(prereqs), len(want))
			}
			for i, p := range prereqs {
				if size, ok := want[p.Digest]; !ok || size != p.Size || p.MediaType != "layer" {
					t.Errorf("prerequisite %+v is not one to leave out", p)
				}
				if i > 0 && prereqs[i-1].Digest >= p.Digest {
					t.Errorf("prerequisites not sorted by digest: %s before %s", prereqs[i-1].Digest, p.Digest)
				}
			}
			if len(mismatches) != tc.mismatches {
				t.Errorf("mismatches = %+v, want %d", mismatches, tc.mismatches)
			}
			for _, m := range mismatches {
				if m.Digest != changed.Digest || m.Size != 30 || m.InventorySize != 31 {
					t.Errorf("mismatch = %+v, want %s 30 vs 31", m, changed.Digest)
				}
			}
		})
	}
}
