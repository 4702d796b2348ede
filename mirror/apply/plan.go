package apply

import (
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/pack"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/trust"
)

// Proven is what a plan straight from the source registries may deliver:
// the images, sources and steps (as trust.Check reports them for a bundle)
// and the signature ConfigMaps made from the verified signatures.
type Proven struct {
	trust.Report
	ConfigMaps []manifests.File
}

// FromPlan turns a plan into what to deliver. The planner read
// image-references from each release image through digest-checked streams,
// after the caller verified the release signatures (signed, by release
// digest), so every image and tag in the plan is derived from the release
// chain, except the catalogs' images and those going under a target path
// (additional and graph-data images), which this run read from the source
// registry, digests checked. A release without accepted signatures (the
// caller allowed it) is listed as unverified. The mirror sets route the
// plan's repositories (to where their images go) and those the release
// signatures name (to the target), which is how the cluster pulls the
// release whichever registry it was copied from. updatePath, when the
// releases came from one, orders the steps; its first version is where
// the cluster is.
func FromPlan(plan *mirror.Plan, signed map[digest.Digest][]signature.Accepted, updatePath []string) (*Proven, error) {
	p := &Proven{Report: trust.Report{Routes: map[string][]string{}}}
	sizes := make(map[digest.Digest]int64, len(plan.Blobs))
	for _, b := range plan.Blobs {
		sizes[b.Digest] = b.Size
	}
	fromCatalogs := catalogImages(plan)
	for _, img := range plan.Images {
		proof := trust.ReleaseChain
		if fromCatalogs[img.Repository+"@"+img.Digest.String()] || img.Target != "" {
			proof = trust.SourceRegistry
		}
		ti := trust.Image{Source: img.Repository, Digest: img.Digest, MediaType: img.MediaType, Size: int64(len(img.Manifest)),
			Tags: slices.Clone(img.Tags), Children: img.Children, Blobs: img.Blobs, Proof: proof, Target: img.Target}
		for _, d := range img.Blobs {
			ti.BlobSizes = append(ti.BlobSizes, sizes[d])
		}
		p.Images = append(p.Images, ti)
		p.Sources = append(p.Sources, img.Repository)
		p.route(img.Repository, img.Target)
	}
	for _, r := range plan.Releases {
		if err := p.addRelease(r, signed[r.Digest]); err != nil {
			return nil, err
		}
	}
	slices.Sort(p.Sources)
	p.Sources = slices.Compact(p.Sources)
	for _, paths := range p.Routes {
		slices.Sort(paths)
	}
	p.Steps = planSteps(plan.Releases, len(updatePath) > 1)
	p.Sigstore = sigstoreProofOf(plan)
	for _, c := range plan.Catalogs {
		p.Catalogs = append(p.Catalogs, trust.Catalog{Catalog: pack.CatalogRecord(c), Proof: trust.SourceRegistry})
	}
	p.TagRoutes = tagRoutes(plan)
	if g := plan.Graph; g != nil {
		p.GraphData = &trust.GraphData{Proof: trust.SourceRegistry, GraphData: bundle.GraphData{Version: g.Data.Version, Releases: g.Data.Versions,
			Base: g.Base, Source: g.Repository, Digest: g.Digest, Target: g.Target, Tag: g.Tag}}
	}
	return p, nil
}

// tagRoutes are the paths that hold the plan's additional images named by
// tag under that tag, by source (as trust.Report.TagRoutes).
func tagRoutes(plan *mirror.Plan) map[string][]string {
	routes := map[string][]string{}
	for _, a := range plan.Additional {
		if a.Tag != "" && a.TargetTag == a.Tag && a.AlreadyCarried == "" && !slices.Contains(routes[a.Repository], a.Target) {
			routes[a.Repository] = append(routes[a.Repository], a.Target)
		}
	}
	return routes
}

// catalogImages are the images of a plan that came with its catalogs
// (repository@digest): each rebuilt catalog, every image its bundles name,
// their children and their signature images. No release signature covers
// them; what vouches for them in a direct mirror is that this run read
// them from the source registry, digests checked.
func catalogImages(plan *mirror.Plan) map[string]bool {
	keys := map[string]bool{}
	for _, c := range plan.Catalogs {
		keys[c.Source.Repository+"@"+c.Rebuilt.Digest.String()] = true
		for _, im := range c.Images {
			keys[im.Repository+"@"+im.Digest.String()] = true
		}
	}
	// plan.Images lists children after their lists, so a child's
	// signature is found too.
	signatures := map[string]bool{}
	for _, img := range plan.Images {
		if !keys[img.Repository+"@"+img.Digest.String()] {
			continue
		}
		for _, ch := range img.Children {
			keys[img.Repository+"@"+ch.String()] = true
		}
		signatures[img.Repository+":"+mirror.SigstoreTag(img.Digest)] = true
	}
	for _, img := range plan.Images {
		for _, tag := range img.Tags {
			if signatures[img.Repository+":"+tag] {
				keys[img.Repository+"@"+img.Digest.String()] = true
			}
		}
	}
	return keys
}

// sigstoreProofOf is the plan's Sigstore proof in the form trust reports
// it: the planner checked every signature under each release's policies.
func sigstoreProofOf(plan *mirror.Plan) *trust.SigstoreProof {
	if plan.Sigstore == nil {
		return nil
	}
	proof := &trust.SigstoreProof{Mode: plan.Sigstore.Mode, Result: plan.Sigstore.Result}
	for _, r := range plan.Releases {
		if len(r.Policies) > 0 {
			proof.Policies = append(proof.Policies, trust.ReleasePolicies{Version: r.Version, Digest: r.Digest, Policies: r.Policies})
		}
	}
	return proof
}

// addRelease records a release's ConfigMap and the repositories its
// signatures name, or that it is unverified.
func (p *Proven) addRelease(r *mirror.Release, accepted []signature.Accepted) error {
	if len(accepted) == 0 {
		p.Unverified = append(p.Unverified, "release "+r.Tag()+" ("+r.Digest.String()+") has no verified signature")
		return nil
	}
	sigs := make([][]byte, len(accepted))
	for i, a := range accepted {
		sigs[i] = a.Data
		if named, err := reference.ParseNormalizedNamed(a.Verified.Identity); err == nil {
			p.Sources = append(p.Sources, reference.TrimNamed(named).String())
			p.route(reference.TrimNamed(named).String(), "") // the cluster pulls the release from the target
		}
	}
	cm, err := manifests.SignatureConfigMap(r.Digest, sigs)
	if err != nil {
		return fmt.Errorf("release %s: %w", r.Tag(), err)
	}
	p.ConfigMaps = append(p.ConfigMaps, manifests.File{Name: manifests.SignatureConfigMapFile(r.Digest), Data: cm})
	return nil
}

// route records that images of source go to path under the target.
func (p *Proven) route(source, path string) {
	if !slices.Contains(p.Routes[source], path) {
		p.Routes[source] = append(p.Routes[source], path)
	}
}

// planSteps are the upgrades oldest first; along an update path the first
// release is where the cluster is, not a step.
func planSteps(releases []*mirror.Release, alongPath bool) []trust.Step {
	ordered := slices.Clone(releases)
	slices.SortStableFunc(ordered, func(a, b *mirror.Release) int { return release.CompareVersions(a.Version, b.Version) })
	if alongPath && len(ordered) > 0 {
		ordered = ordered[1:]
	}
	var steps []trust.Step
	for _, r := range ordered {
		steps = append(steps, trust.Step{Version: r.Version, Arch: r.Arch, Digest: r.Digest})
	}
	return steps
}
