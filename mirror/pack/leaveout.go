package pack

import (
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/inventory"
)

// SizeMismatch is a blob the inventory lists with another size than the
// plan: LeaveOut carries it, and the caller may want to say so.
type SizeMismatch struct {
	Digest digest.Digest
	// Size is the plan's (the manifest's) size; InventorySize the
	// inventory's.
	Size, InventorySize int64
}

// LeaveOut splits the plan's blobs into those to carry and those the
// inventory says the target holds, which become the bundle's
// prerequisites (sorted by digest), to pass as Options.Prerequisites.
// Manifests are always carried (they are small, and apply needs them to
// write tags). Layers the release files were read from are always carried
// too: apply reads them again to check the chain of trust, offline. A blob
// the inventory lists with another size is carried, and returned in
// mismatches. A nil inventory leaves nothing out.
func LeaveOut(plan *mirror.Plan, inv *inventory.Inventory) (carry []*mirror.Blob, prereqs []bundle.Prerequisite, mismatches []SizeMismatch) {
	if inv == nil {
		return plan.Blobs, nil, nil
	}
	have := inv.BlobSet()
	for _, b := range plan.Blobs {
		held, ok := have[b.Digest]
		switch {
		case !ok || b.ReleaseFiles:
			carry = append(carry, b)
		case held.Size != b.Size:
			mismatches = append(mismatches, SizeMismatch{Digest: b.Digest, Size: b.Size, InventorySize: held.Size})
			carry = append(carry, b)
		default:
			prereqs = append(prereqs, bundle.Prerequisite{Digest: b.Digest, MediaType: b.MediaType, Size: b.Size})
		}
	}
	sort.Slice(prereqs, func(i, j int) bool { return prereqs[i].Digest < prereqs[j].Digest })
	return carry, prereqs, mismatches
}
