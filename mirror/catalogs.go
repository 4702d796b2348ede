package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"go.podman.io/image/v5/docker/reference"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/signature"
)

// Catalog is one operator catalog of a plan: what was selected, what the
// filter kept and why, the rebuilt catalog image, and every image its kept
// bundles name, resolved to a digest.
type Catalog struct {
	Selection catalog.Selection
	// Source is the catalog image read; its FBC is dropped once filtered
	// (Filtered holds what is kept) so that an unfiltered catalog of
	// hundreds of MB is not held for the whole pack.
	Source   *catalog.Catalog
	Filtered *declcfg.DeclarativeConfig
	Report   *catalog.FilterReport
	Rebuilt  *catalog.Rebuilt
	// FBCLayer is the rebuilt image's layer holding the filtered catalog:
	// its last layer, the same on every platform.
	FBCLayer digest.Digest
	// Tag is the rebuilt catalog's tag in the target; Filter the selection
	// in one line, as the rebuilt image's label records it.
	Tag    string
	Filter string
	// Images are the bundle and related images the kept bundles name.
	Images []CatalogImage
	// ImageSignatures is what the lookaside stores said of Images (nil
	// when Planner.ImageSignatures is not set).
	ImageSignatures *ImageSignatureReport
}

// CatalogImage is one image a catalog's kept bundles name.
type CatalogImage struct {
	// Ref is the reference as the catalog names it, which is what the
	// cluster will pull; Repository and Digest what it resolved to.
	Ref        string
	Repository string
	Digest     digest.Digest
	// Tag is the tag Ref names, when it names one: the cluster pulls it by
	// tag, which only an ImageTagMirrorSet and a tag in the mirror serve.
	Tag string
	// Sources are the bundles that name it.
	Sources []catalog.ImageSource
}

// catalogs reads, filters and rebuilds every selected catalog, and walks
// every image their kept bundles name. Catalogs are read one at a time: an
// unfiltered catalog can be hundreds of MB in memory.
func (w *walk) catalogs(ctx context.Context) ([]*Catalog, error) {
	var out []*Catalog
	for _, sel := range w.planner.Catalogs {
		c, err := w.catalog(ctx, sel)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w", sel.Catalog, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (w *walk) catalog(ctx context.Context, sel catalog.Selection) (*Catalog, error) {
	if err := sel.Validate(); err != nil {
		return nil, err
	}
	src, err := catalog.Read(ctx, w.planner.Registry, sel.Catalog)
	if err != nil {
		return nil, err
	}
	filtered, report, err := catalog.Filter(src.FBC, sel, w.planner.CatalogFilter)
	if err != nil {
		return nil, err
	}
	src.FBC = nil
	// The base layers are fetched from the catalog's repository, through
	// a source that has read the catalog's manifest (a source serves blobs
	// only from where it found a manifest).
	source, err := w.source(ctx, src.Repository)
	if err != nil {
		return nil, err
	}
	if _, err := source.Manifest(ctx, src.Digest); err != nil {
		return nil, err
	}
	filter := describeSelection(sel, w.planner.CatalogFilter)
	rebuilt, err := catalog.Rebuild(src, filtered, catalog.RebuildOptions{Filter: filter})
	if err != nil {
		return nil, err
	}
	c := &Catalog{Selection: sel, Source: src, Filtered: filtered, Report: report, Rebuilt: rebuilt,
		Tag: CatalogTag(sel.Catalog), Filter: filter}
	if c.FBCLayer, err = w.addRebuilt(src.Repository, rebuilt, c.Tag); err != nil {
		return nil, err
	}
	if c.Images, err = w.catalogImages(ctx, catalog.BundleImages(filtered)); err != nil {
		return nil, err
	}
	if w.planner.ImageSignatures != nil {
		if err := w.checkImageSignatures(ctx, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// addRebuilt records the rebuilt catalog's manifests in the catalog's
// source repository (its base layers are fetched from there) and its new
// blobs as generated. It returns the layer holding the filtered catalog,
// which the bastion reads again for its operator check and so is always
// carried.
func (w *walk) addRebuilt(repo string, r *catalog.Rebuilt, tag string) (digest.Digest, error) {
	w.mu.Lock()
	for _, b := range r.Blobs {
		w.generated[b.Digest] = b.Data
	}
	w.mu.Unlock()
	top := &Image{Repository: repo, Digest: r.Digest, MediaType: r.MediaType, Manifest: r.Manifest, Role: RoleCatalog, Tags: []string{tag}}
	var fbcLayer digest.Digest
	for _, p := range r.Platforms {
		img := top
		if p.Digest != r.Digest {
			img = &Image{Repository: repo, Digest: p.Digest, MediaType: p.MediaType, Manifest: p.Manifest, Role: RoleChild}
			top.Children = append(top.Children, p.Digest)
		}
		if err := w.addBlobs(img); err != nil {
			return "", fmt.Errorf("rebuilt catalog: %w", err)
		}
		last := img.Blobs[len(img.Blobs)-1]
		if fbcLayer != "" && last != fbcLayer {
			return "", fmt.Errorf("rebuilt catalog: platform images %s and %s end in different layers", r.Platforms[0].Digest, p.Digest)
		}
		fbcLayer = last
		if err := w.addGenerated(img); err != nil {
			return "", err
		}
	}
	if len(top.Children) > 0 {
		if err := w.addGenerated(top); err != nil {
			return "", err
		}
	}
	w.mu.Lock()
	w.blobs[fbcLayer].ReleaseFiles = true
	w.mu.Unlock()
	return fbcLayer, nil
}

// addGenerated records an image made by ferry, not read from a registry.
func (w *walk) addGenerated(img *Image) error {
	key := imageKey(img.Repository, img.Digest)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.images[key]; ok {
		return nil
	}
	if err := w.reserveManifest(key, len(img.Manifest)); err != nil {
		return err
	}
	w.images[key] = img
	w.order = append(w.order, key)
	w.rebuilt[key] = true
	return nil
}

// catalogImages resolves and walks every image the kept bundles name,
// concurrently. A reference by tag is resolved to the digest the tag names
// now, and recorded.
func (w *walk) catalogImages(ctx context.Context, images []catalog.BundleImage) ([]CatalogImage, error) {
	out := make([]CatalogImage, len(images))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(w.planner.parallel())
	for i, bi := range images {
		g.Go(func() error {
			ci, err := w.catalogImage(ctx, bi)
			if err != nil {
				return fmt.Errorf("image %s (of bundle %s): %w", bi.Image, bi.Sources[0].Bundle, err)
			}
			out[i] = ci
			return nil
		})
	}
	return out, g.Wait()
}

func (w *walk) catalogImage(ctx context.Context, bi catalog.BundleImage) (CatalogImage, error) {
	named, err := reference.ParseNormalizedNamed(bi.Image)
	if err != nil {
		return CatalogImage{}, fmt.Errorf("not an image reference: %w", err)
	}
	ci := CatalogImage{Ref: bi.Image, Repository: reference.TrimNamed(named).String(), Sources: bi.Sources}
	src, err := w.source(ctx, ci.Repository)
	if err != nil {
		return CatalogImage{}, err
	}
	ci.Tag = tagOf(named)
	m, err := resolveRef(ctx, src, named)
	if err != nil {
		return CatalogImage{}, err
	}
	ci.Digest = m.Digest
	if _, err := w.addImage(ctx, src, ci.Repository, m, RoleOperator, ""); err != nil {
		return CatalogImage{}, err
	}
	return ci, nil
}

// maxTagLength is the longest tag a registry accepts (distribution's
// reference grammar).
const maxTagLength = 128

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// CatalogTag is the tag a rebuilt catalog gets in the target: the source
// repository's last path element and its tag ("redhat-operator-index-v4.16"),
// or the first 12 hex digits of its digest, "-filtered" marking that it is
// not the source image. Long names are cut and end in a hash of the
// reference so that two catalogs never share a tag by truncation.
func CatalogTag(ref string) string {
	name := ref
	version := ""
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		path := reference.Path(named)
		name = path[strings.LastIndex(path, "/")+1:]
		switch n := named.(type) {
		case reference.Tagged:
			version = n.Tag()
		case reference.Digested:
			version = n.Digest().Encoded()[:12]
		}
	}
	if version != "" {
		name += "-" + version
	}
	tag := tagUnsafe.ReplaceAllString(name, "-")
	tag = strings.TrimLeft(tag, ".-") + "-filtered"
	if len(tag) > maxTagLength {
		sum := sha256.Sum256([]byte(ref))
		tag = tag[:maxTagLength-13] + "-" + hex.EncodeToString(sum[:6])
	}
	return tag
}

// describeSelection is the filter in one line, for the rebuilt image's label.
func describeSelection(sel catalog.Selection, opts catalog.FilterOptions) string {
	var parts []string
	switch {
	case sel.Full:
		parts = append(parts, "full")
	case len(sel.Packages) == 0:
		parts = append(parts, "heads of every channel")
	default:
		for _, p := range sel.Packages {
			parts = append(parts, describePackage(p))
		}
	}
	if opts.SkipDependencies {
		parts = append(parts, "no dependencies")
	}
	return strings.Join(parts, "; ")
}

func describePackage(p catalog.PackageSelection) string {
	s := p.Name
	if p.MinVersion != "" || p.MaxVersion != "" {
		s += fmt.Sprintf(" [%s,%s]", p.MinVersion, p.MaxVersion)
	}
	var chans []string
	for _, c := range p.Channels {
		cs := c.Name
		if c.MinVersion != "" || c.MaxVersion != "" {
			cs += fmt.Sprintf(" [%s,%s]", c.MinVersion, c.MaxVersion)
		}
		chans = append(chans, cs)
	}
	if len(chans) > 0 {
		s += " (" + strings.Join(chans, ", ") + ")"
	}
	return s
}

// ImageSignatures says where images publish GPG signatures beside them
// (lookaside stores, as Red Hat does for registry.redhat.io) and which
// keys sign them. Catalog images in a store's registry are checked.
type ImageSignatures struct {
	Stores  signature.LookasideStores
	Fetcher *signature.Fetcher
	Keyring *signature.Keyring
}

// ImageSignatureReport counts what the lookaside stores said of a
// catalog's images: signed under the keyring, unsigned (the store has no
// signature), or not in any store's registry.
type ImageSignatureReport struct {
	Signed, Unsigned, NoStore int
	// UnsignedImages names the unsigned ones.
	UnsignedImages []string
}

// checkImageSignatures fetches and verifies the lookaside signatures of
// every image c names in a registry with a store. A store that serves
// signatures of which none verifies fails the plan: that is a forgery or
// the wrong key, never an unsigned image.
func (w *walk) checkImageSignatures(ctx context.Context, c *Catalog) error {
	is := w.planner.ImageSignatures
	rep := &ImageSignatureReport{}
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(w.planner.parallel())
	for _, im := range c.Images {
		base, ok := is.Stores.For(im.Repository)
		if !ok {
			rep.NoStore++
			continue
		}
		g.Go(func() error {
			res, err := is.Fetcher.FetchImage(ctx, base, im.Repository, im.Digest)
			if err != nil {
				return fmt.Errorf("signatures of %s: %w", im.Ref, err)
			}
			var sigs [][]byte
			for _, s := range res.Signatures {
				sigs = append(sigs, s.Data)
			}
			v, err := signature.VerifyImage(sigs, is.Keyring, im.Repository, im.Digest)
			if err == nil {
				err = v.Err()
			}
			if err != nil {
				return fmt.Errorf("image %s: %w", im.Ref, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if v.Status == signature.ImageSigned {
				rep.Signed++
			} else {
				rep.Unsigned++
				rep.UnsignedImages = append(rep.UnsignedImages, im.Ref)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	slices.Sort(rep.UnsignedImages)
	c.ImageSignatures = rep
	return nil
}
