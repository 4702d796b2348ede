package testbed

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

const (
	// catalogLayerSize is the random payload of a related image's one
	// layer: the images are there to be carried and found by digest, so
	// their size does not matter.
	catalogLayerSize = 1 << 10
	// catalogSeedLabel stands for ReleaseOptions.Version in the seeds of
	// the catalog's random layers, keeping them apart from a release's.
	catalogSeedLabel = "operator-catalog"
)

// catalogBuilder pushes one catalog. It borrows the release builder's
// blob and manifest pushing (deduplicated, mounted, in parallel).
type catalogBuilder struct {
	*builder
	copts   CatalogOptions
	refHost string // the registry the FBC names images on
	plan    []pkgPlan

	related  map[string]*image // relatedKey -> its top image
	relPlans map[string]relatedPlan
	bundles  map[string]*image // bundle name -> its image
	sigs     []*image
}

func buildCatalog(ctx context.Context, host string, opts CatalogOptions) (*Catalog, error) {
	cb, err := newCatalogBuilder(host, opts, catalogPlan())
	if err != nil {
		return nil, err
	}
	if err := cb.pushRelatedImages(ctx); err != nil {
		return nil, err
	}
	if err := cb.pushBundleImages(ctx); err != nil {
		return nil, err
	}
	return cb.catalog(ctx)
}

// newCatalogBuilder checks opts and makes the builder of a catalog of
// plan's packages (nil for none: the images of a catalog whose FBC comes
// from elsewhere, as BuildLargeCatalog's does).
func newCatalogBuilder(host string, opts CatalogOptions, plan []pkgPlan) (*catalogBuilder, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	cb := &catalogBuilder{
		builder: &builder{
			c: NewClient(host), host: host, arches: []string{"amd64"},
			opts:    ReleaseOptions{Seed: opts.Seed, Version: catalogSeedLabel, LayerSize: catalogLayerSize, Concurrency: opts.Concurrency},
			flights: map[string]*flight{}, homes: map[digest.Digest]string{}, faulty: map[digest.Digest]string{},
		},
		copts: opts, refHost: opts.ReferenceHost, plan: plan,
		related: map[string]*image{}, relPlans: map[string]relatedPlan{}, bundles: map[string]*image{},
	}
	if cb.refHost == "" {
		cb.refHost = host
	}
	if opts.Multi {
		cb.arches = CatalogArches()
	}
	if opts.Sigstore {
		cb.sigKey = opts.SigstoreKey
		if cb.sigKey == nil {
			var err error
			if cb.sigKey, err = seededSigstoreKey(opts.Seed, "catalog-sigstore-key"); err != nil {
				return nil, err
			}
		}
	}
	return cb, nil
}

// pushRelatedImages pushes every related image of the plan once.
func (cb *catalogBuilder) pushRelatedImages(ctx context.Context) error {
	var keys []string
	for _, p := range cb.plan {
		for _, bp := range p.bundles {
			for _, r := range bp.related {
				if _, ok := cb.relPlans[relatedKey(r)]; !ok {
					cb.relPlans[relatedKey(r)] = r
					keys = append(keys, relatedKey(r))
				}
			}
		}
	}
	tops := make([]*image, len(keys))
	err := cb.parallel(ctx, len(keys), func(ctx context.Context, i int) error {
		var err error
		tops[i], err = cb.relatedImage(ctx, cb.relPlans[keys[i]])
		return err
	})
	if err != nil {
		return err
	}
	for i, k := range keys {
		cb.related[k] = tops[i]
	}
	return nil
}

// relatedImage pushes one related image: a small image per arch (an index
// of them when Multi), and its tag if it is named by one. Operator images
// are OCI, the others Docker schema 2.
func (cb *catalogBuilder) relatedImage(ctx context.Context, r relatedPlan) (*image, error) {
	docker := !r.signed
	role := RoleRelated
	if cb.copts.Multi {
		role = RoleChild
	}
	labels := map[string]string{"name": r.repo, "version": r.variant}
	var children []*image
	for _, arch := range cb.arches {
		layer, err := cb.newLayer(ctx, r.repo, "related/"+r.repo+"/"+r.variant+"/"+arch)
		if err != nil {
			return nil, fmt.Errorf("related image %s: %w", r.repo, err)
		}
		im, err := cb.newImage(ctx, r.repo, imageSpec{role: role, arch: arch, docker: docker, labels: labels, layers: []*blob{layer}})
		if err != nil {
			return nil, fmt.Errorf("related image %s: %w", r.repo, err)
		}
		children = append(children, im)
	}
	top := children[0]
	if cb.copts.Multi {
		var err error
		if top, err = cb.newIndex(ctx, r.repo, RoleRelated, "", docker, children); err != nil {
			return nil, fmt.Errorf("related image %s: %w", r.repo, err)
		}
	}
	if r.tag != "" {
		if _, err := cb.c.PushManifest(ctx, r.repo, r.tag, top.info.MediaType, top.info.Manifest); err != nil {
			return nil, fmt.Errorf("tagging related image %s:%s: %w", r.repo, r.tag, err)
		}
		top.info.Tag = r.tag
	}
	return top, nil
}

// pushBundleImages pushes every bundle's image: a Docker schema 2 image
// whose one small layer holds metadata/annotations.yaml and whose config
// carries the same as labels, as operator-sdk builds them.
func (cb *catalogBuilder) pushBundleImages(ctx context.Context) error {
	type job struct {
		p  pkgPlan
		bp bundlePlan
	}
	var jobs []job
	for _, p := range cb.plan {
		for _, bp := range p.bundles {
			jobs = append(jobs, job{p, bp})
		}
	}
	images := make([]*image, len(jobs))
	err := cb.parallel(ctx, len(jobs), func(ctx context.Context, i int) error {
		var err error
		images[i], err = cb.bundleImage(ctx, jobs[i].p, jobs[i].bp)
		return err
	})
	if err != nil {
		return err
	}
	for i, j := range jobs {
		cb.bundles[j.p.bundleName(j.bp.version)] = images[i]
	}
	return nil
}

func (cb *catalogBuilder) bundleImage(ctx context.Context, p pkgPlan, bp bundlePlan) (*image, error) {
	name := p.bundleName(bp.version)
	repo := p.ns + "/" + p.ns + "-operator-bundle"
	var channels []string
	for _, ch := range p.channels {
		if slices.ContainsFunc(ch.entries, func(e entryPlan) bool { return e.version == bp.version }) {
			channels = append(channels, ch.name)
		}
	}
	labels := map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1":       "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1":       "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":        "metadata/",
		"operators.operatorframework.io.bundle.package.v1":         p.name,
		"operators.operatorframework.io.bundle.channels.v1":        strings.Join(channels, ","),
		"operators.operatorframework.io.bundle.channel.default.v1": p.defaultChannel,
	}
	var annotations strings.Builder
	annotations.WriteString("annotations:\n")
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(&annotations, "  %s: %s\n", k, labels[k])
	}
	seed := seedFor(cb.copts.Seed, catalogSeedLabel, "bundle", name)
	labels["io.ferry.testbed.content"] = hex.EncodeToString(seed[:8])
	data, diffID, err := smallLayer([]tarFile{
		{name: "metadata/"},
		{name: "metadata/annotations.yaml", data: []byte(annotations.String())},
	})
	if err != nil {
		return nil, fmt.Errorf("bundle image %s: %w", name, err)
	}
	layer := &blob{digest: digest.FromBytes(data), size: int64(len(data)), diffID: diffID, data: data}
	im, err := cb.newImage(ctx, repo, imageSpec{role: RoleBundle, component: name, arch: "amd64", docker: true, labels: labels, layers: []*blob{layer}})
	if err != nil {
		return nil, fmt.Errorf("bundle image %s: %w", name, err)
	}
	return im, nil
}

// refs are the references the FBC names the pushed images by.
func (cb *catalogBuilder) refs() imageRefs {
	refs := imageRefs{bundles: map[string]string{}, related: map[string]string{}}
	for name, im := range cb.bundles {
		refs.bundles[name] = cb.refHost + "/" + im.info.Repository + "@" + im.info.Digest.String()
	}
	for key, im := range cb.related {
		r := cb.relPlans[key]
		if r.tag != "" {
			refs.related[key] = cb.refHost + "/" + r.repo + ":" + r.tag
		} else {
			refs.related[key] = cb.refHost + "/" + r.repo + "@" + im.info.Digest.String()
		}
	}
	return refs
}

// fbc is the catalog's FBC as written (every package) and as the image
// serves it (without a WhiteoutPackage), and the files that hold it.
func (cb *catalogBuilder) fbc() (written, served *declcfg.DeclarativeConfig, files map[string][]byte, err error) {
	refs := cb.refs()
	written, served, files = &declcfg.DeclarativeConfig{}, &declcfg.DeclarativeConfig{}, map[string][]byte{}
	for _, p := range cb.plan {
		cfg := p.fbc(refs)
		pf, err := p.files(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		for name, data := range pf {
			files[name] = data
		}
		appendFBC(written, cfg)
		if p.name != cb.copts.WhiteoutPackage {
			appendFBC(served, cfg)
		}
	}
	sortFBC(written)
	sortFBC(served)
	return written, served, files, nil
}

func appendFBC(to *declcfg.DeclarativeConfig, cfg declcfg.DeclarativeConfig) {
	to.Packages = append(to.Packages, cfg.Packages...)
	to.Channels = append(to.Channels, cfg.Channels...)
	to.Bundles = append(to.Bundles, cfg.Bundles...)
	to.Deprecations = append(to.Deprecations, cfg.Deprecations...)
}
