package pack

import (
	"slices"
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
// inventory says the mirror holds, which become the bundle's
// prerequisites (sorted by target, then digest), to pass as
// Options.Prerequisites. A registry finds a blob only in the repository a
// manifest is pushed to, so a blob is left out only when every repository
// its images go to (the target, or a path under it) holds it, and is then
// a prerequisite of each. Manifests are always carried (they are small,
// and apply needs them to write tags). Layers the release files were read
// from are always carried too: apply reads them again to check the chain
// of trust, offline. A blob the inventory lists with another size is
// carried, and returned in mismatches. A nil inventory leaves nothing out.
func LeaveOut(plan *mirror.Plan, inv *inventory.Inventory) (carry []*mirror.Blob, prereqs []bundle.Prerequisite, mismatches []SizeMismatch) {
	if inv == nil {
		return plan.Blobs, nil, nil
	}
	held := map[string]map[digest.Digest]inventory.Blob{"": inv.BlobSet()}
	for _, r := range inv.Repositories {
		held[r.Path] = r.BlobSet()
	}
	targets := blobTargets(plan)
	for _, b := range plan.Blobs {
		if b.ReleaseFiles {
			carry = append(carry, b)
			continue
		}
		where := targets[b.Digest]
		if len(where) == 0 {
			where = []string{""}
		}
		leave := true
		for _, t := range where {
			h, ok := held[t][b.Digest]
			if ok && h.Size != b.Size {
				mismatches = append(mismatches, SizeMismatch{Digest: b.Digest, Size: b.Size, InventorySize: h.Size})
			}
			leave = leave && ok && h.Size == b.Size
		}
		if !leave {
			carry = append(carry, b)
			continue
		}
		for _, t := range where {
			prereqs = append(prereqs, bundle.Prerequisite{Digest: b.Digest, MediaType: b.MediaType, Size: b.Size, Target: t})
		}
	}
	sort.Slice(prereqs, func(i, j int) bool {
		if prereqs[i].Target != prereqs[j].Target {
			return prereqs[i].Target < prereqs[j].Target
		}
		return prereqs[i].Digest < prereqs[j].Digest
	})
	return carry, prereqs, mismatches
}

// blobTargets maps each blob of the plan's images to the repositories
// (paths under the target, "" for the target itself) those images go to,
// each once, sorted.
func blobTargets(plan *mirror.Plan) map[digest.Digest][]string {
	out := map[digest.Digest][]string{}
	for _, img := range plan.Images {
		for _, d := range img.Blobs {
			if !slices.Contains(out[d], img.Target) {
				out[d] = append(out[d], img.Target)
			}
		}
	}
	for _, t := range out {
		slices.Sort(t)
	}
	return out
}

// MovedTags finds the additional images whose target tag the inventory
// knows naming another manifest than the plan's: the tag moved at the
// source since the inventory was made. It sets their MovedFrom and returns
// them; an inventory that did not read a repository tells nothing of it.
func MovedTags(plan *mirror.Plan, inv *inventory.Inventory) []mirror.Additional {
	if inv == nil {
		return nil
	}
	var moved []mirror.Additional
	for i := range plan.Additional {
		a := &plan.Additional[i]
		if a.TargetTag == "" || a.AlreadyCarried != "" {
			continue
		}
		repo := inv.Repository(a.Target)
		if repo == nil {
			continue
		}
		if held := repo.TagDigest(a.TargetTag); held != "" && held != a.Digest {
			a.MovedFrom = held
			moved = append(moved, *a)
		}
	}
	return moved
}
