// Package inventory records what a mirror registry already holds, so that
// the next bundle can leave it out.
//
// An inventory is a small JSON file (format version 1, kind FerryInventory)
// made on the bastion, by reading the target repository ([Scan]) or from a
// bundle applied there ([FromBundle]), and carried back across the gap to
// `ferry pack --since`. It lists manifest digests, the configs and layers
// those manifests reference (digest, size, media type) and the releases
// tagged <version>-<arch>; and, in Repositories, the same with every tag
// for the repositories under the target that ferry pushes to (additional
// images, the graph-data image). It holds nothing secret: no credentials, no
// host names beyond the source it was read from.
//
// An inventory is a claim, not a proof: a bundle packed against it records
// the blobs it left out as prerequisites, and `ferry apply` checks each of
// them in the target before pushing anything.
package inventory

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/internal/strictjson"
)

const (
	// FormatVersion is the format this package writes and the only one it
	// reads.
	FormatVersion = 1
	// Kind tells an inventory apart from other JSON files.
	Kind = "FerryInventory"
	// MaxSize caps the file a reader accepts: about 300,000 blobs, far
	// more than a mirror of many releases holds.
	MaxSize = 64 << 20

	// maxBlobSize bounds a blob's size (1 EiB), as the bundle index does.
	maxBlobSize = 1 << 60
	// maxTextLength bounds the free-text fields (source, versions, media
	// types).
	maxTextLength = 1024
)

// Inventory is what a mirror repository holds. The zero value is an empty
// inventory; use Marshal to write one and Parse to read one.
type Inventory struct {
	FormatVersion int       `json:"formatVersion"`
	Kind          string    `json:"kind"`
	Created       time.Time `json:"created"`
	// Source names what the inventory was read from: "registry
	// host/repository" or "bundle <id>".
	Source    string          `json:"source"`
	Releases  []Release       `json:"releases"`
	Manifests []digest.Digest `json:"manifests"`
	Blobs     []Blob          `json:"blobs"`
	// Repositories are what repositories under the target hold, by their
	// path under it; absent from inventories made before ferry read them
	// (then nothing is known of them).
	Repositories []Repository `json:"repositories,omitempty"`
}

// Repository is what one repository under the target holds: its tags and
// the manifests and blobs they lead to. A registry looks for a blob in the
// repository a manifest is pushed to, so these blobs count for this
// repository alone.
type Repository struct {
	Path      string          `json:"path"`
	Tags      []Tag           `json:"tags"`
	Manifests []digest.Digest `json:"manifests"`
	Blobs     []Blob          `json:"blobs"`
}

// Tag is a tag and the manifest it named when read.
type Tag struct {
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest"`
}

// Release is a release image present in the mirror.
type Release struct {
	Version string        `json:"version"`
	Arch    string        `json:"arch"`
	Digest  digest.Digest `json:"digest"`
}

// Blob is a config or layer present in the mirror.
type Blob struct {
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType,omitempty"`
}

// Parse reads and checks an inventory: the format version and kind first,
// then strictly (unknown fields refused), every digest a well-formed
// sha256, sizes in range, nothing listed twice. At most MaxSize bytes are
// read.
func Parse(r io.Reader) (*Inventory, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading inventory: %w", err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("inventory is larger than %d bytes", MaxSize)
	}
	// Version and kind first, so that a newer or foreign file is refused
	// for what it is, not for a field this reader does not know.
	var head struct {
		FormatVersion *int    `json:"formatVersion"`
		Kind          *string `json:"kind"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("parsing inventory: %w", err)
	}
	if head.Kind == nil || *head.Kind != Kind {
		return nil, fmt.Errorf("not a ferry inventory: kind must be %q", Kind)
	}
	if head.FormatVersion == nil {
		return nil, errors.New("inventory: formatVersion missing")
	}
	if *head.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("inventory: unsupported formatVersion %d (this ferry reads %d)", *head.FormatVersion, FormatVersion)
	}
	var inv Inventory
	if err := strictjson.Decode(data, &inv); err != nil {
		return nil, fmt.Errorf("parsing inventory: %w", err)
	}
	if err := inv.validate(); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return &inv, nil
}

func (inv *Inventory) validate() error {
	if len(inv.Source) > maxTextLength {
		return fmt.Errorf("source: longer than %d characters", maxTextLength)
	}
	releases := make(map[string]bool, len(inv.Releases))
	for i, r := range inv.Releases {
		if err := checkDigest(r.Digest); err != nil {
			return fmt.Errorf("releases[%d]: %w", i, err)
		}
		if r.Version == "" || r.Arch == "" || len(r.Version) > maxTextLength || len(r.Arch) > maxTextLength {
			return fmt.Errorf("releases[%d]: version and arch required, at most %d characters", i, maxTextLength)
		}
		key := r.Version + "-" + r.Arch
		if releases[key] {
			return fmt.Errorf("releases[%d]: %s listed twice", i, key)
		}
		releases[key] = true
	}
	if err := validateHoldings(inv.Manifests, inv.Blobs); err != nil {
		return err
	}
	paths := make(map[string]bool, len(inv.Repositories))
	for i, r := range inv.Repositories {
		if r.Path == "" || len(r.Path) > maxTextLength || paths[r.Path] {
			return fmt.Errorf("repositories[%d]: path %q empty, longer than %d characters or listed twice", i, r.Path, maxTextLength)
		}
		paths[r.Path] = true
		if err := r.validate(); err != nil {
			return fmt.Errorf("repositories[%d] %s: %w", i, r.Path, err)
		}
	}
	return nil
}

func (r *Repository) validate() error {
	tags := make(map[string]bool, len(r.Tags))
	for i, t := range r.Tags {
		if t.Name == "" || len(t.Name) > maxTextLength || tags[t.Name] {
			return fmt.Errorf("tags[%d]: %q empty, longer than %d characters or listed twice", i, t.Name, maxTextLength)
		}
		tags[t.Name] = true
		if err := checkDigest(t.Digest); err != nil {
			return fmt.Errorf("tags[%d] %s: %w", i, t.Name, err)
		}
	}
	return validateHoldings(r.Manifests, r.Blobs)
}

// validateHoldings checks manifests and blobs: well-formed, in range, each
// listed once.
func validateHoldings(ms []digest.Digest, bs []Blob) error {
	manifests := make(map[digest.Digest]bool, len(ms))
	for i, d := range ms {
		if err := checkDigest(d); err != nil {
			return fmt.Errorf("manifests[%d]: %w", i, err)
		}
		if manifests[d] {
			return fmt.Errorf("manifests[%d]: %s listed twice", i, d)
		}
		manifests[d] = true
	}
	blobs := make(map[digest.Digest]bool, len(bs))
	for i, b := range bs {
		if err := checkDigest(b.Digest); err != nil {
			return fmt.Errorf("blobs[%d]: %w", i, err)
		}
		if b.Size < 0 || b.Size > maxBlobSize {
			return fmt.Errorf("blobs[%d] %s: size %d out of range", i, b.Digest, b.Size)
		}
		if len(b.MediaType) > maxTextLength {
			return fmt.Errorf("blobs[%d] %s: media type longer than %d characters", i, b.Digest, maxTextLength)
		}
		if blobs[b.Digest] {
			return fmt.Errorf("blobs[%d]: %s listed twice", i, b.Digest)
		}
		blobs[b.Digest] = true
	}
	return nil
}

// checkDigest accepts only well-formed sha256 digests, the only kind a
// bundle stores.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%q: only sha256 digests are supported", d)
	}
	return nil
}

// Marshal returns the inventory as indented JSON, lists sorted, with the
// format version and kind set: the same holdings always give the same bytes
// but for Created.
func (inv *Inventory) Marshal() ([]byte, error) {
	out := *inv
	out.FormatVersion, out.Kind = FormatVersion, Kind
	out.Releases = sortedCopy(inv.Releases, func(a, b Release) int {
		return cmp.Or(cmp.Compare(a.Version, b.Version), cmp.Compare(a.Arch, b.Arch))
	})
	out.Manifests = sortedCopy(inv.Manifests, func(a, b digest.Digest) int { return cmp.Compare(a, b) })
	out.Blobs = sortedCopy(inv.Blobs, func(a, b Blob) int { return cmp.Compare(a.Digest, b.Digest) })
	if len(inv.Repositories) > 0 {
		out.Repositories = sortedCopy(inv.Repositories, func(a, b Repository) int { return cmp.Compare(a.Path, b.Path) })
		for i, r := range out.Repositories {
			r.Tags = sortedCopy(r.Tags, func(a, b Tag) int { return cmp.Compare(a.Name, b.Name) })
			r.Manifests = sortedCopy(r.Manifests, func(a, b digest.Digest) int { return cmp.Compare(a, b) })
			r.Blobs = sortedCopy(r.Blobs, func(a, b Blob) int { return cmp.Compare(a.Digest, b.Digest) })
			out.Repositories[i] = r
		}
	}
	if err := out.validate(); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	data, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// sortedCopy returns a sorted copy of list, never nil (so JSON has []).
func sortedCopy[T any](list []T, compare func(a, b T) int) []T {
	out := append(make([]T, 0, len(list)), list...)
	slices.SortFunc(out, compare)
	return out
}

// BlobSet returns the inventory's blobs (the target repository's) by
// digest.
func (inv *Inventory) BlobSet() map[digest.Digest]Blob {
	return blobSet(inv.Blobs)
}

func blobSet(blobs []Blob) map[digest.Digest]Blob {
	set := make(map[digest.Digest]Blob, len(blobs))
	for _, b := range blobs {
		set[b.Digest] = b
	}
	return set
}

// Repository is what the inventory knows of the repository at path under
// the target, or nil when it was not read.
func (inv *Inventory) Repository(path string) *Repository {
	for i := range inv.Repositories {
		if inv.Repositories[i].Path == path {
			return &inv.Repositories[i]
		}
	}
	return nil
}

// BlobSet returns the repository's blobs by digest.
func (r *Repository) BlobSet() map[digest.Digest]Blob { return blobSet(r.Blobs) }

// TagDigest is the manifest the tag named when the repository was read,
// or "" when it had no such tag.
func (r *Repository) TagDigest(tag string) digest.Digest {
	for _, t := range r.Tags {
		if t.Name == tag {
			return t.Digest
		}
	}
	return ""
}

// Bytes is the total size of the inventory's blobs.
func (inv *Inventory) Bytes() int64 {
	var n int64
	for _, b := range inv.Blobs {
		n += b.Size
	}
	return n
}
