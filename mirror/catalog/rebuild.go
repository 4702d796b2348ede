package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"go.podman.io/image/v5/manifest"
)

// Labels a rebuilt catalog's configs carry, saying where it came from.
const (
	// LabelSource is the source catalog's pull spec, as selected
	// (Catalog.Ref).
	LabelSource = "io.ferryhq.catalog.source"
	// LabelSourceDigest is the digest of the manifest (or index) read
	// under that pull spec (Catalog.Digest).
	LabelSourceDigest = "io.ferryhq.catalog.source-digest"
	// LabelFilter is RebuildOptions.Filter.
	LabelFilter = "io.ferryhq.catalog.filter"
)

// RebuildOptions tune Rebuild.
type RebuildOptions struct {
	// Created is the new configs' created time and that of their history
	// entry; zero means time.Now().UTC(). It is moved to a second after
	// the newest source config's when it is not later (see rebuildTime).
	Created time.Time
	// Filter is a one-line description of the selection, recorded in
	// LabelFilter and in the new history entry.
	Filter string
}

// Rebuilt is a catalog image rebuilt with a filtered file-based catalog.
// Pushing it means pushing Blobs and every platform's base layers (the
// source's, by the same digests), then each Platforms manifest, then
// Manifest.
type Rebuilt struct {
	// Digest, MediaType and Manifest are the new top manifest: an index
	// when the source was one, else the one platform image's manifest.
	Digest    digest.Digest
	MediaType string
	Manifest  []byte
	// Platforms are the rebuilt platform images, in the source's order.
	Platforms []RebuiltPlatform
	// Blobs are what the rebuild made: the FBC layer once (first), then
	// one config per platform. The base layers are the source's and are
	// not here.
	Blobs []NewBlob
}

// RebuiltPlatform is one rebuilt platform image.
type RebuiltPlatform struct {
	Digest    digest.Digest
	MediaType string
	Manifest  []byte
	// Source is the platform image it was rebuilt from.
	Source digest.Digest
}

// NewBlob is a blob a rebuild made.
type NewBlob struct {
	Digest    digest.Digest
	MediaType string
	Data      []byte
}

// Rebuild makes the catalog image that carries fbc (Filter's output) in
// place of cat's catalog. Every platform image of cat becomes:
//
//   - the source image as base, its layers unchanged;
//   - one new layer, the same for every platform (see newFBCLayer): an opaque
//     whiteout of the configs directory and the catalog, one directory
//     per package, and a whiteout of opm's pre-built cache directory;
//   - a new config: the source's with every field kept, but a fresh
//     created time, the new layer's diff ID and history entry, the labels
//     LabelSource, LabelSourceDigest and LabelFilter, and a command that
//     makes opm build its cache at start (see cacheAtStart).
//
// An index becomes the same index naming the rebuilt images (attestations
// dropped: they attest images that are not carried). The same fbc, cat
// and opts give the same bytes when opts.Created is set; the layer alone
// depends on fbc and the two directories only. A command that runs no
// `opm serve` is refused: ferry cannot know how such an image serves its
// catalog.
func Rebuild(cat *Catalog, fbc *declcfg.DeclarativeConfig, opts RebuildOptions) (*Rebuilt, error) {
	if cat == nil || fbc == nil {
		return nil, errors.New("rebuild: no catalog given")
	}
	r, err := rebuild(cat, fbc, opts)
	if err != nil {
		return nil, fmt.Errorf("rebuilding catalog %s: %w", cat.Ref, err)
	}
	return r, nil
}

func rebuild(cat *Catalog, fbc *declcfg.DeclarativeConfig, opts RebuildOptions) (*Rebuilt, error) {
	if len(cat.Images) == 0 {
		return nil, errors.New("no platform image was read")
	}
	if strings.ContainsAny(opts.Filter, "\r\n") {
		return nil, fmt.Errorf("the filter description %q is not one line", opts.Filter)
	}
	entrypoint, cmd, err := cacheAtStart(cat.Entrypoint, cat.Cmd, cat.ConfigsDir)
	if err != nil {
		return nil, err
	}
	layer, err := newFBCLayer(fbc, cat.ConfigsDir, cat.CacheDir)
	if err != nil {
		return nil, err
	}
	configs, err := parseConfigs(cat.Images)
	if err != nil {
		return nil, err
	}
	edit := configEdit{
		created:    rebuildTime(opts.Created, configs),
		diffID:     layer.diffID,
		entrypoint: entrypoint, cmd: cmd,
		labels: map[string]string{
			LabelSource: cat.Ref, LabelSourceDigest: cat.Digest.String(), LabelFilter: opts.Filter,
		},
		createdBy: historyLine(opts.Filter, cat.ConfigsDir, cat.CacheDir),
	}

	out := &Rebuilt{Blobs: []NewBlob{{Digest: layer.digest, MediaType: layerMediaType(cat.Images[0].MediaType), Data: layer.data}}}
	rebuilt, err := out.addPlatforms(cat.Images, configs, edit, layer)
	if err != nil {
		return nil, err
	}
	if !manifest.MIMETypeIsMultiImage(cat.MediaType) {
		p := out.Platforms[0]
		out.Digest, out.MediaType, out.Manifest = p.Digest, p.MediaType, p.Manifest
		return out, nil
	}
	index, err := rebuildIndex(cat.Manifest, rebuilt)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", cat.Digest, err)
	}
	out.Digest, out.MediaType, out.Manifest = digest.FromBytes(index), cat.MediaType, index
	return out, nil
}

// addPlatforms rebuilds every platform image (each once, should an index
// name one twice) into r.Platforms and their configs into r.Blobs, and
// returns them by source digest.
func (r *Rebuilt) addPlatforms(images []PlatformImage, configs []*imageJSON, edit configEdit, layer *fbcLayer) (map[digest.Digest]RebuiltPlatform, error) {
	rebuilt := map[digest.Digest]RebuiltPlatform{}
	for i, img := range images {
		if _, done := rebuilt[img.Digest]; done {
			continue
		}
		p, config, err := rebuildImage(img, configs[i], edit, layer)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Digest, err)
		}
		rebuilt[img.Digest] = p
		r.Platforms = append(r.Platforms, p)
		if !slices.ContainsFunc(r.Blobs, func(b NewBlob) bool { return b.Digest == config.Digest }) {
			r.Blobs = append(r.Blobs, config)
		}
	}
	return rebuilt, nil
}

// rebuildImage makes img's new config and manifest.
func rebuildImage(img PlatformImage, config *imageJSON, edit configEdit, layer *fbcLayer) (RebuiltPlatform, NewBlob, error) {
	m, err := parseManifestJSON(img)
	if err != nil {
		return RebuiltPlatform{}, NewBlob{}, err
	}
	configData, err := edit.apply(config, m.layerCount())
	if err != nil {
		return RebuiltPlatform{}, NewBlob{}, fmt.Errorf("config %s: %w", m.configDigest(), err)
	}
	newConfig := NewBlob{Digest: digest.FromBytes(configData), MediaType: m.configMediaType(), Data: configData}
	data, err := m.rebuilt(newConfig, layer)
	if err != nil {
		return RebuiltPlatform{}, NewBlob{}, err
	}
	return RebuiltPlatform{Digest: digest.FromBytes(data), MediaType: img.MediaType, Manifest: data, Source: img.Digest}, newConfig, nil
}

// rebuildTime is the created time of the rebuilt configs: want (now when
// zero), unless it is not later than the newest source config's created
// time; then a second after that. OLM v1 refuses a catalog that is not
// newer than the one it serves, so the rebuild must never look older than
// its source, whatever clock or option made want; one second is the
// resolution of the stamps many tools write.
func rebuildTime(want time.Time, configs []*imageJSON) time.Time {
	if want.IsZero() {
		want = time.Now()
	}
	want = want.UTC()
	for _, c := range configs {
		if !c.created.IsZero() && !want.After(c.created) {
			want = c.created.Add(time.Second).UTC()
		}
	}
	return want
}

// historyLine is the created_by of the new layer's history entry.
func historyLine(filter, configsDir, cacheDir string) string {
	line := fmt.Sprintf("ferry catalog rebuild (filter: %s): %s replaced", filter, configsDir)
	if cacheDir != "" {
		line += ", opm cache " + cacheDir + " removed"
	}
	return line + ", opm builds its cache at start"
}
