package testbed

import (
	"fmt"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Defaults of ReleaseOptions, and the repositories of a real release.
const (
	DefaultVersion          = "4.15.0"
	DefaultArch             = "x86_64"
	DefaultComponents       = 20
	DefaultLayersPerImage   = 2
	DefaultLayerSize        = 4 << 10
	DefaultSharedBaseLayers = 2

	ReleaseRepository        = "openshift-release-dev/ocp-release"
	ComponentRepository      = "openshift-release-dev/ocp-v4.0-art-dev"
	ExtraComponentRepository = "openshift-release-dev/ocp-v4.0-art-dev-extra"
)

// Roles of ImageInfo, as in the bundle index.
const (
	RoleRelease   = "release"   // the release image, or the release manifest list
	RoleComponent = "component" // an image named by image-references
	RoleChild     = "child"     // a per-arch image under a manifest list
	RoleSigstore  = "sigstore"  // a cosign sha256-<hex>.sig image
)

const (
	// defaultConcurrency is how many images are pushed at once: the machines
	// have two cores that the generator and the in-process registry share.
	defaultConcurrency = 4
	// streamThreshold: random layers larger than this are generated while
	// they upload and regenerated when needed, never held in memory.
	streamThreshold = 1 << 20
)

// ReleaseOptions shape a synthetic release. The zero value is a 20-component
// 4.15.0 x86_64 release of small layers, as Docker schema2 with some OCI
// components, spread over two component repositories.
type ReleaseOptions struct {
	// Version is the release's version ("4.15.0").
	Version string
	// Arch is the release arch as OpenShift names it: x86_64 (default),
	// aarch64, s390x or ppc64le (Go's names are accepted). Ignored with Multi.
	Arch string
	// Components is how many component images the release names (20).
	Components int
	// LayersPerImage is how many random layers of its own each component
	// image has, on top of the shared base layers (2).
	LayersPerImage int
	// LayerSize is the random payload of each random layer, in bytes (4 KiB).
	// Layers above 1 MiB are streamed while generated, so any size works.
	LayerSize int64
	// SharedBaseLayers is how many base layers every component image of an
	// arch, and the release image, start with (2); negative for none.
	SharedBaseLayers int
	// ReleaseRepo is where the release goes (openshift-release-dev/ocp-release),
	// tagged <version>-<arch>.
	ReleaseRepo string
	// Repos are the component repositories; component i goes to
	// Repos[i%len(Repos)]. Default: ComponentRepository and ExtraComponentRepository.
	Repos []string
	// Multi makes the release a manifest list (tag <version>-multi) of
	// per-arch release images whose components are manifest lists too.
	Multi bool
	// Arches of a Multi release, as GOARCH names (amd64, arm64).
	Arches []string
	// OCI makes the release an OCI manifest (index when Multi) instead of
	// Docker schema2 (manifest list); components mix both either way.
	OCI bool
	// Sigstore pushes cosign sha256-<hex>.sig tags for the release (the list
	// and its first child when Multi) and for half of the components (the
	// list and, for some, a child when Multi), in each repository. The
	// release images are signed as host/<ReleaseRepo>:<tag>, a component's
	// manifests as host/<repo>@<the signed digest>, as the node's default
	// MatchRepoDigestOrExact wants.
	Sigstore bool
	// SigstoreKey is the kind of key that signs: SigstoreKeyEd25519 (""; made
	// from Seed, so reproducible), SigstoreKeyRSA or SigstoreKeyECDSA (made
	// fresh). A release that ShareWith one signed with the same kind signs
	// with its key.
	SigstoreKey string
	// SigstorePolicy ships a ClusterImagePolicy "openshift" naming the
	// signing key in release-manifests/ (ImagePolicyFile), as OpenShift
	// does from 4.21: SigstorePolicy421 scopes the release repository,
	// SigstorePolicy422 it and every repository of Repos. It implies
	// Sigstore, and then every manifest is signed: the release (list and
	// each child) and every component (list and each child).
	SigstorePolicy string
	// SigstoreFaults break chosen signatures (needs Sigstore or
	// SigstorePolicy); Release.SigstoreFaulty lists the manifests a verifier
	// must refuse.
	SigstoreFaults SigstoreFaults
	// Seed, with Version, makes the content: the same options give the same
	// component digests on any registry, and the same release digest on the
	// same host (image-references and cosign payloads name the host).
	Seed int64
	// ShareWith reuses an earlier release: its base layers and release
	// layers, and three components in four unchanged (same digests, same
	// signatures), so the two releases share most blobs. The others get new
	// layers, so give a different Version (or Seed). It must have the same
	// Multi and arches; on another registry, what it needs is pushed there.
	// A signed release re-signs an unchanged component where the earlier
	// signature is not what it would make (another host in the identity,
	// another key, a fault, or none), replacing that .sig tag.
	ShareWith *Release
	// Previous fills release-metadata's "previous".
	Previous []string
	// TagReference names one component in image-references by tag instead
	// of digest (the tag exists), which ferry must refuse.
	TagReference bool
	// MissingComponent adds a component "missing-component" whose digest
	// was never pushed.
	MissingComponent bool
	// Concurrency bounds parallel pushes (4).
	Concurrency int
	// ReleaseTopLayer, when set, is one more layer of the release
	// image(s), above the one holding release-manifests/ (a GzipBomb,
	// say).
	ReleaseTopLayer *Layer
	// Shape, when set, shapes the release as a real payload (RealPayload):
	// it sets the components, their layers and sizes, the base layers each
	// shares, which are two-arch indexes and which are cosign-signed (with
	// Sigstore); Components, LayersPerImage, LayerSize and SharedBaseLayers
	// are then ignored. Not with Multi.
	Shape *PayloadShape
	// KubeVirtContainer pushes an RHCOS container disk for KubeVirt per
	// arch of the release (Release.KubeVirt) and ships a coreos-bootimages
	// manifest naming them (CoreOSBootImagesFile) in the layer that holds
	// image-references, as OpenShift does.
	KubeVirtContainer bool
}

// LargeRelease returns options for a release of about total bytes of layer
// data (20 components, 2 layers each, 2 shared base layers): for benchmarks
// of 500 MB and more. The data is generated as it is pushed.
func LargeRelease(total int64) ReleaseOptions {
	layers := int64(DefaultComponents*DefaultLayersPerImage + DefaultSharedBaseLayers + 1)
	return ReleaseOptions{LayerSize: total/layers + 1}
}

// Release is what BuildRelease pushed: everything a test asserts against.
type Release struct {
	// Host is the registry, "127.0.0.1:port".
	Host    string
	Version string
	// Arch is the OpenShift arch name: x86_64, aarch64, ... or multi.
	Arch string
	// Repository is the release repository, without host.
	Repository string
	// Tag is <version>-<arch>.
	Tag string
	// PullSpec is host/repository:tag.
	PullSpec string
	// Digest is the release manifest's (or manifest list's) digest.
	Digest    digest.Digest
	MediaType string
	// Manifest is the release manifest exactly as pushed.
	Manifest []byte
	// Components in image-references order (by name).
	Components []Component
	// Images is every manifest pushed for this release, once per repository:
	// components (children first), release images, sigstore images.
	Images []ImageInfo
	// Blobs is every config and layer blob of those images (signature
	// images included), with its size.
	Blobs map[digest.Digest]int64
	// Bytes is the sum of Blobs (manifests not included).
	Bytes int64
	// SigTags are the cosign tags pushed, as "repository:sha256-<hex>.sig".
	SigTags []string
	// ImageReferences and ReleaseMetadata are release-manifests/image-references
	// and release-manifests/release-metadata as in the release image's top
	// layer, byte for byte (the same layer for every arch).
	ImageReferences []byte
	ReleaseMetadata []byte
	// TopLayer is the digest of the layer holding those files.
	TopLayer digest.Digest
	// SigstorePublicKey is the PEM public key of the cosign signatures.
	SigstorePublicKey []byte
	// SigstoreKey signed them (nil when unsigned): for forging more.
	SigstoreKey *SigstoreKey
	// SigstoreOtherKey made the OtherKey faults' signatures (nil without).
	SigstoreOtherKey *SigstoreKey
	// ImagePolicy is the ClusterImagePolicy in the release's top layer
	// (ImagePolicyFile), byte for byte; nil without SigstorePolicy.
	ImagePolicy []byte
	// ImagePolicyScopes are its spec.scopes.
	ImagePolicyScopes []string
	// CoreOSBootImages is CoreOSBootImagesFile in the release image's top
	// layer, byte for byte; nil without KubeVirtContainer.
	CoreOSBootImages []byte
	// KubeVirt are the containers it names, one per arch of the release
	// (in ReleaseOptions.Arches order when Multi). They are not in Images,
	// Blobs, Bytes or SigTags: a pack carries them only when asked to.
	KubeVirt []KubeVirtContainer
	// SigstoreFaulty maps each manifest whose signature SigstoreFaults broke
	// (or left out) to the fault's name (SigstoreFaultUnsigned, ...): exactly
	// the images a verifier of the policy must refuse. Empty without faults.
	SigstoreFaulty map[digest.Digest]string

	state *releaseState
}

// Component is one entry of image-references.
type Component struct {
	Name string
	// Repository holds the image, without host.
	Repository string
	// Digest of the component's manifest (its manifest list when Multi).
	Digest    digest.Digest
	MediaType string
	// Image is from.name in image-references: host/repo@sha256:..., or
	// host/repo:tag for the TagReference component.
	Image string
	// Tag is set for the TagReference component: the tag Image names.
	Tag string
	// Signed tells that a sha256-<hex>.sig tag was pushed for Digest.
	Signed bool
	// Missing marks the MissingComponent entry: Digest was never pushed.
	Missing bool
}

// ImageInfo describes one manifest pushed.
type ImageInfo struct {
	Role       string // RoleRelease, RoleComponent, RoleChild or RoleSigstore
	Repository string
	Digest     digest.Digest
	MediaType  string
	Size       int64
	// Manifest is the manifest exactly as pushed.
	Manifest []byte
	// Tag is the tag pushed for it, if any.
	Tag string
	// Arch is the GOARCH of a per-arch image; "" for lists and signatures.
	Arch string
	// Component names the component it belongs to; "" for release images.
	Component string
	// Parent is the manifest list this image is a child of.
	Parent digest.Digest
	// Signs is, for a sigstore image, the digest it signs.
	Signs digest.Digest
	// Children are the manifests a list names.
	Children []digest.Digest
	// Blobs are the config and layers an image manifest names.
	Blobs []digest.Digest
}

// DigestSpec is the release's pull spec by digest: host/repository@sha256:...
func (r *Release) DigestSpec() string {
	return r.Host + "/" + r.Repository + "@" + r.Digest.String()
}

// Component returns the component called name.
func (r *Release) Component(name string) (Component, bool) {
	for _, c := range r.Components {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}

// Image returns the ImageInfo of the manifest with digest d.
func (r *Release) Image(d digest.Digest) (ImageInfo, bool) {
	for _, im := range r.Images {
		if im.Digest == d {
			return im, true
		}
	}
	return ImageInfo{}, false
}

// BuildRelease makes a synthetic OpenShift release as opts say and pushes
// it to the registry at host: component images (by digest), then the release
// image, then its tag, then signatures. It fails the test on any error.
//
//	reg := testbed.NewMemoryRegistry(t)
//	rel := testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Sigstore: true})
//	// ferry pack --from rel.PullSpec ...; assert against rel.Images, rel.Blobs
func BuildRelease(t testing.TB, host string, opts ReleaseOptions) *Release {
	t.Helper()
	rel, err := buildRelease(t.Context(), host, opts)
	if err != nil {
		t.Fatalf("building release %s on %s: %v", opts.Version, host, err)
	}
	return rel
}

// archGOARCH maps OpenShift's arch names to Go's.
var archGOARCH = map[string]string{"x86_64": "amd64", "aarch64": "arm64", "s390x": "s390x", "ppc64le": "ppc64le"}

// goArch accepts an arch in either naming and returns the GOARCH one.
func goArch(a string) (string, error) {
	if g, ok := archGOARCH[a]; ok {
		return g, nil
	}
	for _, g := range archGOARCH {
		if g == a {
			return g, nil
		}
	}
	return "", fmt.Errorf("unknown arch %q", a)
}

// normalize fills defaults and checks opts; it works on the caller's copy.
func (o *ReleaseOptions) normalize() error {
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.Arch == "" {
		o.Arch = DefaultArch
	}
	if o.Multi {
		o.Arch = "multi"
		if len(o.Arches) == 0 {
			o.Arches = []string{"amd64", "arm64"}
		}
	} else {
		// Either naming is accepted; the tag uses OpenShift's.
		g, err := goArch(o.Arch)
		if err != nil {
			return err
		}
		for name, ga := range archGOARCH {
			if ga == g {
				o.Arch = name
			}
		}
	}
	switch {
	case o.Components < 0, o.LayersPerImage < 0, o.LayerSize < 0:
		return fmt.Errorf("negative Components, LayersPerImage or LayerSize")
	}
	if o.Components == 0 {
		o.Components = DefaultComponents
	}
	if o.LayersPerImage == 0 {
		o.LayersPerImage = DefaultLayersPerImage
	}
	if o.LayerSize == 0 {
		o.LayerSize = DefaultLayerSize
	}
	if o.SharedBaseLayers == 0 {
		o.SharedBaseLayers = DefaultSharedBaseLayers
	} else if o.SharedBaseLayers < 0 {
		o.SharedBaseLayers = 0
	}
	if o.ReleaseRepo == "" {
		o.ReleaseRepo = ReleaseRepository
	}
	if len(o.Repos) == 0 {
		o.Repos = []string{ComponentRepository, ExtraComponentRepository}
	}
	o.Repos = slices.Clone(o.Repos)
	if err := o.normalizeShape(); err != nil {
		return err
	}
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
	}
	return o.normalizeSigstore()
}
