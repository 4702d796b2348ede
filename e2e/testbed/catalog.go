package testbed

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// Defaults of CatalogOptions: where Red Hat serves its operator catalog.
const (
	CatalogRepository = "redhat/redhat-operator-index"
	CatalogTag        = "v4.16"
	// CatalogConfigsDir is where stock catalog images hold their FBC.
	CatalogConfigsDir = "/configs"
	// CatalogCacheDir is where stock catalog images hold opm's pre-built
	// cache, named by their command's --cache-dir.
	CatalogCacheDir = "/tmp/cache"
	// LabelCatalogConfigs names the directory of the FBC in a catalog
	// image's config.
	LabelCatalogConfigs = "operators.operatorframework.io.index.configs.v1"
)

// The packages of the test-bed catalog; see BuildCatalog for their shape.
const (
	CatalogPackageAurora   = "aurora-operator"
	CatalogPackageBorealis = "borealis-operator"
	CatalogPackageCygnus   = "cygnus-operator"
	CatalogPackageDorado   = "dorado-operator"
)

// Roles of ImageInfo in a Catalog, besides RoleChild and RoleSigstore.
const (
	RoleCatalog = "catalog" // the catalog image, or its index
	RoleBundle  = "bundle"  // an operator bundle image
	RoleRelated = "related" // an image a bundle's relatedImages names
)

// CatalogArches are the platforms of a Multi catalog and of its related
// images, as GOARCH names, in the index's order.
func CatalogArches() []string { return []string{"amd64", "arm64"} }

// CatalogOptions shape a test-bed operator catalog. The zero value is a
// single-platform OCI catalog redhat/redhat-operator-index:v4.16 laid out
// as Red Hat builds theirs, with its bundle and related images, unsigned.
type CatalogOptions struct {
	// Repository and Tag of the catalog image (CatalogRepository,
	// CatalogTag).
	Repository string
	Tag        string
	// Seed makes the content of the bundle and related images: the same
	// Seed gives the same digests on any registry. The catalog's own
	// digest also depends on the host its FBC names (see ReferenceHost).
	Seed int64
	// Multi makes the catalog an index of one image per CatalogArches()
	// (sharing the FBC and cache layers), and every related image an index
	// of those platforms too. Bundle images stay single images, as Red
	// Hat's are.
	Multi bool
	// Docker writes the catalog as Docker schema 2 (a manifest list when
	// Multi) instead of OCI.
	Docker bool
	// ReferenceHost is the registry the FBC names bundle and related
	// images on, and cosign identities name: "" for the host pushed to,
	// so that every image the catalog names can be pulled as named. A
	// fixed name (registry.redhat.io) makes the catalog's digest the same
	// on any registry; its images are then at host under the same
	// repositories, as an IDMS mirror would serve them.
	ReferenceHost string
	// Sigstore pushes cosign sha256-<hex>.sig tags for the catalog (its
	// index when Multi), every bundle image and every operator image (the
	// first related image of each bundle; the operands stay unsigned),
	// signed as <reference host>/<repo>@<digest>, the catalog as its tag.
	Sigstore bool
	// SigstoreKey signs; nil for an Ed25519 key made from Seed, so that a
	// signed catalog is reproducible. NewSigstoreKey makes other kinds.
	SigstoreKey *SigstoreKey
	// ConfigsDir is where the image holds its FBC (CatalogConfigsDir).
	ConfigsDir string
	// NoCache leaves out opm's pre-built cache: no cache layer, and a
	// command without --cache-dir, so that opm builds its cache at start.
	NoCache bool

	// The options below make odd or hostile catalogs.

	// WhiteoutPackage adds a layer above the cache holding the whiteout
	// <configs>/.wh.<package>, deleting that package's directory as a
	// `RUN rm -rf` on top of a stock catalog would. Catalog.FBC is then
	// what the image serves, without it; its images are pushed anyway.
	WhiteoutPackage string
	// TopLayer is one more layer on top of all (a GzipBomb, say).
	TopLayer *Layer
	// NoConfigsLabel leaves the label LabelCatalogConfigs out of the
	// image config: not a file-based catalog to anyone who reads it.
	NoConfigsLabel bool
	// Concurrency bounds parallel pushes (4).
	Concurrency int
}

// Catalog is what BuildCatalog pushed: everything a test asserts against.
type Catalog struct {
	// Host is the registry, "127.0.0.1:port".
	Host       string
	Repository string
	Tag        string
	// PullSpec is host/repository:tag.
	PullSpec string
	// Digest and MediaType are the catalog's manifest's (its index's when
	// Multi); Manifest is it exactly as pushed.
	Digest    digest.Digest
	MediaType string
	Manifest  []byte
	// Platforms are the catalog's platform images (Digest itself when not
	// Multi), in CatalogArches() order.
	Platforms []digest.Digest
	// ConfigsDir, Entrypoint, Cmd and Labels are the image config's.
	ConfigsDir string
	Entrypoint []string
	Cmd        []string
	Labels     map[string]string
	// FBC is the catalog the image serves, as operator-registry reads it:
	// packages, channels, bundles and deprecations each sorted by package
	// and name. Property values are compact JSON. Tests may read it but
	// not change it.
	FBC *declcfg.DeclarativeConfig
	// Files are the files of the FBC layer, by path under ConfigsDir
	// ("aurora-operator/catalog.json"), byte for byte.
	Files map[string][]byte
	// ConfigsLayer and CacheLayer are the layers holding the FBC and opm's
	// cache ("" with NoCache); Layers every layer of a platform image,
	// base first (the base layer is the first platform's).
	ConfigsLayer digest.Digest
	CacheLayer   digest.Digest
	Layers       []digest.Digest
	// Packages are the names of FBC's packages, sorted.
	Packages []string
	// Bundles are FBC's bundles by name.
	Bundles map[string]CatalogBundle
	// RelatedImages are the images that FBC's relatedImages name besides
	// the bundle images themselves, each once, sorted by Image.
	RelatedImages []RelatedImage
	// Images is every manifest pushed, once per repository: related images
	// (children first), bundle images (Component is the bundle's name), the
	// catalog (children first), then the signatures.
	Images []ImageInfo
	// Blobs is every config and layer blob of those images, with its size.
	Blobs map[digest.Digest]int64
	// SigTags are the cosign tags pushed, as "repository:sha256-<hex>.sig".
	SigTags []string
	// SigstoreKey signed them (nil when unsigned); SigstorePublicKey is its
	// PEM public key.
	SigstoreKey       *SigstoreKey
	SigstorePublicKey []byte
}

// CatalogBundle is one olm.bundle of the catalog and its image.
type CatalogBundle struct {
	Name    string
	Package string
	Version string
	// Channels are the channels whose entries name it, sorted.
	Channels []string
	// Image is the bundle's image as the FBC names it:
	// <reference host>/<repository>@<digest>.
	Image      string
	Repository string
	Digest     digest.Digest
	// RelatedImages are its relatedImages' image references, in order;
	// the first is Image itself, as in Red Hat's catalogs.
	RelatedImages []string
	// MaxOpenShiftVersion is the olm.maxOpenShiftVersion value as the FBC
	// holds it (compact JSON: `"4.16"`, or `4.2` for a YAML 4.20); "" when
	// the bundle has none.
	MaxOpenShiftVersion string
	// Signed tells that a cosign .sig tag was pushed for Digest.
	Signed bool
}

// RelatedImage is one image named in relatedImages.
type RelatedImage struct {
	// Name is the relatedImages name.
	Name string
	// Image is the reference as the FBC holds it: by digest, or by tag
	// for one image (Tag set).
	Image      string
	Repository string
	// Digest is the manifest the reference resolves to (an index when
	// Multi); MediaType its type.
	Digest    digest.Digest
	MediaType string
	// Tag is the tag Image names, "" for a digest reference.
	Tag string
	// Bundles are the bundles that name it, sorted.
	Bundles []string
	// Signed tells that a cosign .sig tag was pushed for Digest.
	Signed bool
}

// DigestSpec is the catalog's pull spec by digest: host/repository@sha256:...
func (c *Catalog) DigestSpec() string {
	return c.Host + "/" + c.Repository + "@" + c.Digest.String()
}

// Image returns the ImageInfo of the manifest with digest d.
func (c *Catalog) Image(d digest.Digest) (ImageInfo, bool) {
	for _, im := range c.Images {
		if im.Digest == d {
			return im, true
		}
	}
	return ImageInfo{}, false
}

// DefaultChannel is pkg's default channel, "" for a package not in FBC.
func (c *Catalog) DefaultChannel(pkg string) string {
	for _, p := range c.FBC.Packages {
		if p.Name == pkg {
			return p.DefaultChannel
		}
	}
	return ""
}

// Channels are the names of pkg's channels, sorted.
func (c *Catalog) Channels(pkg string) []string {
	var out []string
	for _, ch := range c.FBC.Channels {
		if ch.Package == pkg {
			out = append(out, ch.Name)
		}
	}
	return out
}

// Entries are the bundle names of the channel's entries, in FBC order;
// nil when pkg has no such channel.
func (c *Catalog) Entries(pkg, channel string) []string {
	ch := c.channel(pkg, channel)
	if ch == nil {
		return nil
	}
	out := make([]string, 0, len(ch.Entries))
	for _, e := range ch.Entries {
		out = append(out, e.Name)
	}
	return out
}

// HeadOf is the bundle at the head of pkg's channel, as OLM finds it: the
// entry no other entry of the channel replaces or skips. "" when there is
// no such channel.
func (c *Catalog) HeadOf(pkg, channel string) string {
	ch := c.channel(pkg, channel)
	if ch == nil {
		return ""
	}
	return channelHead(*ch)
}

// BundlesOf are pkg's bundles, sorted by name.
func (c *Catalog) BundlesOf(pkg string) []CatalogBundle {
	var out []CatalogBundle
	for _, b := range c.Bundles {
		if b.Package == pkg {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b CatalogBundle) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (c *Catalog) channel(pkg, name string) *declcfg.Channel {
	for i, ch := range c.FBC.Channels {
		if ch.Package == pkg && ch.Name == name {
			return &c.FBC.Channels[i]
		}
	}
	return nil
}

// channelHead is the one entry of ch no other replaces or skips ("" when
// there is not exactly one).
func channelHead(ch declcfg.Channel) string {
	pointedAt := map[string]bool{}
	for _, e := range ch.Entries {
		pointedAt[e.Replaces] = true
		for _, s := range e.Skips {
			pointedAt[s] = true
		}
	}
	head := ""
	for _, e := range ch.Entries {
		if !pointedAt[e.Name] {
			if head != "" {
				return ""
			}
			head = e.Name
		}
	}
	return head
}

// BuildCatalog makes a test-bed operator catalog as opts say and pushes it
// to the registry at host: the related images and bundle images (by
// digest; one related image also by tag), then the catalog image, then its
// tag, then signatures. It fails the test on any error.
//
// The catalog image is shaped like Red Hat's: a base layer (/bin/opm,
// /bin/grpc_health_probe, /etc), a layer with the FBC under /configs (one
// directory per package, JSON and YAML streams in several files), a layer
// with a fake pre-built opm cache under /tmp/cache, the label
// LabelCatalogConfigs, Entrypoint ["/bin/opm"] and Cmd ["serve",
// "/configs", "--cache-dir=/tmp/cache"].
//
// The FBC has four packages:
//
//   - aurora-operator (catalog.json; default channel stable): stable is a
//     replaces chain 1.0.0 → 1.1.0 → 1.1.1 with 1.2.0 replacing 1.1.0 and
//     skipping 1.1.1 (head 1.2.0); fast is 1.1.1 → 1.2.0 → 2.0.0, whose
//     entry has skipRange ">=1.0.0 <2.0.0". 1.0.0 and 1.1.0 declare
//     olm.maxOpenShiftVersion "4.16" (a JSON string); 1.1.0 and 1.1.1
//     share their operand image.
//   - borealis-operator (catalog.yaml; default channel fast, not stable):
//     prerelease versions as Red Hat's own operators have
//     (4.14.0-202310201027), linked by replaces, skips and skipRange;
//     stable's head is 4.14.0-202311021650, fast goes on to
//     4.15.0-202402011532. 4.13.0-202309181427 declares
//     olm.maxOpenShiftVersion "4.15"; 4.14.0-202310201027 declares it as
//     the unquoted YAML 4.20, which operator-registry reads as the
//     number 4.2 (and so does Catalog.FBC).
//   - cygnus-operator (catalog.json, deprecations.yaml): channels alpha
//     (0.9.0 → 1.0.0) and stable (1.0.0 → 1.1.0). 1.0.0 and 1.1.0 need
//     aurora-operator >=1.1.0 <2.0.0 (olm.package.required), 1.1.0 also
//     borealis's Borealis kind (olm.gvk.required). An olm.deprecations
//     entry deprecates channel alpha and bundle 0.9.0. 1.0.0 and 1.1.0 name
//     a related image by tag (kube-rbac-proxy:v0.15.0).
//   - dorado-operator (package.yaml, bundles/*.yaml): one channel stable,
//     3.0.0 and 3.0.1 skipping it; the whole package is deprecated.
//
// Every bundle names itself (relatedImages name ""), its operator image
// and, but for cygnus and dorado, an operand image.
//
//	reg := testbed.NewMemoryRegistry(t)
//	cat := testbed.BuildCatalog(t, reg.Host, testbed.CatalogOptions{Multi: true})
//	head := cat.Bundles[cat.HeadOf(testbed.CatalogPackageAurora, "stable")]
func BuildCatalog(t testing.TB, host string, opts CatalogOptions) *Catalog {
	t.Helper()
	cat, err := buildCatalog(t.Context(), host, opts)
	if err != nil {
		t.Fatalf("building catalog %s:%s on %s: %v", cmp.Or(opts.Repository, CatalogRepository), cmp.Or(opts.Tag, CatalogTag), host, err)
	}
	return cat
}

// normalize fills defaults and checks opts; it works on the caller's copy.
func (o *CatalogOptions) normalize() error {
	if o.Repository == "" {
		o.Repository = CatalogRepository
	}
	if o.Tag == "" {
		o.Tag = CatalogTag
	}
	if o.ConfigsDir == "" {
		o.ConfigsDir = CatalogConfigsDir
	}
	dir := path.Clean("/" + o.ConfigsDir)
	if dir == "/" || dir != o.ConfigsDir {
		return fmt.Errorf("ConfigsDir %q: want a clean absolute path below /", o.ConfigsDir)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
	}
	if p := o.WhiteoutPackage; p != "" && !slices.Contains(catalogPackageNames(), p) {
		return fmt.Errorf("WhiteoutPackage %q: not a package of the catalog (%s)", p, strings.Join(catalogPackageNames(), ", "))
	}
	return nil
}
