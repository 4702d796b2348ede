package pack

import (
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror"
)

// index fills everything the bundle writer does not: releases, images,
// options.
func (p *writer) index() *bundle.Index {
	idx := &bundle.Index{Tool: p.opts.Tool, Options: p.opts.Record}
	idx.Prerequisites = p.opts.Prerequisites
	idx.UpdatePath = p.opts.UpdatePath
	for _, r := range p.plan.Releases {
		signed := p.opts.Signatures[r.Digest]
		rel := bundle.Release{
			Version: r.Version, Arch: r.Arch, Source: r.PullSpec(), Digest: r.Digest,
			MediaType: r.MediaType, Tag: r.Tag(), Unsigned: len(signed) == 0,
			Signatures: []bundle.ReleaseSignature{}, Components: []bundle.Component{},
		}
		for i, a := range signed {
			rel.Signatures = append(rel.Signatures, bundle.ReleaseSignature{
				File: bundle.SignatureName(r.Digest, i+1), KeyFingerprint: a.Verified.Fingerprint,
				Identity: a.Verified.Identity, Creator: a.Verified.Creator,
			})
		}
		if !rel.Unsigned {
			rel.ConfigMap = signatureConfigMapName(r.Digest)
		}
		for _, c := range r.Components {
			rel.Components = append(rel.Components, bundle.Component{Name: c.Name, Image: c.Image})
		}
		idx.Releases = append(idx.Releases, rel)
	}
	idx.Sigstore = sigstoreRecord(p.plan)
	for _, c := range p.plan.Catalogs {
		idx.Catalogs = append(idx.Catalogs, CatalogRecord(c))
	}
	extrasRecord(idx, p.plan)
	for _, img := range p.plan.Images {
		idx.Images = append(idx.Images, bundle.Image{
			Source: img.Repository, Digest: img.Digest, MediaType: img.MediaType, Size: int64(len(img.Manifest)),
			Tags: img.Tags, Role: img.Role, Children: img.Children, Blobs: img.Blobs, Target: img.Target,
		})
	}
	return idx
}

func signatureConfigMapName(d digest.Digest) string {
	return "mirror/config/" + manifests.SignatureConfigMapFile(d)
}

// addSignatures stores each release's verified signatures, numbered as the
// cluster reads them, and the ConfigMap that carries them to the cluster.
func (p *writer) addSignatures(w *bundle.Writer, idx *bundle.Index) error {
	for _, r := range idx.Releases {
		accepted := p.opts.Signatures[r.Digest]
		if len(accepted) == 0 {
			continue
		}
		sigs := make([][]byte, len(accepted))
		for i, a := range accepted {
			sigs[i] = a.Data
			if err := w.AddFile(r.Signatures[i].File, a.Data); err != nil {
				return err
			}
		}
		cm, err := manifests.SignatureConfigMap(r.Digest, sigs)
		if err != nil {
			return err
		}
		if err := w.AddFile(r.ConfigMap, cm); err != nil {
			return err
		}
	}
	return nil
}

// addManifests stores every manifest once, byte for byte.
func (p *writer) addManifests(w *bundle.Writer) error {
	seen := map[digest.Digest]bool{}
	for _, img := range p.plan.Images {
		if seen[img.Digest] {
			continue
		}
		seen[img.Digest] = true
		if err := w.AddFile(bundle.BlobName(img.Digest), img.Manifest); err != nil {
			return err
		}
	}
	return nil
}

// addLayout writes the OCI layout files, one index entry per target tag.
func (p *writer) addLayout(w *bundle.Writer) error {
	var entries []bundle.LayoutEntry
	for _, img := range p.plan.Images {
		for _, tag := range img.Tags {
			entries = append(entries, bundle.LayoutEntry{Digest: img.Digest, MediaType: img.MediaType, Size: int64(len(img.Manifest)), RefName: tag})
		}
	}
	index, err := bundle.OCIIndex(entries)
	if err != nil {
		return err
	}
	if err := w.AddFile(bundle.LayoutFileName, bundle.OCILayout()); err != nil {
		return err
	}
	return w.AddFile(bundle.LayoutIndexName, index)
}

// sigstoreRecord is the index's account of the plan's Sigstore proof.
func sigstoreRecord(plan *mirror.Plan) *bundle.Sigstore {
	if plan.Sigstore == nil {
		return nil
	}
	rec := &bundle.Sigstore{Mode: string(plan.Sigstore.Mode), Checked: plan.Sigstore.Checked}
	for _, r := range plan.Releases {
		for _, pol := range r.Policies {
			sp := bundle.SigstorePolicy{
				Release: r.Digest, Kind: pol.Kind, Namespace: pol.Namespace, Name: pol.Name, File: pol.File,
				Scopes: pol.Scopes, RootOfTrust: pol.RootOfTrust, MatchPolicy: pol.MatchPolicy,
			}
			sp.KeySHA256 = pol.KeyFingerprint()
			rec.Policies = append(rec.Policies, sp)
		}
	}
	for _, g := range plan.Sigstore.Gaps {
		rec.Gaps = append(rec.Gaps, bundle.SigstoreGap{Name: g.Name, Repository: g.Repository, Digest: g.Digest, Unsigned: g.Unsigned, Reason: g.Reason})
	}
	return rec
}

// CatalogRecord is the index's account of a carried catalog: what was
// kept and why, and what every image its bundles name resolved to.
func CatalogRecord(c *mirror.Catalog) bundle.Catalog {
	rec := bundle.Catalog{
		Ref: c.Selection.Catalog, SourceDigest: c.Source.Digest,
		Source: c.Source.Repository, Digest: c.Rebuilt.Digest, Tag: c.Tag,
		ConfigsDir: c.Source.ConfigsDir, FBCLayer: c.FBCLayer, Filter: c.Filter,
		Packages: []bundle.CatalogPackage{}, Images: []bundle.CatalogImage{},
	}
	for _, p := range c.Report.Packages {
		pkg := bundle.CatalogPackage{Name: p.Name, Selected: p.Selected, DefaultChannel: p.DefaultChannel,
			DefaultChannelRewrittenFrom: p.DefaultChannelRewrittenFrom, Channels: []bundle.CatalogChannel{}}
		for _, ch := range p.Channels {
			pkg.Channels = append(pkg.Channels, bundle.CatalogChannel{Name: ch.Name, Head: ch.Head, VersionRange: ch.VersionRange,
				Bundles: ch.Bundles, KeptForConnectivity: ch.KeptForConnectivity, NoUpgradePath: ch.NoUpgradePath})
		}
		for _, d := range p.DependenciesAdded {
			pkg.DependenciesAdded = append(pkg.DependenciesAdded,
				fmt.Sprintf("%s (channel %s), required by %s: %s", d.Bundle, d.Channel, d.RequiredBy, d.Requirement))
		}
		for _, d := range p.DependenciesUnresolved {
			pkg.DependenciesUnresolved = append(pkg.DependenciesUnresolved, fmt.Sprintf("%s %s: %s", d.Bundle, d.Requirement, d.Reason))
		}
		rec.Packages = append(rec.Packages, pkg)
	}
	for _, im := range c.Images {
		rec.Images = append(rec.Images, bundle.CatalogImage{Ref: im.Ref, Source: im.Repository, Digest: im.Digest})
	}
	if s := c.ImageSignatures; s != nil {
		rec.ImageSignatures = &bundle.CatalogImageSignatures{Signed: s.Signed, Unsigned: s.Unsigned, NoStore: s.NoStore}
	}
	return rec
}

// extrasRecord records the additional images, the blocked ones, the
// KubeVirt containers and the graph-data image of a plan.
func extrasRecord(idx *bundle.Index, plan *mirror.Plan) {
	for _, a := range plan.Additional {
		rec := bundle.AdditionalImage{Ref: a.Ref, Source: a.Repository, Tag: a.Tag, Digest: a.Digest, SourceDigest: a.SourceDigest,
			Target: a.Target, TargetTag: a.TargetTag, AlreadyCarried: a.AlreadyCarried, MovedFrom: a.MovedFrom}
		for _, p := range a.Platforms {
			rec.Platforms = append(rec.Platforms, p.String())
		}
		idx.Additional = append(idx.Additional, rec)
	}
	for _, b := range plan.Blocked {
		idx.Blocked = append(idx.Blocked, bundle.BlockedImage{Ref: b.Ref, Pattern: b.Pattern})
	}
	for _, r := range plan.Releases {
		for _, k := range r.KubeVirt {
			idx.KubeVirt = append(idx.KubeVirt, bundle.KubeVirtImage{Release: k.Release, Arch: k.Arch, Ref: k.Ref, Source: k.Repository, Digest: k.Digest, Tag: k.Tag})
		}
	}
	if g := plan.Graph; g != nil {
		idx.GraphData = &bundle.GraphData{Version: g.Data.Version, Releases: g.Data.Versions, Base: g.Base,
			Source: g.Repository, Digest: g.Digest, Target: g.Target, Tag: g.Tag}
		if idx.GraphData.Releases == nil {
			idx.GraphData.Releases = []string{}
		}
	}
}
