package testbed

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"golang.org/x/sync/errgroup"
)

const (
	// DefaultLargeCatalogPackages is the packages of a large catalog
	// unless LargeCatalogOptions says otherwise: about Red Hat's operator
	// index, which has a few hundred.
	DefaultLargeCatalogPackages = 300
	// LargeCatalogReferenceHost is where a large catalog names its images
	// unless LargeCatalogOptions says otherwise. They are not pushed: the
	// catalog is there to be read and filtered, not mirrored.
	LargeCatalogReferenceHost = "registry.redhat.io"
	// largeCatalogWorkers is how many packages are generated at once: the
	// benchmark machines have two cores.
	largeCatalogWorkers = 2
)

// LargeCatalogOptions shape BuildLargeCatalog's catalog. The zero value is
// DefaultLargeCatalogPackages packages in redhat/redhat-operator-index:v4.16,
// naming images on LargeCatalogReferenceHost, from seed 0.
type LargeCatalogOptions struct {
	// Repository and Tag of the catalog image (CatalogRepository,
	// CatalogTag).
	Repository string
	Tag        string
	// Seed makes everything: the same Seed and Packages give the same
	// catalog, byte for byte, on any registry.
	Seed int64
	// Packages is how many packages the catalog has
	// (DefaultLargeCatalogPackages); each has 2 to 32 bundles, about 17 on
	// average.
	Packages int
	// ReferenceHost is where the FBC names bundle and related images
	// (LargeCatalogReferenceHost).
	ReferenceHost string
}

// LargeCatalog is what BuildLargeCatalog pushed, and its figures.
type LargeCatalog struct {
	// Host is the registry, "127.0.0.1:port"; PullSpec is
	// host/repository:tag.
	Host       string
	Repository string
	Tag        string
	PullSpec   string
	// Digest is the catalog's image manifest's.
	Digest digest.Digest
	// ConfigsLayer is the layer holding the FBC; ConfigsLayerSize its
	// size as pushed (gzip'd), ImageSize that of the config and every
	// layer together.
	ConfigsLayer     digest.Digest
	ConfigsLayerSize int64
	ImageSize        int64
	// FBCBytes is the size of the files under /configs, uncompressed;
	// LargestFile the largest of them, one package's catalog.json.
	FBCBytes    int64
	LargestFile int64
	// Packages are the package names, sorted.
	Packages []string
	// Channels and Bundles count the FBC's documents of those schemas.
	Channels int
	Bundles  int
	// BundleObjects counts the olm.bundle.object properties (a CSV and
	// one to three CRDs per bundle); BundleObjectBytes is their base64
	// data, the bulk of FBCBytes.
	BundleObjects     int
	BundleObjectBytes int64
	// RelatedImages counts the distinct relatedImages references other
	// than the bundle images themselves.
	RelatedImages int
}

// BuildLargeCatalog pushes to the registry at host a catalog image of the
// shape of Red Hat's operator index, at its scale: a few hundred packages
// with a few thousand bundles between them, each bundle carrying its CSV
// and CRDs as olm.bundle.object properties, so that the FBC is tens of MB
// (about 250 KB a package).
//
// The image is laid out as BuildCatalog's (a base layer, the FBC under
// /configs, a small opm cache under /tmp/cache, the stock command and
// label), with one file per package, /configs/<package>/catalog.json,
// written as opm writes it. Each package has:
//
//   - 2 to 32 bundles, named <package>.v<version>: semantic versions, or
//     for a fifth of the packages Red Hat's own 4.<minor>.<patch>-<build
//     time> prereleases, which also declare olm.maxOpenShiftVersion on all
//     but their newest minor;
//   - a channel stable holding every bundle as a replaces chain in which
//     every fourth entry skips the one before it, and each new minor's
//     first entry has a skipRange over the minor before; and up to three
//     stable-<major>.<minor> channels, one per newest minor, as chains;
//     the default channel is stable or the newest of those; a package with
//     several minor channels deprecates its oldest one;
//   - one to three owned CRDs, each an olm.gvk property and an
//     olm.bundle.object with the CRD; the CSV as olm.bundle.object, with a
//     long description, an icon, install strategy and permissions;
//   - relatedImages: the bundle image, the operator image and one to three
//     operand images, by digest; none of these images is pushed.
//
// About one package in eleven requires another with olm.package.required,
// and one in seventeen another's API with olm.gvk.required, always one
// the catalog provides.
//
// The FBC and its layer are built in memory (a few times FBCBytes); 300
// packages take some seconds on two cores.
func BuildLargeCatalog(t testing.TB, host string, opts LargeCatalogOptions) *LargeCatalog {
	t.Helper()
	cat, err := buildLargeCatalog(t.Context(), host, opts)
	if err != nil {
		t.Fatalf("building large catalog on %s: %v", host, err)
	}
	return cat
}

func buildLargeCatalog(ctx context.Context, host string, opts LargeCatalogOptions) (*LargeCatalog, error) {
	n := cmp.Or(opts.Packages, DefaultLargeCatalogPackages)
	if n < 0 {
		return nil, fmt.Errorf("Packages %d: want a positive number", n)
	}
	refHost := cmp.Or(opts.ReferenceHost, LargeCatalogReferenceHost)
	cb, err := newCatalogBuilder(host, CatalogOptions{
		Repository: opts.Repository, Tag: opts.Tag, Seed: opts.Seed, ReferenceHost: refHost,
	}, nil)
	if err != nil {
		return nil, err
	}
	plans := largePlans(opts.Seed, n)
	files, stats, err := largeFBC(ctx, plans, opts.Seed, refHost)
	if err != nil {
		return nil, err
	}
	packages := make([]declcfg.Package, 0, len(plans))
	for _, p := range plans {
		packages = append(packages, declcfg.Package{Name: p.name})
	}
	content, err := cb.content(files, packages)
	if err != nil {
		return nil, err
	}
	top, _, _, err := cb.pushCatalog(ctx, content)
	if err != nil {
		return nil, err
	}
	o := cb.copts
	stats.Host, stats.Repository, stats.Tag = host, o.Repository, o.Tag
	stats.PullSpec = host + "/" + o.Repository + ":" + o.Tag
	stats.Digest = top.info.Digest
	stats.ConfigsLayer, stats.ConfigsLayerSize = content.configs.digest, content.configs.size
	for _, b := range top.blobs {
		stats.ImageSize += b.size
	}
	return stats, nil
}

// largeFBC writes every package's catalog.json, largeCatalogWorkers at a
// time, and counts what they hold.
func largeFBC(ctx context.Context, plans []*largePackage, seed int64, refHost string) (map[string][]byte, *LargeCatalog, error) {
	files := map[string][]byte{}
	stats := &LargeCatalog{}
	related := map[string]bool{}
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(largeCatalogWorkers)
	for _, p := range plans {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			cfg, err := p.fbc(plans, seed, refHost)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := declcfg.WriteJSON(cfg, &buf); err != nil {
				return fmt.Errorf("writing package %s: %w", p.name, err)
			}
			mu.Lock()
			defer mu.Unlock()
			files[p.name+"/catalog.json"] = buf.Bytes()
			stats.count(cfg, int64(buf.Len()), related)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	stats.RelatedImages = len(related)
	for _, p := range plans {
		stats.Packages = append(stats.Packages, p.name)
	}
	slices.Sort(stats.Packages)
	return files, stats, nil
}

// count adds one package's FBC, written as size bytes, to the figures.
func (c *LargeCatalog) count(cfg declcfg.DeclarativeConfig, size int64, related map[string]bool) {
	c.FBCBytes += size
	c.LargestFile = max(c.LargestFile, size)
	c.Channels += len(cfg.Channels)
	c.Bundles += len(cfg.Bundles)
	for _, b := range cfg.Bundles {
		for _, p := range b.Properties {
			if p.Type == propertyBundleObject {
				c.BundleObjects++
				c.BundleObjectBytes += int64(len(p.Value)) - int64(len(`{"data":""}`))
			}
		}
		for _, r := range b.RelatedImages {
			if r.Image != b.Image {
				related[r.Image] = true
			}
		}
	}
}
