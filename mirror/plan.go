// Package mirror works out what carrying an update means: every manifest,
// config and layer of each release image and of each component it
// references, and every Sigstore signature tag beside them; operator
// catalogs, filtered and rebuilt, with every image their kept bundles
// name; additional images, the RHCOS KubeVirt container and the update
// service's graph-data image. It reads manifests (and the few layers that
// say what a release or catalog holds); the other layers are fetched by
// whoever writes them.
package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/graphdata"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// Image roles, as recorded in the bundle index.
const (
	RoleRelease    = "release"
	RoleComponent  = "component"
	RoleChild      = "child"      // an arch-specific image inside a manifest list
	RoleSigstore   = "sigstore"   // a cosign sha256-<hex>.sig manifest
	RoleCatalog    = "catalog"    // an operator catalog, rebuilt with the selected packages
	RoleOperator   = "operator"   // a bundle image or related image a catalog names
	RoleAdditional = "additional" // an image carried because the packer named it
	RoleGraphData  = "graph-data" // the update service's graph-data image, built by ferry
)

// roleRank orders a plan's images: releases, their components, catalogs,
// their operator images, the per-arch children, then signatures.
func roleRank(role string) int {
	switch role {
	case RoleRelease:
		return 0
	case RoleComponent:
		return 1
	case RoleCatalog:
		return 2
	case RoleOperator:
		return 3
	case RoleAdditional, RoleGraphData:
		return 4
	case RoleChild:
		return 5
	}
	return 6
}

// Plan is everything a set of releases needs, deduplicated: images by
// repository and digest, blobs by digest. It keeps one open registry source
// per repository for fetching the blobs; Close it when done.
type Plan struct {
	Releases []*Release
	Images   []*Image
	Blobs    []*Blob
	// Sigstore is what the plan proved of the signatures the releases'
	// image policies demand.
	Sigstore *SigstoreReport
	// Catalogs are the operator catalogs, in the order selected.
	Catalogs []*Catalog
	// Additional are the additional images, Blocked those left out.
	Additional []Additional
	Blocked    []Blocked
	// Graph is the update service's graph-data image, when built.
	Graph   *GraphImage
	sources map[string]*registry.Source
	// generated holds the blobs ferry made (a rebuilt catalog's configs
	// and its catalog layer), by digest.
	generated map[digest.Digest][]byte
}

// OpenBlob streams b from its repository as the registry serves it; the
// caller checks the digest as it writes.
func (p *Plan) OpenBlob(ctx context.Context, b *Blob) (io.ReadCloser, error) {
	if data, ok := p.generated[b.Digest]; ok {
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	src, ok := p.sources[b.Repository]
	if !ok {
		return nil, fmt.Errorf("blob %s: no source for repository %s", b.Digest, b.Repository)
	}
	return src.Blob(ctx, b.Digest, b.Size)
}

// Close releases the registry connections.
func (p *Plan) Close() error {
	var errs []error
	for _, s := range p.sources {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// Bytes is the total size of the plan's unique blobs.
func (p *Plan) Bytes() int64 {
	var n int64
	for _, b := range p.Blobs {
		n += b.Size
	}
	return n
}

// Release is one release resolved to a digest, with what its image
// references name.
type Release struct {
	Ref        release.Ref
	Repository string
	Digest     digest.Digest
	MediaType  string
	Version    string
	Arch       string
	Components []release.Component
	// Policies are the image policies the release ships: what its nodes
	// demand of Sigstore signatures (none before 4.21).
	Policies []sigstore.Policy
	// KubeVirt are the RHCOS KubeVirt containers carried with it
	// (Planner.KubeVirt).
	KubeVirt []KubeVirtImage
	// bootImages is the payload's coreos-bootimages manifest, if any.
	bootImages []byte
}

// Tag is the tag the documented mirroring procedure gives the release.
func (r *Release) Tag() string { return r.Version + "-" + r.Arch }

// PullSpec is the release by digest in its source repository.
func (r *Release) PullSpec() string { return r.Repository + "@" + r.Digest.String() }

// Image is one manifest to carry, byte for byte.
type Image struct {
	Repository string
	Digest     digest.Digest
	MediaType  string
	Manifest   []byte
	Role       string
	Tags       []string        // target tags; none for children
	Children   []digest.Digest // for manifest lists
	Blobs      []digest.Digest // config and layers, for single images
	// Target is where in the mirror the image goes, as a repository path
	// under the target repository ("" for the target itself, where
	// releases, components and catalogs go): additional images go under
	// their source's path, so that their tags keep their meaning.
	Target string
}

// Blob is one config or layer to carry, with a repository it can be
// fetched from.
type Blob struct {
	Digest     digest.Digest
	Size       int64
	MediaType  string
	Repository string
	// ReleaseFiles marks the blobs a bundle carries even when the target
	// already holds them: a release image's config and each of its layers
	// the walk read release-manifests/ from, the payloads of cosign
	// signature images and a catalog's catalog layer (the offline proof
	// and checks read exactly these again). The blobs of images that go to
	// a repository under the target are left out only where that same
	// repository holds them (pack.LeaveOut).
	ReleaseFiles bool
}

// Planner walks releases through a registry.
type Planner struct {
	Registry *registry.Client
	// Parallel bounds concurrent manifest requests; <= 0 means registry.DefaultParallel.
	Parallel int
	// SigstoreMode says what to do when an image a release's policy
	// covers lacks a signature its nodes accept; empty is sigstore.Required.
	SigstoreMode sigstore.Mode
	// Catalogs are the operator catalogs to read, filter, rebuild and
	// carry with every image their kept bundles name.
	Catalogs []catalog.Selection
	// CatalogFilter tunes the filtering of every catalog.
	CatalogFilter catalog.FilterOptions
	// Images are additional images to carry; Blocked patterns leave out
	// the additional images whose reference they match (and refuse a
	// plan whose releases or catalogs need one).
	Images  []AdditionalImage
	Blocked []*regexp.Regexp
	// KubeVirt carries the RHCOS KubeVirt container each release's
	// coreos-bootimages manifest names.
	KubeVirt bool
	// ImageSignatures, when set, checks the lookaside signatures of the
	// images catalogs name.
	ImageSignatures *ImageSignatures
	// GraphImage, when set, builds the update service's graph-data image.
	GraphImage *GraphImageOptions
	// Progress, when it is a Stepper, shows the walk's steps; nil for none.
	Progress Progress

	// maxManifestBytes replaces MaxPlanManifestBytes when > 0, for tests.
	maxManifestBytes int64
}

// GraphImageOptions say how to build the update service's graph-data
// image: the data, the base image and the architecture of its platform.
type GraphImageOptions struct {
	Data *graphdata.Data
	Base string
	Arch string
}

// DefaultGraphBaseImage is the base Red Hat documents for the graph-data
// image: anything with bash and cp.
const DefaultGraphBaseImage = "registry.access.redhat.com/ubi9/ubi:latest"

// Plan resolves each release and walks everything it references.
func (p *Planner) Plan(ctx context.Context, refs []release.Ref) (*Plan, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWalk(ctx, p)
	plan := &Plan{sources: w.sources, generated: w.generated}
	err := p.walkAll(w.probeCtx, w, refs, plan)
	// The Sigstore lookups still running end before the plan does: they
	// use its registry sources.
	step := p.step(err == nil, "looking up Sigstore signatures")
	if err != nil {
		cancel()
	}
	probeErr := w.probes.Wait()
	if err == nil || (errors.Is(err, context.Canceled) && probeErr != nil) {
		err = probeErr
	}
	step.Done(w.walked(nil), err)
	if err == nil {
		w.placeSignatures()
		plan.Images, plan.Blobs = w.sorted()
		plan.Sigstore, err = w.checkSigstore(ctx, plan)
	}
	if err != nil {
		plan.Close()
		return nil, err
	}
	return plan, nil
}

// walkAll walks the releases, catalogs, additional images and graph
// image into plan, in that order.
func (p *Planner) walkAll(ctx context.Context, w *walk, refs []release.Ref, plan *Plan) error {
	for _, ref := range refs {
		step := BeginStep(p.Progress, "walking release "+refLabel(ref))
		rel, err := w.release(ctx, ref)
		step.Done(w.walked(rel), err)
		if err != nil {
			return fmt.Errorf("release %s: %w", ref, err)
		}
		plan.Releases = append(plan.Releases, rel)
	}
	step := p.step(len(p.Catalogs) > 0, fmt.Sprintf("reading %d operator catalogs", len(p.Catalogs)))
	catalogs, err := w.catalogs(ctx)
	step.Done(w.walked(nil), err)
	if err != nil {
		return err
	}
	plan.Catalogs = catalogs
	if err := checkBlocked(p.Blocked, plan); err != nil {
		return err
	}
	step = p.step(len(p.Images) > 0, fmt.Sprintf("reading %d additional images", len(p.Images)))
	plan.Additional, plan.Blocked, err = w.additionalImages(ctx)
	step.Done(w.walked(nil), err)
	if err != nil {
		return err
	}
	if p.GraphImage != nil {
		plan.Graph, err = w.graphImage(ctx)
	}
	return err
}

// refLabel names a release for a step: its tag, or its short digest.
func refLabel(ref release.Ref) string {
	if ref.Tag != "" {
		return ref.Tag
	}
	return ShortDigest(ref.Digest)
}

// step begins a step of the walk when show: a step with nothing to do is
// not shown.
func (p *Planner) step(show bool, name string) Step {
	if !show {
		return noStep{}
	}
	return BeginStep(p.Progress, name)
}

func (p *Planner) manifestBudget() int64 {
	if p.maxManifestBytes > 0 {
		return p.maxManifestBytes
	}
	return MaxPlanManifestBytes
}

func (p *Planner) parallel() int {
	if p.Parallel > 0 {
		return p.Parallel
	}
	return registry.DefaultParallel
}

// walk is the state of one Plan call.
type walk struct {
	planner *Planner
	mu      sync.Mutex
	images  map[string]*Image // repository@digest
	blobs   map[digest.Digest]*Blob
	sources map[string]*registry.Source
	// signatures maps an image (repository@digest) to its cosign
	// signature image.
	signatures map[string]*Image
	order      []string // image keys in discovery order, for a stable index
	// generated are the blobs ferry made; rebuilt the images it made
	// (repository@digest), which have no signature to look for.
	generated map[digest.Digest][]byte
	rebuilt   map[string]bool
	// manifestBytes is what the manifests in images take, and those being
	// walked: at most MaxPlanManifestBytes.
	manifestBytes int64
	// probes are the Sigstore tag lookups (probeSigstore), at most
	// Parallel at once; probeCtx is their context and the walk's,
	// cancelled when one fails.
	probes   *errgroup.Group
	probeCtx context.Context
}

// newWalk starts the state of one Plan call; ctx bounds the walk and its
// Sigstore lookups, which a failed lookup cancels.
func newWalk(ctx context.Context, p *Planner) *walk {
	probes, probeCtx := errgroup.WithContext(ctx)
	probes.SetLimit(p.parallel())
	return &walk{planner: p, images: map[string]*Image{}, blobs: map[digest.Digest]*Blob{}, sources: map[string]*registry.Source{},
		signatures: map[string]*Image{}, generated: map[digest.Digest][]byte{}, rebuilt: map[string]bool{},
		probes: probes, probeCtx: probeCtx}
}

// source returns the one registry source kept per repository.
func (w *walk) source(ctx context.Context, repo string) (*registry.Source, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.sources[repo]; ok {
		return s, nil
	}
	s, err := w.planner.Registry.Source(ctx, repo)
	if err != nil {
		return nil, err
	}
	w.sources[repo] = s
	return s, nil
}

// walked says what the walk has found so far, for a step's figure: rel's
// components when given, and the images and blobs of the whole walk.
func (w *walk) walked(rel *Release) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	found := fmt.Sprintf("%d images, %d blobs", len(w.images), len(w.blobs))
	if rel != nil {
		return fmt.Sprintf("%d components; %s", len(rel.Components), found)
	}
	return found
}

func (w *walk) sorted() ([]*Image, []*Blob) {
	images := make([]*Image, 0, len(w.order))
	for _, k := range w.order {
		images = append(images, w.images[k])
	}
	// The walk is concurrent, so discovery order varies; the index (and so
	// inspect's output and apply's push order) must not.
	sort.SliceStable(images, func(i, j int) bool {
		a, b := images[i], images[j]
		if roleRank(a.Role) != roleRank(b.Role) {
			return roleRank(a.Role) < roleRank(b.Role)
		}
		return imageKey(a.Repository, a.Digest) < imageKey(b.Repository, b.Digest)
	})
	blobs := make([]*Blob, 0, len(w.blobs))
	for _, b := range w.blobs {
		blobs = append(blobs, b)
	}
	// Largest first: the long transfers start early and the tail is short.
	sort.Slice(blobs, func(i, j int) bool {
		if blobs[i].Size != blobs[j].Size {
			return blobs[i].Size > blobs[j].Size
		}
		return blobs[i].Digest < blobs[j].Digest
	})
	return images, blobs
}
