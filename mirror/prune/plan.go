// Package prune removes from a mirror repository the releases no cluster
// needs any more: the tags ferry wrote for them, and the manifests only
// those tags lead to. It reads what the repository holds (Read), decides
// what to delete (Compute: a pure function of what was read and what to
// keep), and deletes it (Delete), lists before their children. It never
// deletes a manifest that anything kept references, never a manifest a
// tag of a form ferry does not write points at, and never a blob: a
// registry frees blobs only in its own garbage collection, which Plan's
// Reclaimable tells the size of.
package prune

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/bundle"
)

// Blob is a config or layer a manifest references.
type Blob struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

// Manifest is one manifest read from the repository.
type Manifest struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
	// Children are a list's manifests; Blobs a single image's config and
	// layers.
	Children []digest.Digest
	Blobs    []Blob
}

// IsList reports whether m is a manifest list or image index.
func (m *Manifest) IsList() bool { return manifest.MIMETypeIsMultiImage(m.MediaType) }

// Snapshot is what one repository held when read: every tag, and every
// manifest a tag leads to (lists' children included).
type Snapshot struct {
	// Repository is host/path.
	Repository string
	Tags       map[string]digest.Digest
	Manifests  map[digest.Digest]*Manifest
}

// Keep is what must stay.
type Keep struct {
	// Versions are release versions ("4.16.3"): their release and
	// component tags stay, on every arch.
	Versions []string
	// Digests are manifests that stay whether or not a tag leads to them
	// (a kept bundle's images), Blobs the blobs those use.
	Digests []digest.Digest
	Blobs   []digest.Digest
}

// KeepBundle is what a bundle applied to the repository needs: its
// releases' versions and every manifest it pushed there (those with no
// Target), with their blobs. Images it pushed under other repositories
// are not in this one.
func KeepBundle(idx *bundle.Index) Keep {
	var k Keep
	for _, r := range idx.Releases {
		k.Versions = append(k.Versions, r.Version)
	}
	for _, img := range idx.Images {
		if img.Target != "" {
			continue
		}
		k.Digests = append(k.Digests, img.Digest)
		k.Blobs = append(k.Blobs, img.Blobs...)
	}
	return k
}

// Reasons a tag is left, as Plan.Left gives them.
const (
	// LeftKept is a tag of a kept release.
	LeftKept = "kept"
	// LeftShared is a tag of a release not kept whose manifest stays,
	// because a kept item references it too: a delete by digest would
	// take the kept item's tag with it, and the tag alone costs nothing.
	LeftShared = "its manifest stays for a kept item"
	// LeftSignature is a signature tag of a manifest that stays.
	LeftSignature = "signature of a manifest that stays"
	// LeftCatalog is a rebuilt catalog's tag: prune removes releases only.
	LeftCatalog = "catalog: prune removes releases only"
	// LeftForeign is a tag whose form ferry never writes.
	LeftForeign = "not ferry's"
)

// Deletion is one manifest to delete, with the tags that go with it.
type Deletion struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	// Tags point at it now; empty for a list's child.
	Tags []string `json:"tags"`
}

// LeftTag is a tag that stays, and why.
type LeftTag struct {
	Tag    string        `json:"tag"`
	Digest digest.Digest `json:"digest"`
	Reason string        `json:"reason"`
}

// Plan is what a prune deletes and what it leaves.
type Plan struct {
	Repository string
	// Releases are the release tags that go, sorted.
	Releases []string
	// Deletions in the order to delete them: lists before their children,
	// manifests a release tag points at before the rest, signatures last.
	Deletions []Deletion
	// Left are every tag of the repository that stays, sorted.
	Left []LeftTag
	// Reclaimable are the blobs only deleted manifests reference: the
	// registry's garbage collection frees them, unless a manifest this
	// prune could not see (another repository's, or one no tag leads to)
	// uses them too.
	Reclaimable      []Blob
	ReclaimableBytes int64
}

// NoReleaseError is a version to keep that the repository holds no
// release tag of: most likely a typo, which would delete that release.
type NoReleaseError struct {
	Repository string
	Version    string
	// Releases are the release tags the repository holds.
	Releases []string
}

func (e *NoReleaseError) Error() string {
	return fmt.Sprintf("%s holds no release %s (no tag %s-<arch>); its releases: %v", e.Repository, e.Version, e.Version, e.Releases)
}

// Compute decides what a prune of s keeping k deletes. Every tag of a
// release or component of a version not kept is removable; a signature
// tag is removable when the manifest it signs is deleted. Every other tag
// stays, and with it the manifest it points at, that manifest's children,
// and k's manifests. What is removable and not kept is deleted. Each of
// k.Versions must have a release tag in s.
func Compute(s *Snapshot, k Keep) (*Plan, error) {
	kept := map[string]bool{}
	for _, v := range k.Versions {
		kept[v] = true
	}
	if err := checkVersions(s, k.Versions); err != nil {
		return nil, err
	}
	parsed := make(map[string]Tag, len(s.Tags))
	var removable []string // release and component tags of versions not kept
	for tag := range s.Tags {
		t := ParseTag(tag)
		parsed[tag] = t
		if (t.Kind == ReleaseTag || t.Kind == ComponentTag) && !kept[t.Version] {
			removable = append(removable, tag)
		}
	}
	c := &computation{s: s, parsed: parsed, removable: map[string]bool{}}
	for _, tag := range removable {
		c.removable[tag] = true
	}
	c.extraKept = k.Digests
	c.settle()
	p := &Plan{Repository: s.Repository}
	p.Deletions = c.deletions()
	p.Left = c.left(kept)
	p.Reclaimable, p.ReclaimableBytes = reclaimable(s, c.deleted, k.Blobs)
	for _, tag := range removable {
		if parsed[tag].Kind == ReleaseTag && c.deleted[s.Tags[tag]] {
			p.Releases = append(p.Releases, tag)
		}
	}
	slices.Sort(p.Releases)
	return p, nil
}

func checkVersions(s *Snapshot, versions []string) error {
	held := map[string]bool{}
	var releases []string
	for tag := range s.Tags {
		if t := ParseTag(tag); t.Kind == ReleaseTag {
			held[t.Version] = true
			releases = append(releases, tag)
		}
	}
	slices.Sort(releases)
	for _, v := range versions {
		if !held[v] {
			return &NoReleaseError{Repository: s.Repository, Version: v, Releases: releases}
		}
	}
	return nil
}

// computation is the state of one Compute.
type computation struct {
	s         *Snapshot
	parsed    map[string]Tag
	removable map[string]bool
	extraKept []digest.Digest
	kept      map[digest.Digest]bool
	deleted   map[digest.Digest]bool
}

// maxSignatureRounds bounds settle's rounds. Round one deletes what the
// removable release tags lead to, round two the signatures of those;
// each further round reaches one level deeper in signatures of
// signatures, which cosign does not make. A signature past the bound
// stays, which only keeps more, and a registry crafted with a chain of
// them cannot make the computation quadratic in its tags.
const maxSignatureRounds = 4

// settle finds what is deleted: a signature tag is removable when what it
// signs is deleted, and what is deleted depends on which tags stay.
func (c *computation) settle() {
	for range maxSignatureRounds {
		c.kept = map[digest.Digest]bool{}
		var roots []digest.Digest
		for tag, d := range c.s.Tags {
			if !c.removable[tag] {
				roots = append(roots, d)
			}
		}
		c.close(c.kept, append(roots, c.extraKept...))
		c.deleted = map[digest.Digest]bool{}
		var doomed []digest.Digest
		for tag := range c.removable {
			doomed = append(doomed, c.s.Tags[tag])
		}
		c.close(c.deleted, doomed)
		for d := range c.kept {
			delete(c.deleted, d)
		}
		changed := false
		for tag, t := range c.parsed {
			if t.Kind == SignatureTag && !c.removable[tag] && c.deleted[t.Signs] {
				c.removable[tag] = true
				changed = true
			}
		}
		if !changed {
			return
		}
	}
	// Out of rounds: kept and deleted are those of the last round, in
	// which the signature tags it then found removable still stood, so
	// they and what they lead to stay.
}

// close adds to set the manifests of from and, for lists, their children.
func (c *computation) close(set map[digest.Digest]bool, from []digest.Digest) {
	for len(from) > 0 {
		d := from[len(from)-1]
		from = from[:len(from)-1]
		if set[d] {
			continue
		}
		set[d] = true
		if m, ok := c.s.Manifests[d]; ok {
			from = append(from, m.Children...)
		}
	}
}

// deletions lists the deleted manifests in the order to delete them, so
// that a prune stopped midway never leaves a tag that looks kept naming
// an image whose parts are gone: manifests a release tag names first
// (lists before single images), then other lists, then the other images,
// then signatures. Ties go by digest, so the order is stable.
func (c *computation) deletions() []Deletion {
	tagsOf := map[digest.Digest][]string{}
	for tag, d := range c.s.Tags {
		if c.deleted[d] {
			tagsOf[d] = append(tagsOf[d], tag)
		}
	}
	rank := func(d digest.Digest) int {
		m := c.s.Manifests[d]
		isList := m != nil && m.IsList()
		hasRelease, onlySignatures := false, len(tagsOf[d]) > 0
		for _, tag := range tagsOf[d] {
			kind := c.parsed[tag].Kind
			hasRelease = hasRelease || kind == ReleaseTag
			onlySignatures = onlySignatures && kind == SignatureTag
		}
		switch {
		case hasRelease && isList:
			return 0
		case hasRelease:
			return 1
		case isList:
			return 2
		case onlySignatures:
			return 4
		}
		return 3
	}
	var out []Deletion
	for _, d := range slices.Sorted(maps.Keys(c.deleted)) {
		del := Deletion{Digest: d, Tags: tagsOf[d]}
		if del.Tags == nil {
			del.Tags = []string{}
		}
		slices.Sort(del.Tags)
		if m := c.s.Manifests[d]; m != nil {
			del.MediaType, del.Size = m.MediaType, m.Size
		}
		out = append(out, del)
	}
	slices.SortStableFunc(out, func(a, b Deletion) int { return rank(a.Digest) - rank(b.Digest) })
	return out
}

// left lists every tag that stays, with why.
func (c *computation) left(keptVersions map[string]bool) []LeftTag {
	var out []LeftTag
	for tag, d := range c.s.Tags {
		if c.deleted[d] {
			continue
		}
		reason := LeftKept
		switch t := c.parsed[tag]; t.Kind {
		case ReleaseTag, ComponentTag:
			if !keptVersions[t.Version] {
				reason = LeftShared
			}
		case Foreign:
			reason = LeftForeign
		case CatalogTag:
			reason = LeftCatalog
		case SignatureTag:
			reason = LeftSignature
		}
		out = append(out, LeftTag{Tag: tag, Digest: d, Reason: reason})
	}
	slices.SortFunc(out, func(a, b LeftTag) int { return cmp.Compare(a.Tag, b.Tag) })
	return out
}

// Reclaimable are the blobs the deleted manifests of s reference that no
// other manifest of s does, nor keptBlobs, by digest, and their bytes.
func Reclaimable(s *Snapshot, deleted []Deletion, keptBlobs []digest.Digest) ([]Blob, int64) {
	gone := make(map[digest.Digest]bool, len(deleted))
	for _, d := range deleted {
		gone[d.Digest] = true
	}
	return reclaimable(s, gone, keptBlobs)
}

func reclaimable(s *Snapshot, deleted map[digest.Digest]bool, keptBlobs []digest.Digest) ([]Blob, int64) {
	used := map[digest.Digest]bool{}
	for _, d := range keptBlobs {
		used[d] = true
	}
	for d, m := range s.Manifests {
		if !deleted[d] {
			for _, b := range m.Blobs {
				used[b.Digest] = true
			}
		}
	}
	freed := map[digest.Digest]int64{}
	for d := range deleted {
		if m := s.Manifests[d]; m != nil {
			for _, b := range m.Blobs {
				if !used[b.Digest] {
					freed[b.Digest] = b.Size
				}
			}
		}
	}
	var out []Blob
	var total int64
	for _, d := range slices.Sorted(maps.Keys(freed)) {
		out = append(out, Blob{Digest: d, Size: freed[d]})
		total += freed[d]
	}
	return out, total
}
