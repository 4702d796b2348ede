package pack_test

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
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

// TestLeaveOutPerRepository: a blob of an image under a path is left out
// only when that path's repository holds it, and when the target holds it
// too for an image of the target sharing it; each repository gets its own
// prerequisite.
func TestLeaveOutPerRepository(t *testing.T) {
	blob := func(s string) *mirror.Blob {
		return &mirror.Blob{Digest: digest.FromString(s), Size: int64(len(s)), MediaType: "layer"}
	}
	base, data, shared := blob("graph base layer"), blob("graph data layer"), blob("layer in both")
	plan := &mirror.Plan{
		Blobs: []*mirror.Blob{base, data, shared},
		Images: []*mirror.Image{
			{Digest: digest.FromString("release"), Blobs: []digest.Digest{shared.Digest}},
			{Digest: digest.FromString("graph"), Target: "graph-image", Blobs: []digest.Digest{base.Digest, data.Digest, shared.Digest}},
		},
	}
	held := func(bs ...*mirror.Blob) []inventory.Blob {
		var out []inventory.Blob
		for _, b := range bs {
			out = append(out, inventory.Blob{Digest: b.Digest, Size: b.Size, MediaType: b.MediaType})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		inv     *inventory.Inventory
		leftOut []bundle.Prerequisite
	}{
		{"the target's blobs do not do for a path", &inventory.Inventory{Blobs: held(base, data, shared)}, nil},
		{"the path's own blobs", &inventory.Inventory{Repositories: []inventory.Repository{{Path: "graph-image", Blobs: held(base, shared)}}},
			[]bundle.Prerequisite{{Digest: base.Digest, Size: base.Size, MediaType: "layer", Target: "graph-image"}}},
		{"a blob both hold is a prerequisite of each", &inventory.Inventory{Blobs: held(shared),
			Repositories: []inventory.Repository{{Path: "graph-image", Blobs: held(shared)}}},
			[]bundle.Prerequisite{{Digest: shared.Digest, Size: shared.Size, MediaType: "layer"},
				{Digest: shared.Digest, Size: shared.Size, MediaType: "layer", Target: "graph-image"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			carry, prereqs, _ := pack.LeaveOut(plan, tc.inv)
			if !slices.Equal(prereqs, tc.leftOut) {
				t.Errorf("prerequisites %+v, want %+v", prereqs, tc.leftOut)
			}
			if len(carry)+len(slices.CompactFunc(slices.Clone(prereqs), func(a, b bundle.Prerequisite) bool { return a.Digest == b.Digest })) != len(plan.Blobs) {
				t.Errorf("carried %d blobs and left out %+v of %d", len(carry), prereqs, len(plan.Blobs))
			}
		})
	}
}

// TestMovedTags: an additional image whose target tag the inventory saw
// naming another manifest is reported and marked; the same manifest, a
// repository the inventory did not read, a digest reference and an image
// carried for a release are not.
func TestMovedTags(t *testing.T) {
	old, now := digest.FromString("old"), digest.FromString("new")
	plan := &mirror.Plan{Additional: []mirror.Additional{
		{AdditionalImage: mirror.AdditionalImage{Ref: "r/tool:v1"}, Digest: now, Target: "tool", TargetTag: "v1"},
		{AdditionalImage: mirror.AdditionalImage{Ref: "r/same:v1"}, Digest: now, Target: "same", TargetTag: "v1"},
		{AdditionalImage: mirror.AdditionalImage{Ref: "r/unread:v1"}, Digest: now, Target: "unread", TargetTag: "v1"},
		{AdditionalImage: mirror.AdditionalImage{Ref: "r/pinned@" + now.String()}, Digest: now, Target: "tool"},
		{AdditionalImage: mirror.AdditionalImage{Ref: "r/carried:v1"}, Digest: now, Target: "carried", TargetTag: "v1", AlreadyCarried: "component"},
	}}
	inv := &inventory.Inventory{Repositories: []inventory.Repository{
		{Path: "tool", Tags: []inventory.Tag{{Name: "v1", Digest: old}}},
		{Path: "same", Tags: []inventory.Tag{{Name: "v1", Digest: now}}},
		{Path: "carried", Tags: []inventory.Tag{{Name: "v1", Digest: old}}},
	}}
	if moved := pack.MovedTags(plan, nil); moved != nil {
		t.Errorf("without an inventory: %+v", moved)
	}
	moved := pack.MovedTags(plan, inv)
	if len(moved) != 1 || moved[0].Ref != "r/tool:v1" || moved[0].MovedFrom != old || plan.Additional[0].MovedFrom != old {
		t.Errorf("moved %+v, want r/tool:v1 from %s marked in the plan", moved, old)
	}
	for _, a := range plan.Additional[1:] {
		if a.MovedFrom != "" {
			t.Errorf("%s marked moved", a.Ref)
		}
	}
}
