package testbed

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
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
	// list and, for some, a child when Multi), in each repository.
	Sigstore bool
	// Seed, with Version, makes the content: the same options give the same
	// component digests on any registry, and the same release digest on the
	// same host (image-references and cosign payloads name the host).
	Seed int64
	// ShareWith reuses an earlier release: its base layers and release
	// layers, and three components in four unchanged (same digests, same
	// signatures), so the two releases share most blobs. The others get new
	// layers, so give a different Version (or Seed). It must have the same
	// Multi and arches; on another registry, what it needs is pushed there.
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

// blob is a config or layer and how to make it again.
type blob struct {
	digest digest.Digest
	size   int64
	diffID digest.Digest // layers: the digest of the uncompressed tar
	data   []byte        // small blobs
	gen    func(io.Writer) error
}

// image is a pushed manifest and what it needs.
type image struct {
	info     ImageInfo
	blobs    []*blob
	children []*image
}

// releaseState is what a later release needs to share with this one.
type releaseState struct {
	base  map[string][]*blob // per GOARCH
	lower map[string][]*blob // the release image's own random layers, per GOARCH
	comps []*componentState
}

type componentState struct {
	comp Component
	top  *image
	sigs []*image
}

type flight struct {
	done chan struct{}
	err  error
}

type builder struct {
	c      *Client
	host   string
	opts   ReleaseOptions
	arches []string // GOARCH
	share  *releaseState
	sigKey *sigstoreKey

	mu      sync.Mutex
	flights map[string]*flight       // "repo@digest" -> its push
	homes   map[digest.Digest]string // a repository on this host holding the blob
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
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
	}
	return nil
}

// componentNames are real OpenShift component tags, used in order; more
// components than these are named component-NNN.
var componentNames = []string{
	"agent-installer-api-server", "aws-ebs-csi-driver", "baremetal-installer", "cli",
	"cli-artifacts", "cluster-authentication-operator", "cluster-autoscaler",
	"cluster-bootstrap", "cluster-config-operator", "cluster-dns-operator",
	"cluster-etcd-operator", "cluster-ingress-operator", "cluster-kube-apiserver-operator",
	"cluster-monitoring-operator", "cluster-network-operator", "cluster-node-tuning-operator",
	"cluster-version-operator", "console", "console-operator", "coredns", "etcd",
	"haproxy-router", "hyperkube", "installer", "keepalived-ipfailover", "kube-proxy",
	"machine-config-operator", "multus-cni", "must-gather", "oauth-server",
	"openshift-apiserver", "ovn-kubernetes", "pod", "prometheus", "rhel-coreos", "tests", "tools",
}

func componentName(i int) string {
	if i < len(componentNames) {
		return componentNames[i]
	}
	return fmt.Sprintf("component-%03d", i)
}

func buildRelease(ctx context.Context, host string, opts ReleaseOptions) (*Release, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	b := &builder{
		c: NewClient(host), host: host, opts: opts,
		flights: map[string]*flight{}, homes: map[digest.Digest]string{},
	}
	arches := []string{opts.Arch}
	if opts.Multi {
		arches = opts.Arches
	}
	for _, a := range arches {
		g, err := goArch(a)
		if err != nil {
			return nil, err
		}
		b.arches = append(b.arches, g)
	}
	if p := opts.ShareWith; p != nil {
		if p.state == nil {
			return nil, fmt.Errorf("ShareWith: release %s was not made by BuildRelease", p.Version)
		}
		for _, a := range b.arches {
			if _, ok := p.state.base[a]; !ok {
				return nil, fmt.Errorf("ShareWith: release %s has no %s images", p.Version, a)
			}
		}
		if (p.Arch == "multi") != opts.Multi {
			return nil, fmt.Errorf("ShareWith: release %s is %s, this one multi=%t", p.Version, p.Arch, opts.Multi)
		}
		b.share = p.state
	}
	if opts.Sigstore {
		b.sigKey = newSigstoreKey(opts.Seed)
	}

	st := &releaseState{base: map[string][]*blob{}, lower: map[string][]*blob{}}
	if err := b.baseLayers(ctx, st); err != nil {
		return nil, fmt.Errorf("base layers: %w", err)
	}
	comps, err := b.components(ctx, st)
	if err != nil {
		return nil, err
	}
	st.comps = comps
	return b.release(ctx, st)
}

// parallel runs f(0..n-1) with the builder's concurrency; the first error
// cancels the context the others see.
func (b *builder) parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.opts.Concurrency)
	for i := range n {
		g.Go(func() error { return f(ctx, i) })
	}
	return g.Wait()
}

// baseLayers makes (or takes from ShareWith) each arch's shared base layers
// and puts them in every repository.
func (b *builder) baseLayers(ctx context.Context, st *releaseState) error {
	type job struct {
		arch string
		n    int
	}
	var jobs []job
	for _, a := range b.arches {
		if b.share != nil {
			st.base[a] = b.share.base[a]
			continue
		}
		st.base[a] = make([]*blob, b.opts.SharedBaseLayers)
		for n := range b.opts.SharedBaseLayers {
			jobs = append(jobs, job{a, n})
		}
	}
	err := b.parallel(ctx, len(jobs), func(ctx context.Context, i int) error {
		j := jobs[i]
		bl, err := b.newLayer(ctx, b.opts.Repos[0], fmt.Sprintf("base/%s/%d", j.arch, j.n))
		st.base[j.arch][j.n] = bl // distinct slots: no lock needed
		return err
	})
	if err != nil {
		return err
	}
	type put struct {
		repo string
		bl   *blob
	}
	var puts []put
	for _, repo := range append(slices.Clone(b.opts.Repos), b.opts.ReleaseRepo) {
		for _, a := range b.arches {
			for _, bl := range st.base[a] {
				puts = append(puts, put{repo, bl})
			}
		}
	}
	return b.parallel(ctx, len(puts), func(ctx context.Context, i int) error {
		return b.ensureBlob(ctx, puts[i].repo, puts[i].bl)
	})
}

// components builds (or reuses) every component, in parallel.
func (b *builder) components(ctx context.Context, st *releaseState) ([]*componentState, error) {
	out := make([]*componentState, b.opts.Components)
	err := b.parallel(ctx, len(out), func(ctx context.Context, i int) error {
		cs, err := b.component(ctx, st, i)
		if err != nil {
			return fmt.Errorf("component %s: %w", componentName(i), err)
		}
		out[i] = cs
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b.opts.TagReference {
		cs := out[min(1, len(out)-1)]
		tag := "testbed-" + cs.comp.Name
		if _, err := b.c.PushManifest(ctx, cs.comp.Repository, tag, cs.top.info.MediaType, cs.top.info.Manifest); err != nil {
			return nil, err
		}
		cs.comp.Tag = tag
		cs.comp.Image = b.host + "/" + cs.comp.Repository + ":" + tag
	}
	if b.opts.MissingComponent {
		seed := seedFor(b.opts.Seed, b.opts.Version, "missing-component")
		d := digest.FromBytes(seed[:])
		repo := b.opts.Repos[0]
		out = append(out, &componentState{comp: Component{
			Name: "missing-component", Repository: repo, Digest: d,
			MediaType: MediaTypeDockerManifest, Image: b.host + "/" + repo + "@" + d.String(), Missing: true,
		}})
	}
	return out, nil
}

func (b *builder) component(ctx context.Context, st *releaseState, i int) (*componentState, error) {
	name := componentName(i)
	if b.share != nil && i < len(b.share.comps) && i%4 != 3 && b.share.comps[i].top != nil {
		// Unchanged since the earlier release: same images, same signatures.
		prev := b.share.comps[i]
		if err := b.ensureImage(ctx, prev.top); err != nil {
			return nil, err
		}
		for _, s := range prev.sigs {
			if err := b.ensureImage(ctx, s); err != nil {
				return nil, err
			}
		}
		c := prev.comp
		c.Tag = ""
		c.Image = b.host + "/" + c.Repository + "@" + c.Digest.String()
		return &componentState{comp: c, top: prev.top, sigs: prev.sigs}, nil
	}

	repo := b.opts.Repos[i%len(b.opts.Repos)]
	docker := i%3 != 1 // one component in three is OCI
	labels := map[string]string{
		"io.openshift.build.commit.id":       commitID(b.opts.Seed, b.opts.Version, name),
		"io.openshift.build.source-location": "https://github.com/openshift/" + name,
		"name":                               "openshift/ose-" + name,
	}
	role := RoleComponent
	if b.opts.Multi {
		role = RoleChild
	}
	var children []*image
	for _, arch := range b.arches {
		layers := slices.Clone(st.base[arch])
		for j := range b.opts.LayersPerImage {
			bl, err := b.newLayer(ctx, repo, fmt.Sprintf("comp/%s/%s/%d", name, arch, j))
			if err != nil {
				return nil, err
			}
			layers = append(layers, bl)
		}
		im, err := b.newImage(ctx, repo, imageSpec{role: role, component: name, arch: arch, docker: docker, labels: labels, layers: layers})
		if err != nil {
			return nil, err
		}
		children = append(children, im)
	}
	top := children[0]
	if b.opts.Multi {
		var err error
		if top, err = b.newIndex(ctx, repo, RoleComponent, name, docker, children); err != nil {
			return nil, err
		}
	}
	cs := &componentState{top: top, comp: Component{
		Name: name, Repository: repo, Digest: top.info.Digest, MediaType: top.info.MediaType,
		Image: b.host + "/" + repo + "@" + top.info.Digest.String(),
	}}
	if b.opts.Sigstore && (i/2)%2 == 0 { // half, in both repositories and formats
		signed := []*image{top}
		if b.opts.Multi && i%4 == 0 {
			signed = append(signed, children[0])
		}
		for _, im := range signed {
			s, err := b.sign(ctx, repo, im.info.Digest)
			if err != nil {
				return nil, err
			}
			cs.sigs = append(cs.sigs, s)
		}
	}
	return cs, nil
}

func commitID(seed int64, version, name string) string {
	s := seedFor(seed, version, "commit", name)
	return hex.EncodeToString(s[:20])
}

// release makes the release image(s), tags them and assembles the Release.
func (b *builder) release(ctx context.Context, st *releaseState) (*Release, error) {
	o := b.opts
	repo := o.ReleaseRepo
	comps := make([]Component, 0, len(st.comps))
	for _, cs := range st.comps {
		c := cs.comp
		c.Signed = len(cs.sigs) > 0
		comps = append(comps, c)
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].Name < comps[j].Name })

	refs, err := imageReferences(o.Version, comps, func(name string) map[string]string {
		return map[string]string{
			"io.openshift.build.commit.id":       commitID(o.Seed, o.Version, name),
			"io.openshift.build.commit.ref":      "",
			"io.openshift.build.source-location": "https://github.com/openshift/" + name,
		}
	})
	if err != nil {
		return nil, err
	}
	meta, err := releaseMetadata(o.Version, o.Previous, o.Multi)
	if err != nil {
		return nil, err
	}
	topData, topDiff, err := smallLayer([]tarFile{
		{name: "release-manifests/"},
		{name: "release-manifests/0000_00_cluster-version-operator_00_namespace.yaml", data: []byte(cvoNamespace)},
		{name: "release-manifests/image-references", data: refs},
		{name: "release-manifests/release-metadata", data: meta},
	})
	if err != nil {
		return nil, err
	}
	topLayer := &blob{digest: digest.FromBytes(topData), size: int64(len(topData)), diffID: topDiff, data: topData}

	role := RoleRelease
	if o.Multi {
		role = RoleChild
	}
	var children []*image
	for _, arch := range b.arches {
		if b.share != nil {
			st.lower[arch] = b.share.lower[arch]
		} else {
			bl, err := b.newLayer(ctx, repo, "release/"+arch+"/0")
			if err != nil {
				return nil, fmt.Errorf("release image: %w", err)
			}
			st.lower[arch] = []*blob{bl}
		}
		layers := append(slices.Clone(st.base[arch]), st.lower[arch]...)
		layers = append(layers, topLayer)
		if l := o.ReleaseTopLayer; l != nil {
			layers = append(layers, &blob{digest: digest.FromBytes(l.Data), size: int64(len(l.Data)), diffID: l.DiffID, data: l.Data})
		}
		im, err := b.newImage(ctx, repo, imageSpec{
			role: role, arch: arch, docker: !o.OCI, layers: layers,
			labels: map[string]string{"io.openshift.release": o.Version},
		})
		if err != nil {
			return nil, fmt.Errorf("release image: %w", err)
		}
		children = append(children, im)
	}
	top := children[0]
	if o.Multi {
		if top, err = b.newIndex(ctx, repo, RoleRelease, "", !o.OCI, children); err != nil {
			return nil, fmt.Errorf("release manifest list: %w", err)
		}
	}
	tag := o.Version + "-" + o.Arch
	// The tag goes last, once everything it points at is in.
	if _, err := b.c.PushManifest(ctx, repo, tag, top.info.MediaType, top.info.Manifest); err != nil {
		return nil, err
	}
	top.info.Tag = tag
	var relSigs []*image
	if o.Sigstore {
		signed := []*image{top}
		if o.Multi {
			signed = append(signed, children[0])
		}
		for _, im := range signed {
			s, err := b.sign(ctx, repo, im.info.Digest)
			if err != nil {
				return nil, err
			}
			relSigs = append(relSigs, s)
		}
	}

	rel := &Release{
		Host: b.host, Version: o.Version, Arch: o.Arch, Repository: repo, Tag: tag,
		PullSpec: b.host + "/" + repo + ":" + tag,
		Digest:   top.info.Digest, MediaType: top.info.MediaType, Manifest: top.info.Manifest,
		Components: comps, Blobs: map[digest.Digest]int64{},
		ImageReferences: refs, ReleaseMetadata: meta, TopLayer: topLayer.digest,
		state: st,
	}
	if b.sigKey != nil {
		rel.SigstorePublicKey = b.sigKey.pubPEM
	}
	tags := map[string]string{}
	for _, cs := range st.comps {
		if cs.comp.Tag != "" {
			tags[cs.comp.Repository+"@"+cs.comp.Digest.String()] = cs.comp.Tag
		}
	}
	seen := map[string]bool{}
	var add func(im *image)
	add = func(im *image) {
		for _, c := range im.children {
			add(c)
		}
		key := im.info.Repository + "@" + im.info.Digest.String()
		if seen[key] {
			return
		}
		seen[key] = true
		info := im.info
		if t, ok := tags[key]; ok {
			info.Tag = t
		}
		rel.Images = append(rel.Images, info)
		for _, bl := range im.blobs {
			rel.Blobs[bl.digest] = bl.size
		}
		if info.Role == RoleSigstore {
			rel.SigTags = append(rel.SigTags, info.Repository+":"+info.Tag)
		}
	}
	for _, cs := range st.comps {
		if cs.top != nil {
			add(cs.top)
		}
		for _, s := range cs.sigs {
			add(s)
		}
	}
	add(top)
	for _, s := range relSigs {
		add(s)
	}
	for _, n := range rel.Blobs {
		rel.Bytes += n
	}
	return rel, nil
}

// cvoNamespace is one ordinary manifest beside the two that matter.
const cvoNamespace = `apiVersion: v1
kind: Namespace
metadata:
  name: openshift-cluster-version
  annotations:
    include.release.openshift.io/self-managed-high-availability: "true"
`

// imageReferences renders release-manifests/image-references as `oc adm
// release new` does: an ImageStream named after the version, one tag per
// component, with the fields a real one carries.
func imageReferences(version string, comps []Component, annotations func(string) map[string]string) ([]byte, error) {
	type tagRef struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
		From        struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"from"`
		Generation      *int64   `json:"generation"`
		ImportPolicy    struct{} `json:"importPolicy"`
		ReferencePolicy struct {
			Type string `json:"type"`
		} `json:"referencePolicy"`
	}
	var is struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Metadata   struct {
			Name              string            `json:"name"`
			CreationTimestamp string            `json:"creationTimestamp"`
			Annotations       map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			LookupPolicy struct {
				Local bool `json:"local"`
			} `json:"lookupPolicy"`
			Tags []tagRef `json:"tags"`
		} `json:"spec"`
		Status struct {
			DockerImageRepository string `json:"dockerImageRepository"`
		} `json:"status"`
	}
	is.Kind, is.APIVersion = "ImageStream", "image.openshift.io/v1"
	is.Metadata.Name = version
	is.Metadata.CreationTimestamp = epoch.Format("2006-01-02T15:04:05Z")
	is.Metadata.Annotations = map[string]string{"release.openshift.io/from-image-stream": "ocp/" + version + "-art-latest"}
	is.Spec.Tags = []tagRef{}
	for _, c := range comps {
		var t tagRef
		t.Name = c.Name
		t.Annotations = annotations(c.Name)
		t.From.Kind = "DockerImage"
		t.From.Name = c.Image
		t.ReferencePolicy.Type = "Source"
		is.Spec.Tags = append(is.Spec.Tags, t)
	}
	data, err := json.MarshalIndent(is, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// releaseMetadata renders release-manifests/release-metadata.
func releaseMetadata(version string, previous []string, multi bool) ([]byte, error) {
	m := struct {
		Kind     string            `json:"kind"`
		Version  string            `json:"version"`
		Previous []string          `json:"previous"`
		Next     []string          `json:"next"`
		Metadata map[string]string `json:"metadata"`
	}{Kind: "cincinnati-metadata-v0", Version: version, Previous: []string{}, Next: []string{}, Metadata: map[string]string{}}
	m.Previous = append(m.Previous, previous...)
	if multi {
		m.Metadata["release.openshift.io/architecture"] = "multi"
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// imageSpec is what newImage needs to make one image manifest.
type imageSpec struct {
	role, component, arch string
	docker                bool
	labels                map[string]string
	layers                []*blob
}

func platform(arch string) *ocispec.Platform {
	p := &ocispec.Platform{Architecture: arch, OS: "linux"}
	if arch == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// marshalManifest encodes a manifest the way its kind is usually found:
// Docker's tools indent with three spaces, OCI ones write compact JSON.
func marshalManifest(v any, docker bool) ([]byte, error) {
	if docker {
		return json.MarshalIndent(v, "", "   ")
	}
	return json.Marshal(v)
}

// newImage pushes the config and layers of an image, then its manifest by digest.
func (b *builder) newImage(ctx context.Context, repo string, s imageSpec) (*image, error) {
	cfg := ocispec.Image{
		Created:  &epoch,
		Platform: *platform(s.arch),
		Config:   ocispec.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"}, Labels: s.labels},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	for i, l := range s.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		cfg.History = append(cfg.History, ocispec.History{Created: &epoch, CreatedBy: fmt.Sprintf("testbed layer %d", i)})
	}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	config, err := b.dataBlob(ctx, repo, cfgData)
	if err != nil {
		return nil, err
	}
	mt, cfgMT, layerMT := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip
	if s.docker {
		mt, cfgMT, layerMT = MediaTypeDockerManifest, MediaTypeDockerConfig, MediaTypeDockerLayer
	}
	m := ocispec.Manifest{
		MediaType: mt,
		Config:    ocispec.Descriptor{MediaType: cfgMT, Digest: config.digest, Size: config.size},
	}
	m.SchemaVersion = 2
	blobs := []*blob{config}
	for _, l := range s.layers {
		if err := b.ensureBlob(ctx, repo, l); err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerMT, Digest: l.digest, Size: l.size})
		blobs = append(blobs, l)
	}
	data, err := marshalManifest(m, s.docker)
	if err != nil {
		return nil, err
	}
	d, err := b.c.PushManifest(ctx, repo, digest.FromBytes(data).String(), mt, data)
	if err != nil {
		return nil, err
	}
	im := &image{blobs: blobs, info: ImageInfo{
		Role: s.role, Repository: repo, Digest: d, MediaType: mt, Size: int64(len(data)),
		Manifest: data, Arch: s.arch, Component: s.component,
	}}
	for _, bl := range blobs {
		im.info.Blobs = append(im.info.Blobs, bl.digest)
	}
	return im, nil
}

// newIndex pushes a manifest list (or OCI index) of children by digest.
func (b *builder) newIndex(ctx context.Context, repo, role, component string, docker bool, children []*image) (*image, error) {
	mt := ocispec.MediaTypeImageIndex
	if docker {
		mt = MediaTypeDockerManifestList
	}
	idx := ocispec.Index{MediaType: mt, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, c := range children {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: c.info.MediaType, Digest: c.info.Digest, Size: c.info.Size, Platform: platform(c.info.Arch),
		})
	}
	data, err := marshalManifest(idx, docker)
	if err != nil {
		return nil, err
	}
	d, err := b.c.PushManifest(ctx, repo, digest.FromBytes(data).String(), mt, data)
	if err != nil {
		return nil, err
	}
	im := &image{children: children, info: ImageInfo{
		Role: role, Repository: repo, Digest: d, MediaType: mt, Size: int64(len(data)),
		Manifest: data, Component: component,
	}}
	for _, c := range children {
		c.info.Parent = d
		im.info.Children = append(im.info.Children, c.info.Digest)
	}
	return im, nil
}

// ensureImage puts an image made earlier (ShareWith) into this registry:
// nothing to do when it is there, else its children, blobs and manifest.
// A tagged image (a signature) gets its tag again either way.
func (b *builder) ensureImage(ctx context.Context, im *image) error {
	repo := im.info.Repository
	if _, err := b.c.HeadManifest(ctx, repo, im.info.Digest.String()); err != nil {
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		for _, c := range im.children {
			if err := b.ensureImage(ctx, c); err != nil {
				return err
			}
		}
		for _, bl := range im.blobs {
			if err := b.ensureBlob(ctx, repo, bl); err != nil {
				return err
			}
		}
		if _, err := b.c.PushManifest(ctx, repo, im.info.Digest.String(), im.info.MediaType, im.info.Manifest); err != nil {
			return err
		}
	}
	if im.info.Tag != "" {
		if _, err := b.c.PushManifest(ctx, repo, im.info.Tag, im.info.MediaType, im.info.Manifest); err != nil {
			return err
		}
	}
	return nil
}

// dataBlob pushes a small in-memory blob (a config, a signature payload).
func (b *builder) dataBlob(ctx context.Context, repo string, data []byte) (*blob, error) {
	bl := &blob{digest: digest.FromBytes(data), size: int64(len(data)), data: data}
	return bl, b.ensureBlob(ctx, repo, bl)
}

// newLayer generates a random layer labelled label and pushes it to repo.
func (b *builder) newLayer(ctx context.Context, repo, label string) (*blob, error) {
	seed := seedFor(b.opts.Seed, b.opts.Version, label)
	name, size := layerFileName(label), b.opts.LayerSize
	if size <= streamThreshold {
		var buf bytes.Buffer
		diffID, err := writeRandomLayer(&buf, seed, name, size)
		if err != nil {
			return nil, err
		}
		data := buf.Bytes()
		bl := &blob{digest: digest.FromBytes(data), size: int64(len(data)), diffID: diffID, data: data}
		return bl, b.ensureBlob(ctx, repo, bl)
	}
	var diffID digest.Digest
	gen := func(w io.Writer) error {
		var err error
		diffID, err = writeRandomLayer(w, seed, name, size)
		return err
	}
	d, n, err := b.stream(ctx, repo, gen)
	if err != nil {
		return nil, fmt.Errorf("pushing layer %s: %w", label, err)
	}
	bl := &blob{digest: d, size: n, diffID: diffID, gen: func(w io.Writer) error {
		_, err := writeRandomLayer(w, seed, name, size)
		return err
	}}
	b.mu.Lock()
	f := &flight{done: make(chan struct{})}
	close(f.done)
	b.flights[repo+"@"+d.String()] = f
	if _, ok := b.homes[d]; !ok {
		b.homes[d] = repo
	}
	b.mu.Unlock()
	return bl, nil
}

// stream pushes what gen writes, generated while it uploads. gen has
// returned when stream does.
func (b *builder) stream(ctx context.Context, repo string, gen func(io.Writer) error) (digest.Digest, int64, error) {
	pr, pw := io.Pipe()
	genErr := make(chan error, 1)
	go func() {
		err := gen(pw)
		_ = pw.CloseWithError(err)
		genErr <- err
	}()
	d, n, err := b.c.PushBlobFrom(ctx, repo, pr)
	_ = pr.CloseWithError(io.ErrClosedPipe) // unblocks gen if the push stopped early
	if gerr := <-genErr; gerr != nil && err == nil {
		err = gerr
	}
	return d, n, err
}

// ensureBlob makes sure repo holds bl, pushing it at most once per build
// even when asked concurrently: present, mounted from a repository of this
// registry that has it, or uploaded (regenerated if large).
func (b *builder) ensureBlob(ctx context.Context, repo string, bl *blob) error {
	key := repo + "@" + bl.digest.String()
	b.mu.Lock()
	if f, ok := b.flights[key]; ok {
		b.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	b.flights[key] = f
	home := b.homes[bl.digest]
	b.mu.Unlock()

	f.err = b.pushBlob(ctx, repo, home, bl)
	if f.err == nil {
		b.mu.Lock()
		if _, ok := b.homes[bl.digest]; !ok {
			b.homes[bl.digest] = repo
		}
		b.mu.Unlock()
	}
	close(f.done)
	return f.err
}

func (b *builder) pushBlob(ctx context.Context, repo, home string, bl *blob) error {
	ok, err := b.c.BlobExists(ctx, repo, bl.digest)
	if err != nil || ok {
		return err
	}
	if home != "" && home != repo {
		if ok, err := b.c.MountBlob(ctx, repo, home, bl.digest); err != nil || ok {
			return err
		}
	}
	if bl.data != nil {
		return b.c.uploadBlob(ctx, repo, bl.digest, bl.data)
	}
	if bl.gen == nil {
		return fmt.Errorf("blob %s: no content to push", bl.digest)
	}
	d, _, err := b.stream(ctx, repo, bl.gen)
	if err == nil && d != bl.digest {
		err = fmt.Errorf("regenerated blob has digest %s, want %s", d, bl.digest)
	}
	return err
}
