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
	tags      map[string]digest.Digest
	// maxEntries replaces MaxEntries when > 0, for tests.
	maxEntries int
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{manifests: map[digest.Digest]bool{}, blobs: map[digest.Digest]Blob{}, releases: map[string]Release{},
		tags: map[string]digest.Digest{}}
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

// AddTag records that tag names the manifest d. Only a Repository
// lists tags.
func (b *Builder) AddTag(tag string, d digest.Digest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tags[tag] = d
}

// Repository returns what was collected as the repository at path under
// the target: tags, manifests and blobs (releases are not kept).
func (b *Builder) Repository(path string) Repository {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := Repository{Path: path, Tags: make([]Tag, 0, len(b.tags)), Manifests: make([]digest.Digest, 0, len(b.manifests)),
		Blobs: make([]Blob, 0, len(b.blobs))}
	for name, d := range b.tags {
		r.Tags = append(r.Tags, Tag{Name: name, Digest: d})
	}
	for d := range b.manifests {
		r.Manifests = append(r.Manifests, d)
	}
	for _, bl := range b.blobs {
		r.Blobs = append(r.Blobs, bl)
	}
	return r
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
// (carried or prerequisite), its prerequisites, and its releases; the
// images under a path of the target (Image.Target) in the Repositories,
// with their tags. Only the index and the manifests (in volume 0) are
// read; each manifest is checked against its digest.
func FromBundle(r *bundle.Reader) (*Inventory, error) {
	idx := r.Index()
	root := NewBuilder()
	under := map[string]*Builder{}
	for _, img := range idx.Images {
		b := root
		if img.Target != "" {
			if b = under[img.Target]; b == nil {
				b = NewBuilder()
				under[img.Target] = b
			}
			for _, tag := range img.Tags {
				b.AddTag(tag, img.Digest)
			}
		}
		data, err := r.ReadImageManifest(img.Digest)
		if err != nil {
			return nil, err
		}
		if _, err := b.AddManifest(img.Digest, img.MediaType, data); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", idx.ID, err)
		}
	}
	for _, p := range idx.Prerequisites {
		b := root
		if p.Target != "" {
			if b = under[p.Target]; b == nil {
				continue // no image of the bundle goes there: nothing was pushed
			}
		}
		b.AddBlob(Blob{Digest: p.Digest, Size: p.Size, MediaType: p.MediaType})
	}
	for _, rel := range idx.Releases {
		root.AddRelease(rel.Version, rel.Arch, rel.Digest)
	}
	inv := root.Inventory("bundle " + idx.ID)
	for path, b := range under {
		inv.Repositories = append(inv.Repositories, b.Repository(path))
	}
	return inv, nil
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
