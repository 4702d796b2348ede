package testbed

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// describe fills cat's Packages, Bundles, RelatedImages (from the FBC the
// image serves), Images, Blobs and SigTags (from everything pushed).
func (cb *catalogBuilder) describe(cat *Catalog, top *image) error {
	signed := map[digest.Digest]bool{}
	for _, s := range cb.sigs {
		signed[s.info.Signs] = true
	}
	for _, p := range cat.FBC.Packages {
		cat.Packages = append(cat.Packages, p.Name)
	}
	cat.Bundles = map[string]CatalogBundle{}
	related := map[string]*RelatedImage{}
	for _, b := range cat.FBC.Bundles {
		version, err := bundleVersionOf(b)
		if err != nil {
			return err
		}
		im := cb.bundles[b.Name]
		entry := CatalogBundle{
			Name: b.Name, Package: b.Package, Version: version,
			Image: b.Image, Repository: im.info.Repository, Digest: im.info.Digest,
			MaxOpenShiftVersion: propertyValue(b, maxOpenShiftVersionProperty),
			Signed:              signed[im.info.Digest],
		}
		for _, ch := range cat.FBC.Channels {
			if ch.Package == b.Package && slices.ContainsFunc(ch.Entries, func(e declcfg.ChannelEntry) bool { return e.Name == b.Name }) {
				entry.Channels = append(entry.Channels, ch.Name)
			}
		}
		slices.Sort(entry.Channels)
		for _, ri := range b.RelatedImages {
			entry.RelatedImages = append(entry.RelatedImages, ri.Image)
			if ri.Image == b.Image {
				continue
			}
			if r, ok := related[ri.Image]; ok {
				r.Bundles = append(r.Bundles, b.Name)
				continue
			}
			related[ri.Image] = &RelatedImage{Name: ri.Name, Image: ri.Image, Bundles: []string{b.Name}}
		}
		cat.Bundles[b.Name] = entry
	}
	cat.RelatedImages = cb.relatedImages(related, signed)
	cb.collectImages(cat, top)
	return nil
}

// relatedImages completes what the FBC says of each related image with
// what was pushed for it, sorted by reference.
func (cb *catalogBuilder) relatedImages(named map[string]*RelatedImage, signed map[digest.Digest]bool) []RelatedImage {
	keyOf := map[string]string{}
	for key, ref := range cb.refs().related {
		keyOf[ref] = key
	}
	var out []RelatedImage
	for _, ref := range slices.Sorted(maps.Keys(named)) {
		r := named[ref]
		key := keyOf[ref]
		im, plan := cb.related[key], cb.relPlans[key]
		r.Repository, r.Digest, r.MediaType, r.Tag = plan.repo, im.info.Digest, im.info.MediaType, plan.tag
		r.Signed = signed[im.info.Digest]
		slices.Sort(r.Bundles)
		out = append(out, *r)
	}
	return out
}

// collectImages lists every manifest pushed once per repository, children
// first, and their blobs.
func (cb *catalogBuilder) collectImages(cat *Catalog, top *image) {
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
		cat.Images = append(cat.Images, im.info)
		for _, bl := range im.blobs {
			cat.Blobs[bl.digest] = bl.size
		}
		if im.info.Role == RoleSigstore {
			cat.SigTags = append(cat.SigTags, im.info.Repository+":"+im.info.Tag)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(cb.related)) {
		add(cb.related[key])
	}
	for _, name := range slices.Sorted(maps.Keys(cb.bundles)) {
		add(cb.bundles[name])
	}
	add(top)
	for _, s := range cb.sigs {
		add(s)
	}
}

// bundleVersionOf is the version of b's olm.package property, as the plan
// wrote it.
func bundleVersionOf(b declcfg.Bundle) (string, error) {
	var p property.Package
	if err := json.Unmarshal([]byte(propertyValue(b, property.TypePackage)), &p); err != nil {
		return "", fmt.Errorf("bundle %s: %s: %w", b.Name, property.TypePackage, err)
	}
	return p.Version, nil
}

// propertyValue is the raw value of b's first property of type typ, "" if
// it has none.
func propertyValue(b declcfg.Bundle, typ string) string {
	for _, p := range b.Properties {
		if p.Type == typ {
			return string(p.Value)
		}
	}
	return ""
}
