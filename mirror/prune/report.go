package prune

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// ReportFormat is the version of the Report layout.
const ReportFormat = 1

// GarbageCollection says how the blobs a prune leaves unreferenced are
// freed: a registry deletes blobs only in its own garbage collection.
const GarbageCollection = "Blobs are not deleted by a prune: the registry frees the ones no manifest references only when its own garbage collection runs. " +
	"distribution (docker.io/library/registry, docker-registry): stop it or make it read-only, then `registry garbage-collect /etc/docker/registry/config.yml`; " +
	"ferry serve: `ferry serve gc --root DIR` with the registry stopped or read-only; " +
	"Quay: its garbage collection worker frees them on its own once the deleted tags leave the time machine (see docs/prune.md)."

// InventoryNote says what a prune means for `ferry pack --since`.
const InventoryNote = "An inventory written before this prune still claims the deleted releases' blobs, which garbage collection then frees: " +
	"run `ferry inventory` again before the next `ferry pack --since` (an apply of a bundle packed against the old one stops before pushing anything, naming a missing prerequisite)."

// Report is the record a prune writes (ferry prune --report): what it
// deleted, by digest with the tags that went with it, and what became
// reclaimable.
type Report struct {
	Format     int       `json:"format"`
	Repository string    `json:"repository"`
	Time       time.Time `json:"time"`
	// Confirmed is false for a dry run: nothing was deleted, Planned is
	// what a confirmed run would delete.
	Confirmed bool `json:"confirmed"`
	// Complete is true when every planned deletion was done (or, in a
	// dry run, when there was nothing to plan against).
	Complete bool       `json:"complete"`
	Error    string     `json:"error,omitempty"`
	Keep     ReportKeep `json:"keep"`
	// Releases are the release tags the prune removes.
	Releases []string `json:"releases"`
	// Deleted are the manifests deleted, in order; Planned all those the
	// plan deletes.
	Deleted []Deletion `json:"deleted"`
	Planned []Deletion `json:"planned"`
	// Left are the tags that stay and why (LeftKept, LeftForeign, ...).
	Left []LeftTag `json:"left"`
	// Reclaimable are the blobs only deleted manifests reference (of a
	// dry run: only planned ones): freed by the registry's garbage
	// collection unless a manifest the prune could not see uses them.
	Reclaimable ReportReclaimable `json:"reclaimable"`
	// GarbageCollection and Inventory say what to do next.
	GarbageCollection string `json:"garbageCollection"`
	Inventory         string `json:"inventory"`
}

// ReportKeep is what the prune was told to keep.
type ReportKeep struct {
	Versions []string `json:"versions"`
	Bundles  []string `json:"bundles"`
	// Digests counts the manifests the kept bundles hold.
	Digests int `json:"digests"`
}

// ReportReclaimable are the reclaimable blobs and their bytes.
type ReportReclaimable struct {
	Bytes int64  `json:"bytes"`
	Blobs []Blob `json:"blobs"`
}

// NewReport records plan p of snapshot s. deleted are the deletions done
// (nil in a dry run); err the failure that stopped them, if any.
func NewReport(s *Snapshot, p *Plan, k Keep, bundles []string, confirmed bool, deleted []Deletion, err error) *Report {
	r := &Report{Format: ReportFormat, Repository: p.Repository, Time: time.Now().UTC(), Confirmed: confirmed,
		Keep:     ReportKeep{Versions: nonNil(k.Versions), Bundles: nonNil(bundles), Digests: len(k.Digests)},
		Releases: nonNil(p.Releases), Deleted: nonNil(deleted), Planned: nonNil(p.Deletions), Left: nonNil(p.Left),
		GarbageCollection: GarbageCollection, Inventory: InventoryNote}
	r.Complete = err == nil && (!confirmed || len(deleted) == len(p.Deletions))
	if err != nil {
		r.Error = err.Error()
	}
	if confirmed {
		blobs, bytes := Reclaimable(s, deleted, k.Blobs)
		r.Reclaimable = ReportReclaimable{Bytes: bytes, Blobs: nonNil(blobs)}
	} else {
		r.Reclaimable = ReportReclaimable{Bytes: p.ReclaimableBytes, Blobs: nonNil(p.Reclaimable)}
	}
	return r
}

// DeletedDigests are the digests of r's deletions done.
func (r *Report) DeletedDigests() []digest.Digest {
	out := make([]digest.Digest, len(r.Deleted))
	for i, d := range r.Deleted {
		out[i] = d.Digest
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
