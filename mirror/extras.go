package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/mirror/graphdata"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
)

// KubeVirtImage is the RHCOS KubeVirt container a release's
// coreos-bootimages manifest names for one architecture.
type KubeVirtImage struct {
	Release    string // the release's version
	Arch       string
	Ref        string // as the manifest names it
	Repository string
	Digest     digest.Digest
	Tag        string // its target tag: <version>-<arch>-rhcos-kubevirt
}

// kubeVirt walks the KubeVirt containers rel's payload names for its
// architecture (every one for a multi release).
func (w *walk) kubeVirt(ctx context.Context, rel *Release) error {
	boot, err := release.ParseBootImages(rel.bootImages)
	if rel.bootImages == nil {
		return fmt.Errorf("kubeVirtContainer: %w", release.ErrNoBootImages)
	}
	if err != nil {
		return fmt.Errorf("kubeVirtContainer: %w", err)
	}
	var containers []release.KubeVirtContainer
	if rel.Arch == "multi" {
		containers, err = boot.KubeVirtContainers()
	} else {
		var k *release.KubeVirtContainer
		if k, err = boot.KubeVirtContainer(rel.Arch); err == nil {
			containers = []release.KubeVirtContainer{*k}
		}
	}
	if err != nil {
		return fmt.Errorf("kubeVirtContainer: %w", err)
	}
	for _, k := range containers {
		img, err := w.kubeVirtImage(ctx, rel, k)
		if err != nil {
			return fmt.Errorf("kubeVirtContainer %s (%s): %w", k.Image, k.Arch, err)
		}
		rel.KubeVirt = append(rel.KubeVirt, img)
	}
	return nil
}

func (w *walk) kubeVirtImage(ctx context.Context, rel *Release, k release.KubeVirtContainer) (KubeVirtImage, error) {
	src, err := w.source(ctx, k.Repository)
	if err != nil {
		return KubeVirtImage{}, err
	}
	var m registry.Manifest
	if k.Digest != "" {
		m, err = src.Manifest(ctx, k.Digest)
	} else {
		m, err = src.ManifestByTag(ctx, k.Tag)
	}
	if err != nil {
		return KubeVirtImage{}, err
	}
	tag := rel.Version + "-" + k.Arch + "-rhcos-kubevirt"
	if _, err := w.addImage(ctx, src, k.Repository, m, RoleComponent, tag); err != nil {
		return KubeVirtImage{}, err
	}
	return KubeVirtImage{Release: rel.Version, Arch: k.Arch, Ref: k.Image, Repository: k.Repository, Digest: m.Digest, Tag: tag}, nil
}

// GraphImage is the update service's graph-data image a plan built.
type GraphImage struct {
	// Data is the graph data it holds.
	Data *graphdata.Data
	// Base is the base image, repository@digest of the platform used.
	Base string
	// Repository and Digest name the built image; Target is where in the
	// mirror it goes and Tag its tag there.
	Repository string
	Digest     digest.Digest
	Target     string
	Tag        string
}

// GraphImageTarget is where the graph-data image goes under the target
// repository.
const GraphImageTarget = "graph-image"

// graphImage builds the graph-data image on the base image, for arch.
func (w *walk) graphImage(ctx context.Context) (*GraphImage, error) {
	opts := w.planner.GraphImage
	named, err := reference.ParseNormalizedNamed(opts.Base)
	if err != nil {
		return nil, fmt.Errorf("graph base image %q: %w", opts.Base, err)
	}
	repo := reference.TrimNamed(named).String()
	src, err := w.source(ctx, repo)
	if err != nil {
		return nil, err
	}
	m, err := resolveRef(ctx, src, reference.TagNameOnly(named)) // a bare name means :latest, as podman reads it
	if err != nil {
		return nil, fmt.Errorf("graph base image %s: %w", opts.Base, err)
	}
	if manifest.MIMETypeIsMultiImage(m.MediaType) {
		if m, err = platformOf(ctx, src, m, opts.Arch); err != nil {
			return nil, fmt.Errorf("graph base image %s: %w", opts.Base, err)
		}
	}
	base, err := w.baseImage(ctx, src, m)
	if err != nil {
		return nil, fmt.Errorf("graph base image %s: %w", opts.Base, err)
	}
	built, err := graphdata.BuildImage(base, opts.Data)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	for _, b := range built.Blobs {
		w.generated[b.Digest] = b.Data
	}
	w.mu.Unlock()
	tag := "graph-data-" + tagUnsafe.ReplaceAllString(strings.TrimSpace(opts.Data.Version), "-")
	img := &Image{Repository: repo, Digest: built.Digest, MediaType: built.MediaType, Manifest: built.Manifest,
		Role: RoleGraphData, Tags: []string{tag}, Target: GraphImageTarget}
	if err := w.addBlobs(img); err != nil {
		return nil, fmt.Errorf("graph-data image: %w", err)
	}
	if err := w.addGenerated(img); err != nil {
		return nil, err
	}
	w.setTarget(img, GraphImageTarget)
	return &GraphImage{Data: opts.Data, Base: repo + "@" + m.Digest.String(), Repository: repo, Digest: built.Digest,
		Target: GraphImageTarget, Tag: tag}, nil
}

// errNoTagOrDigest is a reference that names only a repository.
var errNoTagOrDigest = errors.New("the reference names neither a digest nor a tag")

// resolveRef reads the manifest a reference names: by its digest, else by
// its tag.
func resolveRef(ctx context.Context, src *registry.Source, named reference.Named) (registry.Manifest, error) {
	switch n := named.(type) {
	case reference.Digested:
		return src.Manifest(ctx, n.Digest())
	case reference.Tagged:
		return src.ManifestByTag(ctx, n.Tag())
	}
	return registry.Manifest{}, errNoTagOrDigest
}

// tagOf is the tag a reference is resolved by: "" when it names a digest.
func tagOf(named reference.Named) string {
	if _, ok := named.(reference.Digested); ok {
		return ""
	}
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// platformOf picks the linux image for a release architecture out of a
// manifest list.
func platformOf(ctx context.Context, src *registry.Source, m registry.Manifest, arch string) (registry.Manifest, error) {
	goarch, err := release.GraphArch(arch)
	if err != nil {
		return registry.Manifest{}, err
	}
	if goarch == release.ArchMulti {
		goarch = "amd64" // the update service runs where the cluster does; a multi cluster's control plane is most often amd64
	}
	list, err := manifest.ListFromBlob(m.Bytes, m.MediaType)
	if err != nil {
		return registry.Manifest{}, err
	}
	for _, d := range list.Instances() {
		inst, err := list.Instance(d)
		if err == nil && inst.ReadOnly.Platform != nil && inst.ReadOnly.Platform.OS == "linux" && inst.ReadOnly.Platform.Architecture == goarch {
			return src.Manifest(ctx, d)
		}
	}
	return registry.Manifest{}, fmt.Errorf("the list %s has no linux/%s image", m.Digest, goarch)
}

// baseImage reads a single image's config, verified.
func (w *walk) baseImage(ctx context.Context, src *registry.Source, m registry.Manifest) (graphdata.BaseImage, error) {
	parsed, err := manifest.FromBlob(m.Bytes, m.MediaType)
	if err != nil {
		return graphdata.BaseImage{}, err
	}
	cfg := parsed.ConfigInfo()
	if cfg.Size < 0 || cfg.Size > maxConfigSize {
		return graphdata.BaseImage{}, fmt.Errorf("config %s is %d bytes, more than %d", cfg.Digest, cfg.Size, maxConfigSize)
	}
	rc, err := src.VerifiedBlob(ctx, cfg.Digest, cfg.Size)
	if err != nil {
		return graphdata.BaseImage{}, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, cfg.Size+1))
	if err != nil {
		return graphdata.BaseImage{}, fmt.Errorf("read config %s: %w", cfg.Digest, err)
	}
	return graphdata.BaseImage{Manifest: m.Bytes, MediaType: m.MediaType, Config: data}, nil
}
