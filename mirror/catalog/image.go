package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/internal/fileio"
	"github.com/ferryhq/ferry/mirror/registry"
)

// LabelConfigsDir is the label of a catalog image that names the directory
// holding its file-based catalog ("/configs" in every image opm builds).
const LabelConfigsDir = "operators.operatorframework.io.index.configs.v1"

// labelDatabase marks the SQLite-based index images OLM used before file-
// based catalogs, which ferry does not read.
const labelDatabase = "operators.operatorframework.io.index.database.v1"

// Catalog is a catalog image and the file-based catalog it serves.
type Catalog struct {
	// Ref is the pull spec read, as given; Repository its normalized
	// repository.
	Ref        string
	Repository string
	// Digest and MediaType are those of the manifest Ref names: an index
	// (manifest list) for a catalog of several platforms, else an image
	// manifest.
	Digest    digest.Digest
	MediaType string
	// Manifest is that manifest, byte for byte as read.
	Manifest []byte
	// Platforms are the platform images, in the index's order (attestation
	// manifests left out); a single image is its own one platform.
	Platforms []digest.Digest
	// Images are the same platform images, in the same order, as read:
	// what Rebuild builds on.
	Images []PlatformImage
	// FBCFrom is the platform image FBC was read from, Platforms[0]: see
	// ReadManifest for why one is enough.
	FBCFrom digest.Digest
	// ConfigsDir is where the image holds its FBC, from LabelConfigsDir,
	// as a clean absolute path ("/configs").
	ConfigsDir string
	// Entrypoint and Cmd are the image's command, the same on every
	// platform (stock images: ["/bin/opm"] and ["serve", "/configs",
	// "--cache-dir=/tmp/cache"]).
	Entrypoint []string
	Cmd        []string
	// CacheDir is the --cache-dir the command gives opm ("/tmp/cache" in
	// stock images, whose cache is built into the image and must match the
	// FBC), or "" when opm builds its cache at start.
	CacheDir string
	// FBC is the catalog.
	FBC *declcfg.DeclarativeConfig
}

// PlatformImage is one platform image of a catalog, as read.
type PlatformImage struct {
	Digest    digest.Digest
	MediaType string
	// Manifest and Config are the image's manifest and config, byte for
	// byte as read; the config was verified against the digest and size
	// the manifest gives it, and is at most MaxConfigBytes.
	Manifest []byte
	Config   []byte
	// Platform is what the index says of the image (os, architecture,
	// variant...); nil for a catalog that is a single image.
	Platform *imgspecv1.Platform
}

// Read reads the catalog image ref (a pull spec with a tag or a digest;
// with both, the digest) through c. See ReadManifest.
func Read(ctx context.Context, c *registry.Client, ref string) (cat *Catalog, err error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid catalog reference %q: %w", ref, err)
	}
	repo := reference.TrimNamed(named).String()
	src, err := c.Source(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", ref, err)
	}
	defer fileio.CloseInto(&err, src, "source "+repo)
	var m registry.Manifest
	switch n := named.(type) {
	case reference.Digested:
		m, err = src.Manifest(ctx, n.Digest())
	case reference.Tagged:
		m, err = src.ManifestByTag(ctx, n.Tag())
	default:
		return nil, fmt.Errorf("catalog reference %q has neither a tag nor a digest", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", ref, err)
	}
	return ReadManifest(ctx, src, ref, m)
}

// ReadManifest reads the catalog image whose manifest (or index) m was read
// from src under the pull spec ref: every platform image's config, for
// LabelConfigsDir and the command, which must agree across platforms; and
// the FBC from the layers of the first platform image (see ReadFBC).
//
// One platform's FBC stands for all: an FBC is data, not code, and every
// way of building a catalog (opm's generated Dockerfile, Red Hat's FBC
// pipelines) copies the same directory into each platform's image. Reading
// each would fetch every platform's base layers, hundreds of MB apiece, to
// find the same files again; comparing the digests of the layers that
// hold the FBC would prove little, as builds on different hosts stamp
// different times into layers of the same files. What ferry needs to
// rebuild every platform alike, the configs directory and the command
// (so the cache directory), is checked on each from its config, a few KB.
func ReadManifest(ctx context.Context, src *registry.Source, ref string, m registry.Manifest) (*Catalog, error) {
	cat := &Catalog{Ref: ref, Repository: src.Repository(), Digest: m.Digest, MediaType: m.MediaType, Manifest: m.Bytes}
	images, err := platformImages(ctx, src, m)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", ref, err)
	}
	var first imageConfig
	for i, img := range images {
		cfg, err := readConfig(ctx, src, img)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: image %s: %w", ref, img.digest, err)
		}
		cat.Platforms = append(cat.Platforms, img.digest)
		cat.Images = append(cat.Images, PlatformImage{
			Digest: img.digest, MediaType: img.mediaType, Manifest: img.bytes, Config: cfg.raw, Platform: img.platform,
		})
		if i == 0 {
			first = cfg
			continue
		}
		if err := first.sameAs(cfg); err != nil {
			return nil, fmt.Errorf("catalog %s: platform images %s and %s %w", ref, images[0].digest, img.digest, err)
		}
	}
	cat.FBCFrom = images[0].digest
	cat.ConfigsDir, cat.Entrypoint, cat.Cmd = first.configsDir, first.entrypoint, first.cmd
	cat.CacheDir = cacheDir(slices.Concat(first.entrypoint, first.cmd))
	cat.FBC, err = ReadFBC(ctx, layerOpeners(src, images[0]), cat.ConfigsDir)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: image %s: %w", ref, images[0].digest, err)
	}
	return cat, nil
}

// platformImage is one image manifest of a catalog, parsed.
type platformImage struct {
	digest    digest.Digest
	mediaType string
	bytes     []byte
	manifest  manifest.Manifest
	platform  *imgspecv1.Platform // the index entry's; nil for a single image
}

// platformImages returns the image manifests m stands for: its platform
// images for an index, itself otherwise.
func platformImages(ctx context.Context, src *registry.Source, m registry.Manifest) ([]platformImage, error) {
	if !manifest.MIMETypeIsMultiImage(m.MediaType) {
		img, err := parseImage(m)
		if err != nil {
			return nil, err
		}
		return []platformImage{img}, nil
	}
	list, err := manifest.ListFromBlob(m.Bytes, m.MediaType)
	if err != nil {
		return nil, fmt.Errorf("parsing index %s: %w", m.Digest, err)
	}
	instances := list.Instances()
	if len(instances) > MaxPlatforms {
		return nil, fmt.Errorf("index %s names %d manifests: %w", m.Digest, len(instances), &BoundError{Bound: "MaxPlatforms", Limit: MaxPlatforms})
	}
	var images []platformImage
	for _, d := range instances {
		inst, err := list.Instance(d)
		if err == nil && isAttestation(inst.ReadOnly.Annotations, inst.ReadOnly.Platform) {
			continue
		}
		child, err := src.Manifest(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", m.Digest, err)
		}
		img, err := parseImage(child)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", m.Digest, err)
		}
		img.platform = inst.ReadOnly.Platform
		images = append(images, img)
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("index %s names no platform image", m.Digest)
	}
	return images, nil
}

// isAttestation reports an index entry, by its annotations and platform,
// that is not a platform image but what BuildKit attaches to one
// (provenance, SBOM).
func isAttestation(annotations map[string]string, p *imgspecv1.Platform) bool {
	if annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return p != nil && p.OS == "unknown" && p.Architecture == "unknown"
}

func parseImage(m registry.Manifest) (platformImage, error) {
	switch m.MediaType {
	case imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType:
	default:
		if manifest.MIMETypeIsMultiImage(m.MediaType) {
			return platformImage{}, fmt.Errorf("manifest %s is an index nested in an index", m.Digest)
		}
		return platformImage{}, fmt.Errorf("manifest %s has media type %q, not an image manifest", m.Digest, m.MediaType)
	}
	parsed, err := manifest.FromBlob(m.Bytes, m.MediaType)
	if err != nil {
		return platformImage{}, fmt.Errorf("parsing manifest %s: %w", m.Digest, err)
	}
	if n := len(parsed.LayerInfos()); n > MaxImageLayers {
		return platformImage{}, fmt.Errorf("manifest %s has %d layers: %w", m.Digest, n, &BoundError{Bound: "MaxImageLayers", Limit: MaxImageLayers})
	}
	return platformImage{digest: m.Digest, mediaType: m.MediaType, bytes: m.Bytes, manifest: parsed}, nil
}

// imageConfig is what ferry needs of a catalog image's config, and the
// config itself.
type imageConfig struct {
	configsDir      string
	entrypoint, cmd []string
	raw             []byte
}

// sameAs says how o differs from c, completing "platform images A and B
// ...", or returns nil.
func (c imageConfig) sameAs(o imageConfig) error {
	switch {
	case c.configsDir != o.configsDir:
		return fmt.Errorf("hold their catalogs in different directories, %s and %s", c.configsDir, o.configsDir)
	case !slices.Equal(c.entrypoint, o.entrypoint) || !slices.Equal(c.cmd, o.cmd):
		return fmt.Errorf("run different commands, %q %q and %q %q", c.entrypoint, c.cmd, o.entrypoint, o.cmd)
	}
	return nil
}

// readConfig reads img's config, verified, for its label and command.
func readConfig(ctx context.Context, src *registry.Source, img platformImage) (_ imageConfig, err error) {
	info := img.manifest.ConfigInfo()
	if info.Size < 0 || info.Size > MaxConfigBytes {
		return imageConfig{}, fmt.Errorf("config %s is %d bytes: %w", info.Digest, info.Size, &BoundError{Bound: "MaxConfigBytes", Limit: MaxConfigBytes})
	}
	rc, err := src.VerifiedBlob(ctx, info.Digest, info.Size)
	if err != nil {
		return imageConfig{}, fmt.Errorf("reading config: %w", err)
	}
	defer fileio.CloseInto(&err, rc, "config "+info.Digest.String())
	// Read to the verifying reader's end: only then is the config checked.
	data, err := io.ReadAll(io.LimitReader(rc, info.Size+1))
	if err != nil {
		return imageConfig{}, fmt.Errorf("reading config %s: %w", info.Digest, err)
	}
	var config struct {
		Config struct {
			Labels     map[string]string `json:"Labels"`
			Entrypoint []string          `json:"Entrypoint"`
			Cmd        []string          `json:"Cmd"`
		} `json:"config"`
	}
	if err := json.Unmarshal(data, &config); err != nil {
		return imageConfig{}, fmt.Errorf("parsing config %s: %w", info.Digest, err)
	}
	labels := config.Config.Labels
	dir, ok := labels[LabelConfigsDir]
	switch {
	case !ok && labels[labelDatabase] != "":
		return imageConfig{}, fmt.Errorf("a SQLite-based index image (label %s), not a file-based catalog: ferry reads only file-based catalogs (label %s)", labelDatabase, LabelConfigsDir)
	case !ok:
		return imageConfig{}, fmt.Errorf("no label %s: not a file-based catalog image", LabelConfigsDir)
	case strings.TrimSpace(dir) == "":
		return imageConfig{}, fmt.Errorf("label %s is empty", LabelConfigsDir)
	}
	return imageConfig{configsDir: "/" + cleanName(dir), entrypoint: config.Config.Entrypoint, cmd: config.Config.Cmd, raw: data}, nil
}

// cacheDir is the value of opm's --cache-dir flag in args (the last one,
// as opm's flag parser takes), in either of its forms; "" without it.
func cacheDir(args []string) string {
	dir := ""
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--cache-dir="); ok {
			dir = v
		} else if a == "--cache-dir" && i+1 < len(args) {
			dir = args[i+1]
		}
	}
	return dir
}

// layerOpeners opens img's layers from src, each stream verified against
// its digest and size.
func layerOpeners(src *registry.Source, img platformImage) []LayerOpener {
	var openers []LayerOpener
	for _, l := range img.manifest.LayerInfos() {
		openers = append(openers, func(ctx context.Context) (io.ReadCloser, error) {
			return src.VerifiedBlob(ctx, l.Digest, l.Size)
		})
	}
	return openers
}
