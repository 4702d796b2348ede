package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// LayerOpener opens one layer of an image as the registry serves it (a
// tar, possibly gzip- or zstd-compressed). ReadFBC closes what it opens.
type LayerOpener func(ctx context.Context) (io.ReadCloser, error)

// ReadFBC reads the file-based catalog under configsDir (the value of the
// image's LabelConfigsDir, such as "/configs") out of an image's layers,
// given in manifest order (base first).
//
// It flattens the layers as a container runtime does, from the top down:
// a path a layer holds hides it in the layers below, and OCI whiteouts
// (".wh.<name>", and ".wh..wh..opq" for a whole directory) hide what they
// name. Every file of the configs directory that is left is then read as
// opm reads it: as a stream of JSON or YAML documents, except the files
// that .indexignore files name (operator-registry's own walk does that
// part). A symbolic link, a device or any other non-regular file there
// fails the read unless it is ignored: opm would read through it, ferry
// does not.
//
// It streams every layer (a file of the catalog may sit in any of them)
// to its very end, compressed, so that an opener that verifies what it
// streams (registry's VerifiedBlob) gets to check the whole layer; what a
// layer holds counts only once it has passed. Once the layers read hide
// the configs directory of the layers below (as a catalog rebuilt with a
// whiteout of it does), it opens no further layer. It holds only the
// files of the configs directory, each until it is parsed. A layer that
// needs more than a bound allows is refused with a *BoundError.
func ReadFBC(ctx context.Context, layers []LayerOpener, configsDir string) (*declcfg.DeclarativeConfig, error) {
	return readFBC(ctx, layers, configsDir, defaultLimits)
}

func readFBC(ctx context.Context, layers []LayerOpener, configsDir string, l limits) (*declcfg.DeclarativeConfig, error) {
	if strings.TrimSpace(configsDir) == "" {
		return nil, fmt.Errorf("no configs directory given")
	}
	dir := cleanName(configsDir)
	f := newFlattener(dir, l)
	for i := len(layers) - 1; i >= 0 && !f.closed(); i-- {
		if err := f.readLayer(ctx, layers[i]); err != nil {
			return nil, fmt.Errorf("reading layer %d of %d: %w", i+1, len(layers), err)
		}
	}
	fsys, err := f.takeFS()
	if err != nil {
		return nil, err
	}
	return load(ctx, fsys, "/"+dir)
}

// takeFS hands the visible configs directory over as a memFS, letting go
// of the flattener's own references to the files' data.
func (f *flattener) takeFS() (*memFS, error) {
	if len(f.blocked) > 0 {
		p := slices.Min(slices.Collect(maps.Keys(f.blocked)))
		return nil, fmt.Errorf("/%s is %s in the image, not a directory: ferry reads a configs directory only as one", p, f.blocked[p])
	}
	if f.dir != "" && !f.dirs[f.dir] {
		return nil, fmt.Errorf("the image has no directory /%s, where its label says the catalog is", f.dir)
	}
	rel := func(p string) string {
		if f.dir == "" {
			return p
		}
		return strings.TrimPrefix(strings.TrimPrefix(p, f.dir), "/")
	}
	files := make(map[string]*heldFile, len(f.files))
	for p, file := range f.files {
		files[rel(p)] = file
	}
	dirs := make([]string, 0, len(f.dirs))
	for p := range f.dirs {
		dirs = append(dirs, rel(p))
	}
	f.files, f.dirs = nil, nil
	return newMemFS("/"+f.dir, files, dirs)
}

// load parses every file of fsys that .indexignore does not exclude, one
// document at a time, with operator-registry's walk and parser; root names
// fsys's root in errors.
func load(ctx context.Context, fsys fs.FS, root string) (*declcfg.DeclarativeConfig, error) {
	var cfg declcfg.DeclarativeConfig
	name := func(p string) string { return strings.TrimSuffix(root, "/") + "/" + p }
	err := declcfg.WalkMetasFS(ctx, fsys, func(p string, meta *declcfg.Meta, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", name(p), err)
		}
		if meta.Schema == "" {
			// operator-registry's own error would quote the whole document.
			return fmt.Errorf("%s: a document has no schema field", name(p))
		}
		if meta.Schema == declcfg.SchemaBundle {
			b, err := loadBundle(meta)
			if err != nil {
				return fmt.Errorf("%s: %w", name(p), err)
			}
			cfg.Bundles = append(cfg.Bundles, b)
			return nil
		}
		one, err := declcfg.LoadSlice([]*declcfg.Meta{meta})
		if err != nil {
			return fmt.Errorf("%s: %w", name(p), err)
		}
		cfg.Packages = append(cfg.Packages, one.Packages...)
		cfg.Channels = append(cfg.Channels, one.Channels...)
		cfg.Bundles = append(cfg.Bundles, one.Bundles...)
		cfg.Deprecations = append(cfg.Deprecations, one.Deprecations...)
		cfg.Others = append(cfg.Others, one.Others...)
		return nil
	}, declcfg.WithConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("reading the catalog in %s: %w", root, err)
	}
	return &cfg, nil
}

// loadBundle parses an olm.bundle document as operator-registry's loader
// does, refusing what it refuses (an olm.bundle.object that is not base64
// of a JSON or YAML document), but without keeping the decoded copy of
// every olm.bundle.object it makes (Bundle.Objects, and CsvJSON, found by
// parsing each object as YAML). Ferry reads bundles' properties and
// images, never those copies, which would add two thirds of the catalog's
// size to what a read holds and most of its time (profiled on a catalog
// of Red Hat's shape). A bundle without an image keeps its Objects, which
// operator-registry's model validation takes for its content.
func loadBundle(meta *declcfg.Meta) (declcfg.Bundle, error) {
	var b declcfg.Bundle
	if err := json.Unmarshal(meta.Blob, &b); err != nil {
		return declcfg.Bundle{}, fmt.Errorf("parse bundle: %w", err)
	}
	for i, p := range b.Properties {
		if p.Type != property.TypeBundleObject {
			continue
		}
		var obj property.BundleObject
		if err := json.Unmarshal(p.Value, &obj); err != nil {
			return declcfg.Bundle{}, fmt.Errorf("package %q, bundle %q: parse property at index %d as bundle object: %w", b.Package, b.Name, i, err)
		}
		objJSON, err := yaml.ToJSON(obj.Data)
		if err != nil {
			return declcfg.Bundle{}, fmt.Errorf("package %q, bundle %q: convert bundle object property at index %d to JSON: %w", b.Package, b.Name, i, err)
		}
		if b.Image == "" {
			b.Objects = append(b.Objects, string(objJSON))
		}
	}
	return b, nil
}
