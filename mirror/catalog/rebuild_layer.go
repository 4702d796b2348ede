package catalog

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// The new layer's tar: every entry owned by root (uid and gid 0, no
// names) and stamped with the Unix epoch, so that the same catalog makes
// the same layer, byte for byte, on every run and host; a registry then
// stores it once however often the catalog is rebuilt.
const (
	layerModTimeUnix = 0
	layerDirMode     = 0o755
	layerFileMode    = 0o644
	// layerTmpMode is the mode of a world-writable temporary directory
	// (/tmp, /var/tmp) with its sticky bit. A directory's entry in a layer
	// sets that directory's mode in the image, and opm, which OpenShift
	// runs under an arbitrary uid, makes its cache in /tmp at start: an
	// entry for /tmp must keep it writable by all.
	layerTmpMode = 0o1777
	// packageFile is the file each package's catalog is written to, in
	// its own directory, as opm's own tools and catalog images lay them
	// out; globalFile holds the documents of no package, at the root.
	packageFile = "catalog.json"
	globalFile  = "catalog.json"
)

// fbcLayer is the layer a rebuild adds to every platform image.
type fbcLayer struct {
	data   []byte // the gzip'd tar
	digest digest.Digest
	diffID digest.Digest // the tar's
}

// layerEntry is one entry of the new layer; content is nil for a
// directory and makes a file's data when it is written.
type layerEntry struct {
	name    string // relative; a directory's ends in "/"
	mode    int64
	content func() ([]byte, error)
}

// newFBCLayer makes the layer that replaces the catalog under configsDir
// with fbc and hides opm's pre-built cache in cacheDir ("" for none):
//
//   - configs/.wh..wh..opq: an opaque whiteout, which hides everything
//     the layers below hold in the configs directory while the directory
//     itself, its mode and owner, stay;
//   - configs/<package>/catalog.json: each package's olm.package,
//     olm.channel, olm.bundle, olm.deprecations and other documents, in
//     opm's JSON; documents of no package in configs/catalog.json;
//   - tmp/.wh.cache: a whiteout of the cache directory itself, not an
//     opaque whiteout inside it. The image then has no cache at all,
//     exactly what `RUN rm -rf /tmp/cache` would leave, and the layer
//     needs no entry for the cache directory, whose owner and mode (set
//     by whoever built the cache) ferry does not know; an empty directory
//     left in its place would look to anything pointed at it (opm serve
//     --cache-dir, OLM's extractContent) like a cache that was never
//     built, which is no better than none.
//
// Every directory above an entry has its own entry, parents first, as
// image builders write them (some runtimes create a missing parent with
// a default mode); whiteouts come before the other entries of their
// directory.
func newFBCLayer(fbc *declcfg.DeclarativeConfig, configsDir, cacheDir string) (*fbcLayer, error) {
	configs, err := layerPath(configsDir, "configs directory")
	if err != nil {
		return nil, err
	}
	cache, err := cacheToHide(cacheDir, configs)
	if err != nil {
		return nil, err
	}
	entries := map[string]layerEntry{}
	addDirs(entries, configs)
	addFile(entries, configs+"/"+whiteoutOpaque, nil)
	if err := addCatalog(entries, configs, fbc); err != nil {
		return nil, err
	}
	if cache != "" {
		parent, base := splitPath(cache)
		addDirs(entries, parent)
		addFile(entries, joinPath(parent, whiteoutPrefix+base), nil)
	}
	sorted := slices.SortedFunc(func(yield func(layerEntry) bool) {
		for _, e := range entries {
			if !yield(e) {
				return
			}
		}
	}, func(a, b layerEntry) int { return compareLayerPaths(a.name, b.name) })
	return writeLayer(sorted)
}

// layerPath is the absolute directory dir as a path in a layer
// ("configs"); the root is refused.
func layerPath(dir, what string) (string, error) {
	if !path.IsAbs(dir) {
		return "", fmt.Errorf("the %s %q is not an absolute path: ferry cannot tell which directory of the image it is", what, dir)
	}
	p := cleanName(dir)
	if p == "" {
		return "", fmt.Errorf("the %s is the image's root directory: ferry will not hide the whole image", what)
	}
	return p, nil
}

// cacheToHide is the cache directory to white out, as a layer path: ""
// when there is none, or when it lies inside the configs directory, whose
// opaque whiteout hides it already.
func cacheToHide(cacheDir, configs string) (string, error) {
	if cacheDir == "" {
		return "", nil
	}
	cache, err := layerPath(cacheDir, "opm cache directory")
	if err != nil {
		return "", err
	}
	switch {
	case cache == configs:
		return "", fmt.Errorf("the opm cache directory %s is the configs directory", cacheDir)
	case strings.HasPrefix(configs, cache+"/"):
		return "", fmt.Errorf("the configs directory /%s lies inside the opm cache directory %s, which ferry hides", configs, cacheDir)
	case strings.HasPrefix(cache, configs+"/"):
		return "", nil
	}
	return cache, nil
}

// addDirs adds an entry for dir and every directory above it.
func addDirs(entries map[string]layerEntry, dir string) {
	for p := dir; p != ""; p, _ = splitPath(p) {
		mode := int64(layerDirMode)
		if p == "tmp" || p == "var/tmp" {
			mode = layerTmpMode
		}
		entries[p+"/"] = layerEntry{name: p + "/", mode: mode}
	}
}

// addFile adds a file; nil content is an empty file (a whiteout).
func addFile(entries map[string]layerEntry, name string, content func() ([]byte, error)) {
	if content == nil {
		content = func() ([]byte, error) { return nil, nil }
	}
	entries[name] = layerEntry{name: name, mode: layerFileMode, content: content}
}

// addCatalog adds fbc under configs, one directory per package. Each
// file is rendered only when the layer is written, so that one package's
// JSON at a time is held.
func addCatalog(entries map[string]layerEntry, configs string, fbc *declcfg.DeclarativeConfig) error {
	parts, global, err := splitByPackage(fbc)
	if err != nil {
		return err
	}
	for name, part := range parts {
		dir := configs + "/" + name
		addDirs(entries, dir)
		addFile(entries, dir+"/"+packageFile, func() ([]byte, error) { return renderJSON(part, "/"+dir+"/"+packageFile) })
	}
	if global != nil {
		if _, ok := parts[globalFile]; ok {
			return fmt.Errorf("package %q would share its name with the file of the catalog's documents of no package", globalFile)
		}
		name := configs + "/" + globalFile
		addFile(entries, name, func() ([]byte, error) { return renderJSON(global, "/"+name) })
	}
	return nil
}

// splitByPackage groups fbc's documents by package; global holds the
// documents of other schemas that name no package (nil without any).
func splitByPackage(fbc *declcfg.DeclarativeConfig) (parts map[string]*declcfg.DeclarativeConfig, global *declcfg.DeclarativeConfig, err error) {
	parts = map[string]*declcfg.DeclarativeConfig{}
	var bad error
	part := func(pkg string) *declcfg.DeclarativeConfig {
		if p, ok := parts[pkg]; ok {
			return p
		}
		if err := checkPackageName(pkg); err != nil && bad == nil {
			bad = err
		}
		parts[pkg] = &declcfg.DeclarativeConfig{}
		return parts[pkg]
	}
	for _, p := range fbc.Packages {
		pp := part(p.Name)
		pp.Packages = append(pp.Packages, p)
	}
	for _, c := range fbc.Channels {
		pp := part(c.Package)
		pp.Channels = append(pp.Channels, c)
	}
	for _, b := range fbc.Bundles {
		pp := part(b.Package)
		pp.Bundles = append(pp.Bundles, b)
	}
	for _, d := range fbc.Deprecations {
		pp := part(d.Package)
		pp.Deprecations = append(pp.Deprecations, d)
	}
	for _, o := range fbc.Others {
		if o.Package == "" {
			if global == nil {
				global = &declcfg.DeclarativeConfig{}
			}
			global.Others = append(global.Others, o)
			continue
		}
		pp := part(o.Package)
		pp.Others = append(pp.Others, o)
	}
	return parts, global, bad
}

// checkPackageName refuses a package name that cannot be one directory of
// the catalog: empty, a path, or a name a layer reads as a whiteout.
func checkPackageName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, whiteoutPrefix) {
		return fmt.Errorf("package name %q cannot be a directory of the catalog", name)
	}
	return nil
}

// errFileTooLarge stops a file's rendering at MaxFileBytes.
var errFileTooLarge = errors.New("file too large")

// cappedBuffer is a buffer that refuses to grow past max bytes.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errFileTooLarge
	}
	return b.Buffer.Write(p)
}

// renderJSON writes cfg as opm's JSON stream (declcfg.WriteJSON, which,
// unlike declcfg.WriteFS, keeps olm.deprecations and other schemas), at
// most MaxFileBytes: what ferry's own reader takes from one file.
func renderJSON(cfg *declcfg.DeclarativeConfig, name string) ([]byte, error) {
	buf := &cappedBuffer{max: MaxFileBytes}
	if err := declcfg.WriteJSON(*cfg, buf); err != nil {
		if errors.Is(err, errFileTooLarge) {
			return nil, &BoundError{Bound: "MaxFileBytes", Limit: MaxFileBytes, Path: name}
		}
		return nil, fmt.Errorf("writing %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// compareLayerPaths orders layer paths as a walk of the tree: a directory
// before what it holds, whiteouts before the other entries of their
// directory, names in byte order otherwise.
func compareLayerPaths(a, b string) int {
	as := strings.Split(strings.TrimSuffix(a, "/"), "/")
	bs := strings.Split(strings.TrimSuffix(b, "/"), "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		aw, bw := strings.HasPrefix(as[i], whiteoutPrefix), strings.HasPrefix(bs[i], whiteoutPrefix)
		if aw != bw {
			if aw {
				return -1
			}
			return 1
		}
		return strings.Compare(as[i], bs[i])
	}
	return cmp.Compare(len(as), len(bs))
}

// writeLayer writes entries as a gzip'd tar. The gzip header carries no
// name nor time (Go's writer leaves them zero), so the bytes depend on
// the entries alone. The files together are at most MaxCatalogBytes: what
// ferry's own reader holds of a catalog.
func writeLayer(entries []layerEntry) (*fbcLayer, error) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	diff := digest.SHA256.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, diff.Hash()))
	var total int64
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, ModTime: time.Unix(layerModTimeUnix, 0), Typeflag: tar.TypeDir}
		var data []byte
		if e.content != nil {
			var err error
			if data, err = e.content(); err != nil {
				return nil, err
			}
			if total += int64(len(data)); total > MaxCatalogBytes {
				return nil, &BoundError{Bound: "MaxCatalogBytes", Limit: MaxCatalogBytes}
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing the catalog layer, %s: %w", e.name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("writing the catalog layer, %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the catalog layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("writing the catalog layer: %w", err)
	}
	return &fbcLayer{data: gz.Bytes(), digest: digest.FromBytes(gz.Bytes()), diffID: diff.Digest()}, nil
}
