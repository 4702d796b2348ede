// Package bundle reads, writes and verifies ferry bundles: one or more tar
// volumes holding an OCI image layout, release signatures, their ConfigMaps
// and an index (docs/design.md, "The bundle"). It knows nothing about
// registries or releases beyond the index's records.
package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/internal/strictjson"
)

const (
	// FormatVersion is the index format this package writes and the only one
	// it reads.
	FormatVersion = 1
	// IndexName is the index's entry name: the last entry of volume 0.
	IndexName = "ferry-index.json"
	// VolumeMarkerName is the first entry of every volume, naming the bundle
	// and the volume's number.
	VolumeMarkerName = "ferry-volume.json"
	// SelfName is where a bundle may carry the ferry binary that made it, at
	// the top of volume 0 and executable, so that `tar -xf bundle.tar ferry`
	// gives the bastion the very version that wrote the bundle.
	SelfName = "ferry"
	// SelfSignatureName is the detached OpenPGP signature of SelfName in a
	// signed bundle, beside it, so that `gpg --verify ferry.asc ferry`
	// checks the binary before anyone runs it.
	SelfSignatureName = "ferry.asc"
	// IndexSignatureName is the detached OpenPGP signature of the index in
	// a signed bundle: the entry right after the index, the last of volume
	// 0. The index cannot list it (it signs the index), so it is the one
	// entry besides the index that the index does not name.
	IndexSignatureName = "ferry-index.json.asc"
	// MaxIndexSignatureSize caps the index signature a reader accepts; an
	// armored OpenPGP signature is under 2 KiB.
	MaxIndexSignatureSize = 64 << 10
	// MaxIndexSize caps the index a reader accepts: large enough for
	// hundreds of thousands of files, small enough to hold in memory.
	MaxIndexSize = 64 << 20

	// maxOffset bounds every size and offset in an index (1 EiB) so that
	// sums of a few of them can never overflow an int64.
	maxOffset = 1 << 60
)

// Image roles as written in Image.Role.
const (
	RoleRelease    = "release"
	RoleComponent  = "component"
	RoleChild      = "child"
	RoleSigstore   = "sigstore"
	RoleCatalog    = "catalog"    // an operator catalog, rebuilt with the selected packages
	RoleOperator   = "operator"   // a bundle or related image a catalog names
	RoleAdditional = "additional" // an image the packer named (additionalImages)
	RoleGraphData  = "graph-data" // the update service's graph-data image
)

// Index is the bundle's table of contents (ferry-index.json). The writer
// fills ID, Files and Volumes (and FormatVersion and Created when unset);
// the caller fills the rest.
type Index struct {
	FormatVersion int       `json:"formatVersion"`
	ID            string    `json:"id"`
	Created       time.Time `json:"created"`
	Tool          Tool      `json:"tool"`
	// Options records how the bundle was made; never secrets.
	Options  json.RawMessage `json:"options,omitempty"`
	Releases []Release       `json:"releases"`
	Images   []Image         `json:"images"`
	Files    []File          `json:"files"`
	Volumes  []Volume        `json:"volumes"`
	// Prerequisites are blobs an incremental bundle leaves out because the
	// target already holds them; manifests may reference them.
	Prerequisites []Prerequisite `json:"prerequisites,omitempty"`
	// UpdatePath lists the versions an incremental bundle steps through.
	UpdatePath []string `json:"updatePath,omitempty"`
	// Sigstore records what the packer proved of the cosign signatures
	// the releases' image policies demand; nil in bundles made before.
	Sigstore *Sigstore `json:"sigstore,omitempty"`
	// Catalogs are the operator catalogs carried; nil in bundles made
	// before ferry carried them.
	Catalogs []Catalog `json:"catalogs,omitempty"`
	// Additional are the additional images the packer named, Blocked the
	// ones blockedImages left out.
	Additional []AdditionalImage `json:"additionalImages,omitempty"`
	Blocked    []BlockedImage    `json:"blockedImages,omitempty"`
	// KubeVirt are the RHCOS KubeVirt containers carried with releases.
	KubeVirt []KubeVirtImage `json:"kubeVirt,omitempty"`
	// GraphData is the update service's graph-data image, when carried.
	GraphData *GraphData `json:"graphData,omitempty"`
}

// AdditionalImage is an image carried because the packer named it: Ref as
// named, the tag it had and the digest it named when packed, and where in
// the mirror it goes (Target under apply's target, TargetTag). Narrowed to
// Platforms, Digest is the rewritten list carried (its own digest: pulls
// of SourceDigest do not find it) and SourceDigest what Ref named.
type AdditionalImage struct {
	Ref          string        `json:"ref"`
	Source       string        `json:"source"`
	Tag          string        `json:"tag,omitempty"`
	Digest       digest.Digest `json:"digest"`
	SourceDigest digest.Digest `json:"sourceDigest,omitempty"`
	Platforms    []string      `json:"platforms,omitempty"`
	Target       string        `json:"target"`
	TargetTag    string        `json:"targetTag,omitempty"`
	// AlreadyCarried names the role of the same image carried for a
	// release or catalog.
	AlreadyCarried string `json:"alreadyCarried,omitempty"`
	// MovedFrom is the manifest the inventory the bundle was packed
	// against (--since) saw under Target:TargetTag, when it is another
	// than Digest: the tag moved between packs.
	MovedFrom digest.Digest `json:"movedFrom,omitempty"`
}

// BlockedImage is an additional image a blockedImages pattern left out.
type BlockedImage struct {
	Ref     string `json:"ref"`
	Pattern string `json:"pattern"`
}

// KubeVirtImage is the RHCOS KubeVirt container a release's
// coreos-bootimages manifest names, carried under Tag.
type KubeVirtImage struct {
	Release string        `json:"release"`
	Arch    string        `json:"arch"`
	Ref     string        `json:"ref"`
	Source  string        `json:"source"`
	Digest  digest.Digest `json:"digest"`
	Tag     string        `json:"tag"`
}

// GraphData is the update service's graph-data image: the graph data's
// version and the releases its channels name, the base it was built on,
// and the image (Source@Digest among Images, going to Target).
type GraphData struct {
	Version  string        `json:"version"`
	Releases []string      `json:"releases"`
	Base     string        `json:"base"`
	Source   string        `json:"source"`
	Digest   digest.Digest `json:"digest"`
	Target   string        `json:"target"`
	Tag      string        `json:"tag"`
}

// Catalog is one operator catalog the bundle carries: the source catalog
// rebuilt with the packages selected (the image Source@Digest among
// Images), and every image its kept bundles name. Only the bundle signature
// covers it: no release signature names a catalog.
type Catalog struct {
	// Ref is the catalog as selected, SourceDigest the manifest read.
	Ref          string        `json:"ref"`
	SourceDigest digest.Digest `json:"sourceDigest"`
	// Source and Digest name the rebuilt image; Tag is its target tag.
	Source string        `json:"source"`
	Digest digest.Digest `json:"digest"`
	Tag    string        `json:"tag"`
	// ConfigsDir is where the image holds its catalog ("/configs");
	// FBCLayer is the layer holding the filtered catalog, on every
	// platform, always carried.
	ConfigsDir string        `json:"configsDir"`
	FBCLayer   digest.Digest `json:"fbcLayer"`
	// Filter is the selection in one line.
	Filter   string           `json:"filter"`
	Packages []CatalogPackage `json:"packages"`
	Images   []CatalogImage   `json:"images"`
	// ImageSignatures counts what the vendor's lookaside stores said of
	// Images when packed: signed under the release keyring, unsigned, or
	// in no registry with a store. It informs; the bundle signature
	// covers the images.
	ImageSignatures *CatalogImageSignatures `json:"imageSignatures,omitempty"`
}

// CatalogImageSignatures is the packer's account of a catalog's image
// signatures.
type CatalogImageSignatures struct {
	Signed   int `json:"signed"`
	Unsigned int `json:"unsigned"`
	NoStore  int `json:"noStore"`
}

// CatalogPackage is one kept package and why it is kept.
type CatalogPackage struct {
	Name string `json:"name"`
	// Selected is false for a package only dependencies brought in.
	Selected                    bool             `json:"selected"`
	DefaultChannel              string           `json:"defaultChannel"`
	DefaultChannelRewrittenFrom string           `json:"defaultChannelRewrittenFrom,omitempty"`
	Channels                    []CatalogChannel `json:"channels"`
	// DependenciesAdded says, per bundle added, what required it.
	DependenciesAdded      []string `json:"dependenciesAdded,omitempty"`
	DependenciesUnresolved []string `json:"dependenciesUnresolved,omitempty"`
}

// CatalogChannel is one kept channel.
type CatalogChannel struct {
	Name                string   `json:"name"`
	Head                string   `json:"head"`
	VersionRange        string   `json:"versionRange,omitempty"`
	Bundles             []string `json:"bundles"`
	KeptForConnectivity []string `json:"keptForConnectivity,omitempty"`
	NoUpgradePath       []string `json:"noUpgradePath,omitempty"`
}

// CatalogImage is an image the kept bundles name: Ref as the catalog
// names it (what the cluster pulls), Source@Digest what it resolved to.
type CatalogImage struct {
	Ref    string        `json:"ref"`
	Source string        `json:"source"`
	Digest digest.Digest `json:"digest"`
}

// Sigstore is the packer's record of the releases' image policies and of
// the signatures checked under them. It informs; apply proves again from
// the release images and signature images the bundle carries.
type Sigstore struct {
	// Mode is required, best-effort or off.
	Mode     string           `json:"mode"`
	Policies []SigstorePolicy `json:"policies,omitempty"`
	// Checked counts the images in a policy's scope.
	Checked int           `json:"checked"`
	Gaps    []SigstoreGap `json:"gaps,omitempty"`
}

// SigstorePolicy is one ClusterImagePolicy or ImagePolicy a release ships.
type SigstorePolicy struct {
	Release     digest.Digest `json:"release"`
	Kind        string        `json:"kind"`
	Namespace   string        `json:"namespace,omitempty"`
	Name        string        `json:"name"`
	File        string        `json:"file"`
	Scopes      []string      `json:"scopes"`
	RootOfTrust string        `json:"rootOfTrust"`
	MatchPolicy string        `json:"matchPolicy"`
	// KeySHA256 is the SHA-256 of the policy's public key (DER), hex.
	KeySHA256 string `json:"keySHA256,omitempty"`
}

// SigstoreGap is an image in a policy's scope that lacks a signature the
// cluster's nodes accept (recorded in best-effort mode).
type SigstoreGap struct {
	Name       string        `json:"name"`
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
	Unsigned   bool          `json:"unsigned,omitempty"`
	Reason     string        `json:"reason"`
}

// Tool names the program that made the bundle.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// Release is one OpenShift release carried by the bundle.
type Release struct {
	Version   string        `json:"version"`
	Arch      string        `json:"arch"`
	Source    string        `json:"source"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Tag       string        `json:"tag"`
	// Unsigned is true when the release was packed without signatures.
	Unsigned   bool               `json:"unsigned"`
	Signatures []ReleaseSignature `json:"signatures"`
	// ConfigMap is the file name of the signature ConfigMap; empty when
	// the release is unsigned.
	ConfigMap  string      `json:"configMap,omitempty"`
	Components []Component `json:"components"`
}

// ReleaseSignature is one verified signature file of a release.
type ReleaseSignature struct {
	File           string `json:"file"`
	KeyFingerprint string `json:"keyFingerprint"`
	Identity       string `json:"identity"`
	Creator        string `json:"creator"`
}

// Component is one entry of a release's image-references.
type Component struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// Image is one manifest (or manifest list) in the bundle.
type Image struct {
	Source    string          `json:"source"`
	Digest    digest.Digest   `json:"digest"`
	MediaType string          `json:"mediaType"`
	Size      int64           `json:"size"`
	Tags      []string        `json:"tags,omitempty"`
	Role      string          `json:"role"`
	Children  []digest.Digest `json:"children,omitempty"`
	Blobs     []digest.Digest `json:"blobs,omitempty"`
	// Target is the repository path under apply's target repository the
	// image goes to; empty for the target itself.
	Target string `json:"target,omitempty"`
}

// File is one entry of a volume. Offset is where its data starts in the
// volume, after its tar header.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Volume int    `json:"volume"`
	Offset int64  `json:"offset"`
}

// Volume is one tar file of the bundle. Size is the file's length in bytes;
// it is zero (absent) for volume 0, which holds the index and so cannot
// state its own length.
type Volume struct {
	Name string `json:"name"`
	Size int64  `json:"size,omitempty"`
}

// Prerequisite is a blob an incremental bundle expects in the target
// repository or, with Target, in the repository at that path under it: a
// registry finds a blob only in the repository a manifest is pushed to, so
// a blob left out for two repositories is listed once for each.
type Prerequisite struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Target    string        `json:"target,omitempty"`
}

// ParseIndex reads and validates an index: unknown fields, unknown format
// versions, unsafe or duplicated names, impossible offsets and overlapping
// files are refused. At most MaxIndexSize bytes are read.
func ParseIndex(r io.Reader) (*Index, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	if len(data) > MaxIndexSize {
		return nil, fmt.Errorf("index is larger than %d bytes", MaxIndexSize)
	}
	// The version is checked first so that a newer index is refused for
	// its version, not for a field this reader does not know.
	var v struct {
		FormatVersion *int `json:"formatVersion"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("parsing index: %w", err)
	}
	if v.FormatVersion == nil {
		return nil, errors.New("index: formatVersion missing")
	}
	if *v.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("index: unsupported formatVersion %d (this ferry reads %d)", *v.FormatVersion, FormatVersion)
	}
	var idx Index
	if err := strictjson.Decode(data, &idx); err != nil {
		return nil, fmt.Errorf("parsing index: %w", err)
	}
	if err := idx.validate(); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	return &idx, nil
}

func (idx *Index) validate() error {
	if !validID(idx.ID) {
		return fmt.Errorf("id %q: want 1 to 128 characters of [A-Za-z0-9._-]", idx.ID)
	}
	if len(idx.Options) > 0 && (idx.Options[0] != '{' && string(idx.Options) != "null") {
		return errors.New("options: not a JSON object")
	}
	if err := validateVolumes(idx.Volumes); err != nil {
		return err
	}
	if err := validateFiles(idx.Files, len(idx.Volumes)); err != nil {
		return err
	}
	for i := range idx.Releases {
		if err := idx.Releases[i].validate(); err != nil {
			return fmt.Errorf("releases[%d]: %w", i, err)
		}
	}
	for i := range idx.Images {
		if err := idx.Images[i].validate(); err != nil {
			return fmt.Errorf("images[%d] %s: %w", i, idx.Images[i].Digest, err)
		}
	}
	if g := idx.GraphData; g != nil {
		if err := checkDigest(g.Digest); err != nil {
			return fmt.Errorf("graphData: digest: %w", err)
		}
	}
	for i, a := range idx.Additional {
		if err := checkDigest(a.Digest); err != nil {
			return fmt.Errorf("additionalImages[%d] %s: digest: %w", i, a.Ref, err)
		}
		for field, d := range map[string]digest.Digest{"sourceDigest": a.SourceDigest, "movedFrom": a.MovedFrom} {
			if d == "" {
				continue
			}
			if err := checkDigest(d); err != nil {
				return fmt.Errorf("additionalImages[%d] %s: %s: %w", i, a.Ref, field, err)
			}
		}
	}
	for i, k := range idx.KubeVirt {
		if err := checkDigest(k.Digest); err != nil {
			return fmt.Errorf("kubeVirt[%d] %s: digest: %w", i, k.Ref, err)
		}
	}
	for i := range idx.Catalogs {
		if err := idx.Catalogs[i].validate(); err != nil {
			return fmt.Errorf("catalogs[%d] %s: %w", i, idx.Catalogs[i].Ref, err)
		}
	}
	if err := validatePrerequisites(idx.Prerequisites); err != nil {
		return err
	}
	if err := checkConsistentDigests(idx); err != nil {
		return err
	}
	for i, v := range idx.UpdatePath {
		if v == "" {
			return fmt.Errorf("updatePath[%d]: empty", i)
		}
	}
	return nil
}

func validateVolumes(vols []Volume) error {
	if len(vols) == 0 {
		return errors.New("volumes: none")
	}
	seen := make(map[string]int, len(vols))
	for i, v := range vols {
		if !validVolumeName(v.Name) {
			return fmt.Errorf("volumes[%d]: invalid name %q", i, v.Name)
		}
		if j, ok := seen[v.Name]; ok {
			return fmt.Errorf("volumes[%d]: name %q already used by volume %d", i, v.Name, j)
		}
		seen[v.Name] = i
		if v.Size < 0 || v.Size > maxOffset {
			return fmt.Errorf("volumes[%d] %s: size %d out of range", i, v.Name, v.Size)
		}
		if i == 0 && v.Size != 0 {
			return fmt.Errorf("volumes[0] %s: volume 0 cannot state its size", v.Name)
		}
	}
	return nil
}

func validateFiles(files []File, nvol int) error {
	byVolume := make([][]File, nvol)
	names := make(map[string]bool, len(files))
	markers := make([]bool, nvol)
	for i, f := range files {
		if err := f.validate(nvol); err != nil {
			return fmt.Errorf("files[%d] %q: %w", i, f.Name, err)
		}
		if f.Name == VolumeMarkerName {
			if markers[f.Volume] {
				return fmt.Errorf("files[%d]: volume %d has two markers", i, f.Volume)
			}
			markers[f.Volume] = true
		} else {
			if names[f.Name] {
				return fmt.Errorf("files[%d] %q: listed twice", i, f.Name)
			}
			names[f.Name] = true
		}
		byVolume[f.Volume] = append(byVolume[f.Volume], f)
	}
	for v, ok := range markers {
		if !ok {
			return fmt.Errorf("files: volume %d has no %s", v, VolumeMarkerName)
		}
	}
	if err := checkNotDirectories(names); err != nil {
		return err
	}
	for v, fs := range byVolume {
		if err := checkOverlaps(v, fs); err != nil {
			return err
		}
	}
	return nil
}

func (f File) validate(nvol int) error {
	if err := checkName(f.Name); err != nil {
		return err
	}
	if f.Volume < 0 || f.Volume >= nvol {
		return fmt.Errorf("volume %d does not exist (the bundle has %d)", f.Volume, nvol)
	}
	if f.Size < 0 || f.Size > maxOffset {
		return fmt.Errorf("size %d out of range", f.Size)
	}
	// Data follows at least one 512-byte header and starts on a block.
	if f.Offset < blockSize || f.Offset > maxOffset || f.Offset%blockSize != 0 {
		return fmt.Errorf("offset %d is not a data offset", f.Offset)
	}
	if !isSHA256Hex(f.SHA256) {
		return fmt.Errorf("sha256 %q: want 64 lower-case hex digits", f.SHA256)
	}
	if hex, ok := blobHex(f.Name); ok && hex != f.SHA256 {
		return fmt.Errorf("blob named for sha256:%s has sha256 %s", hex, f.SHA256)
	}
	if f.Name == VolumeMarkerName && f.Offset != blockSize {
		return fmt.Errorf("marker at offset %d: it must be the volume's first entry", f.Offset)
	}
	return nil
}

// checkNotDirectories refuses a file whose name is also a directory of
// another file: no tar extraction could create both.
func checkNotDirectories(names map[string]bool) error {
	for name := range names {
		for i := len(name) - 1; i > 0; i-- {
			if name[i] == '/' && names[name[:i]] {
				return fmt.Errorf("files: %q is both a file and the directory of %q", name[:i], name)
			}
		}
	}
	return nil
}

// checkOverlaps refuses two files of a volume whose header and data would
// share bytes.
func checkOverlaps(v int, fs []File) error {
	sort.Slice(fs, func(i, j int) bool { return fs[i].Offset < fs[j].Offset })
	for i := 1; i < len(fs); i++ {
		prev, cur := fs[i-1], fs[i]
		if cur.Offset < prev.Offset+paddedSize(prev.Size)+blockSize {
			return fmt.Errorf("files: %q and %q overlap in volume %d", prev.Name, cur.Name, v)
		}
	}
	return nil
}

func (r *Release) validate() error {
	if err := checkDigest(r.Digest); err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	for i, s := range r.Signatures {
		if err := checkName(s.File); err != nil {
			return fmt.Errorf("signatures[%d] file %q: %w", i, s.File, err)
		}
	}
	if r.ConfigMap != "" {
		if err := checkName(r.ConfigMap); err != nil {
			return fmt.Errorf("configMap %q: %w", r.ConfigMap, err)
		}
	}
	return nil
}

func (c *Catalog) validate() error {
	for _, d := range []struct {
		name string
		d    digest.Digest
	}{{"sourceDigest", c.SourceDigest}, {"digest", c.Digest}, {"fbcLayer", c.FBCLayer}} {
		if err := checkDigest(d.d); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	for i, im := range c.Images {
		if err := checkDigest(im.Digest); err != nil {
			return fmt.Errorf("images[%d] %s: %w", i, im.Ref, err)
		}
	}
	return nil
}

func (im *Image) validate() error {
	if err := checkDigest(im.Digest); err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	if im.Size < 0 || im.Size > maxOffset {
		return fmt.Errorf("size %d out of range", im.Size)
	}
	switch im.Role {
	case RoleRelease, RoleComponent, RoleChild, RoleSigstore, RoleCatalog, RoleOperator, RoleAdditional, RoleGraphData:
	default:
		return fmt.Errorf("role %q: want one of %s, %s, %s, %s, %s, %s, %s, %s", im.Role,
			RoleRelease, RoleComponent, RoleChild, RoleSigstore, RoleCatalog, RoleOperator, RoleAdditional, RoleGraphData)
	}
	if err := checkTarget(im.Target); err != nil {
		return err
	}
	for i, d := range im.Children {
		if err := checkDigest(d); err != nil {
			return fmt.Errorf("children[%d]: %w", i, err)
		}
	}
	for i, d := range im.Blobs {
		if err := checkDigest(d); err != nil {
			return fmt.Errorf("blobs[%d]: %w", i, err)
		}
	}
	return nil
}

// MaxTargetLength bounds an image's Target: distribution caps a whole
// repository name at 255 characters, so no longer path can name a
// repository under any --to.
const MaxTargetLength = 255

// targetPath is a repository path as distribution's reference grammar
// allows it: lower-case alphanumeric components joined by ".", "_", "__"
// or dashes, separated by single "/". It admits no "..", no empty
// component and no leading or trailing "/", so a Target cannot climb out
// of the repository apply pushes under.
var targetPath = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// checkTarget accepts an empty Target (the target repository itself) or a
// repository path under it.
func checkTarget(target string) error {
	if target == "" {
		return nil
	}
	if len(target) > MaxTargetLength {
		return fmt.Errorf("target of %d characters, more than %d", len(target), MaxTargetLength)
	}
	if !targetPath.MatchString(target) {
		return fmt.Errorf("target %q is not a repository path (lower-case components separated by /)", target)
	}
	return nil
}

func validatePrerequisites(ps []Prerequisite) error {
	type place struct {
		target string
		digest digest.Digest
	}
	seen := make(map[place]bool, len(ps))
	for i, p := range ps {
		if err := checkDigest(p.Digest); err != nil {
			return fmt.Errorf("prerequisites[%d]: %w", i, err)
		}
		if p.Size < 0 || p.Size > maxOffset {
			return fmt.Errorf("prerequisites[%d] %s: size %d out of range", i, p.Digest, p.Size)
		}
		if err := checkTarget(p.Target); err != nil {
			return fmt.Errorf("prerequisites[%d] %s: %w", i, p.Digest, err)
		}
		if seen[place{p.Target, p.Digest}] {
			return fmt.Errorf("prerequisites[%d] %s: listed twice", i, p.Digest)
		}
		seen[place{p.Target, p.Digest}] = true
	}
	return nil
}

// checkConsistentDigests refuses an index that says two things of one
// digest: content is named by its digest, so one digest has one media type
// and one size wherever the index lists it (an image seen from two
// repositories, a prerequisite).
func checkConsistentDigests(idx *Index) error {
	type facts struct {
		mediaType string
		size      int64
		where     string
	}
	seen := make(map[digest.Digest]facts, len(idx.Images)+len(idx.Prerequisites))
	check := func(d digest.Digest, f facts) error {
		prior, ok := seen[d]
		if !ok {
			seen[d] = f
			return nil
		}
		if prior.mediaType != f.mediaType || prior.size != f.size {
			return fmt.Errorf("%s: %s is %s of %d bytes, but %s says %s of %d bytes",
				f.where, d, f.mediaType, f.size, prior.where, prior.mediaType, prior.size)
		}
		return nil
	}
	for i, im := range idx.Images {
		if err := check(im.Digest, facts{im.MediaType, im.Size, fmt.Sprintf("images[%d]", i)}); err != nil {
			return err
		}
	}
	for i, p := range idx.Prerequisites {
		if err := check(p.Digest, facts{p.MediaType, p.Size, fmt.Sprintf("prerequisites[%d]", i)}); err != nil {
			return err
		}
	}
	return nil
}

// checkDigest accepts only well-formed sha256 digests: blobs are stored
// under blobs/sha256.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%q: only sha256 digests are supported", d)
	}
	return nil
}
