package trust

import (
	"fmt"
	"slices"

	"go.podman.io/image/v5/docker/reference"

	"github.com/ferryhq/ferry/bundle"
)

// Catalog is an operator catalog apply may serve to the cluster: its
// rebuilt image and every image its bundles name are proven.
type Catalog struct {
	bundle.Catalog
	Proof Proof
}

// catalogs proves the index's operator catalogs. No release signature
// names a catalog, so only the bundle signature (or AllowUnproven) covers
// one; and a catalog is served only whole: its image, its tag, its catalog
// layer and every image its kept bundles name must be proven and carried,
// so that no CatalogSource points at a bundle the mirror lacks.
func (c *checker) catalogs() {
	for _, cat := range c.idx.Catalogs {
		what := fmt.Sprintf("operator catalog %s (image %s)", cat.Ref, imageKey(cat.Source, cat.Digest))
		proof, ok := c.accept(what)
		if !ok {
			c.rep.fault("%s is covered by no release signature, and no verified bundle signature covers it", what)
			c.rep.RefusedUnproven++
			continue
		}
		if c.wholeCatalog(cat) {
			c.rep.Catalogs = append(c.rep.Catalogs, Catalog{Catalog: cat, Proof: proof})
		}
	}
}

// wholeCatalog checks that everything a catalog needs is proven and
// carried, faulting for each thing missing.
func (c *checker) wholeCatalog(cat bundle.Catalog) bool {
	ok := true
	fail := func(format string, args ...any) {
		c.rep.fault("operator catalog %s: "+format, append([]any{cat.Ref}, args...)...)
		ok = false
	}
	img, proven := c.proven[imageKey(cat.Source, cat.Digest)]
	switch {
	case !proven:
		fail("its image %s is not among the proven images", imageKey(cat.Source, cat.Digest))
		return false
	case !slices.Contains(img.Tags, cat.Tag):
		fail("its tag %s is not on its image %s", cat.Tag, imageKey(cat.Source, cat.Digest))
	}
	for _, p := range c.platforms(img) {
		if len(p.Blobs) < 2 || p.Blobs[len(p.Blobs)-1] != cat.FBCLayer {
			fail("platform image %s does not end in the catalog layer %s", p.Digest, cat.FBCLayer)
		}
	}
	if _, _, err := c.r.Blob(cat.FBCLayer); err != nil {
		fail("its catalog layer %s is not in the bundle", cat.FBCLayer)
	}
	for _, im := range cat.Images {
		if err := c.catalogImage(im); err != nil {
			fail("%v", err)
		}
	}
	return ok
}

// catalogImage checks one image a catalog names: the reference must name
// the repository (and digest) recorded, and that image must be proven.
func (c *checker) catalogImage(im bundle.CatalogImage) error {
	named, err := reference.ParseNormalizedNamed(im.Ref)
	if err != nil {
		return fmt.Errorf("image %q: not a reference: %v", im.Ref, err)
	}
	if repo := reference.TrimNamed(named).String(); repo != im.Source {
		return fmt.Errorf("image %s: recorded in repository %s", im.Ref, im.Source)
	}
	if d, ok := named.(reference.Digested); ok && d.Digest() != im.Digest {
		return fmt.Errorf("image %s: recorded as %s", im.Ref, im.Digest)
	}
	if _, ok := c.proven[imageKey(im.Source, im.Digest)]; !ok {
		return fmt.Errorf("image %s (%s) is not carried, or not proven", im.Ref, im.Digest)
	}
	return nil
}

// platforms are img's platform images: its children, or itself.
func (c *checker) platforms(img *Image) []*Image {
	if len(img.Children) == 0 {
		return []*Image{img}
	}
	var out []*Image
	for _, d := range img.Children {
		if ch, ok := c.proven[placeKey(img.Target, img.Source, d)]; ok {
			out = append(out, ch)
		}
	}
	return out
}
