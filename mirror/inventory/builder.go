package inventory

import (
	"fmt"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/release"
)

// MaxEntries caps the manifests and blobs a Builder collects: at about 200
// bytes of JSON per blob, an inventory of MaxEntries stays under MaxSize,
// so that whatever Scan builds, Parse reads back (a mirror of many releases
// holds some tens of thousands).
const MaxEntries = 250_000

// EntriesBoundError reports an inventory that would hold more than
// MaxEntries manifests and blobs.
type EntriesBoundError struct {
	// Manifest is the manifest whose entries crossed the bound.
	Manifest digest.Digest
	Limit    int
}

func (e *EntriesBoundError) Error() string {
	return fmt.Sprintf("manifest %s takes the inventory past %d manifests and blobs (the bound inventory.MaxEntries)", e.Manifest, e.Limit)
}

// Builder collects an inventory from manifests as they are read: each
// manifest's digest and the blobs it references. It is safe for
// concurrent use; the zero value is not usable, call NewBuilder.
type Builder struct {
	mu        sync.Mutex
	manifests map[digest.Digest]bool
	blobs     map[digest.Digest]Blob
	releases  map[string]Release // by <version>-<arch>
	// maxEntries replaces MaxEntries when > 0, for tests.
	maxEntries int
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{manifests: map[digest.Digest]bool{}, blobs: map[digest.Digest]Blob{}, releases: map[string]Release{}}
}

// HasManifest reports whether the manifest d was added.
func (b *Builder) HasManifest(d digest.Digest) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.manifests[d]
}

// AddManifest records the manifest data, whose digest must be d, and the
// config and layers it references; for a manifest list it returns the
// child manifests, which the caller reads and adds in turn. Blobs of
// unknown size (Docker schema 1) are not recorded: an inventory only
// claims what it can state exactly.
func (b *Builder) AddManifest(d digest.Digest, mediaType string, data []byte) (children []digest.Digest, err error) {
	if got := digest.FromBytes(data); got != d {
		return nil, fmt.Errorf("manifest %s: the bytes have digest %s", d, got)
	}
	if manifest.MIMETypeIsMultiImage(mediaType) {
		list, err := manifest.ListFromBlob(data, mediaType)
		if err != nil {
			return nil, fmt.Errorf("parse manifest list %s: %w", d, err)
		}
		if err := b.addManifest(d, nil); err != nil {
			return nil, err
		}
		return list.Instances(), nil
	}
	m, err := manifest.FromBlob(data, mediaType)
	if err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", d, err)
	}
	var blobs []Blob
	if cfg := m.ConfigInfo(); cfg.Digest != "" && cfg.Size >= 0 {
		blobs = append(blobs, Blob{Digest: cfg.Digest, Size: cfg.Size, MediaType: cfg.MediaType})
	}
	for _, l := range m.LayerInfos() {
		if l.Size >= 0 {
			blobs = append(blobs, Blob{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType})
		}
	}
	for _, bl := range blobs {
		if err := checkDigest(bl.Digest); err != nil {
			return nil, fmt.Errorf("manifest %s: blob %w", d, err)
		}
	}
	return nil, b.addManifest(d, blobs)
}

func (b *Builder) addManifest(d digest.Digest, blobs []Blob) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := MaxEntries
	if b.maxEntries > 0 {
		limit = b.maxEntries
	}
	if len(b.manifests)+len(b.blobs)+1+len(blobs) > limit {
		return &EntriesBoundError{Manifest: d, Limit: limit}
	}
	b.manifests[d] = true
	for _, bl := range blobs {
		b.addBlob(bl)
	}
	return nil
}

// AddBlob records a blob known to be present without a manifest to show
// for it (a bundle's prerequisites).
func (b *Builder) AddBlob(bl Blob) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addBlob(bl)
}

// addBlob records bl. One layer may be named with a Docker media type in
// one manifest and an OCI one in another: the smaller name is kept, so the
// result does not depend on the order manifests were read in.
func (b *Builder) addBlob(bl Blob) {
	if prior, ok := b.blobs[bl.Digest]; ok && prior.MediaType != "" && (bl.MediaType == "" || prior.MediaType < bl.MediaType) {
		bl.MediaType = prior.MediaType
	}
	b.blobs[bl.Digest] = bl
}

// AddRelease records a release image present under the tag
// <version>-<arch>.
func (b *Builder) AddRelease(version, arch string, d digest.Digest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.releases[version+"-"+arch] = Release{Version: version, Arch: arch, Digest: d}
}

// Inventory returns what was collected, with the given source, created
// now.
func (b *Builder) Inventory(source string) *Inventory {
	b.mu.Lock()
	defer b.mu.Unlock()
	inv := &Inventory{
		FormatVersion: FormatVersion, Kind: Kind, Source: source,
		Created:   time.Now().UTC().Truncate(time.Second),
		Releases:  make([]Release, 0, len(b.releases)),
		Manifests: make([]digest.Digest, 0, len(b.manifests)),
		Blobs:     make([]Blob, 0, len(b.blobs)),
	}
	for _, r := range b.releases {
		inv.Releases = append(inv.Releases, r)
	}
	for d := range b.manifests {
		inv.Manifests = append(inv.Manifests, d)
	}
	for _, bl := range b.blobs {
		inv.Blobs = append(inv.Blobs, bl)
	}
	return inv
}

// FromBundle derives what a mirror holds once the bundle has been applied
// to it: every manifest the bundle carries and every blob they reference
// (carried or prerequisite), its prerequisites, and its releases. Only the
// index and the manifests (in volume 0) are read; each manifest is checked
// against its digest.
func FromBundle(r *bundle.Reader) (*Inventory, error) {
	idx := r.Index()
	b := NewBuilder()
	for _, img := range idx.Images {
		data, err := r.ReadImageManifest(img.Digest)
		if err != nil {
			return nil, err
		}
		if _, err := b.AddManifest(img.Digest, img.MediaType, data); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", idx.ID, err)
		}
	}
	for _, p := range idx.Prerequisites {
		b.AddBlob(Blob{Digest: p.Digest, Size: p.Size, MediaType: p.MediaType})
	}
	for _, rel := range idx.Releases {
		b.AddRelease(rel.Version, rel.Arch, rel.Digest)
	}
	return b.Inventory("bundle " + idx.ID), nil
}

// releaseTag reports whether a tag and the manifest it points at look like
// a release image as ferry (and the documented procedure) tags it:
// <version>-<arch>, a manifest list exactly when the arch is multi.
func releaseTag(tag, mediaType string) (version, arch string, ok bool) {
	version, arch, ok = release.SplitTag(tag)
	if !ok || (arch == release.ArchMulti) != manifest.MIMETypeIsMultiImage(mediaType) {
		return "", "", false
	}
	return version, arch, true
}
