package testbed

import (
	"bytes"
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blang/semver/v4"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/model"
	"github.com/operator-framework/operator-registry/alpha/property"

	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/registry"
)

// ferryClient is ferry's own registry client, as the catalog reader's
// tests make it: plain HTTP, no credentials of the host, no retries.
func ferryClient(t *testing.T) *registry.Client {
	return registry.New(registry.Options{
		AuthFile:  filepath.Join(t.TempDir(), "auth.json"),
		TLSVerify: false,
		UserAgent: "ferry-testbed-test",
		Retry:     registry.RetryPolicy{Attempts: 1},
	})
}

// readCatalog reads the catalog back with ferry's reader, by tag.
func readCatalog(t *testing.T, cat *Catalog) *catalog.Catalog {
	t.Helper()
	got, err := catalog.Read(t.Context(), ferryClient(t), cat.PullSpec)
	if err != nil {
		t.Fatalf("reading %s: %v", cat.PullSpec, err)
	}
	return got
}

// canonicalFBC maps every document of cfg to its JSON with object keys
// sorted and no spacing, so that catalogs read from JSON and YAML files
// compare by content alone. The key is schema/package/name.
func canonicalFBC(t *testing.T, cfg *declcfg.DeclarativeConfig) map[string]string {
	t.Helper()
	out := map[string]string{}
	put := func(schema, pkg, name string, doc any) {
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		if data, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
		key := schema + "/" + pkg + "/" + name
		if _, dup := out[key]; dup {
			t.Errorf("%s twice", key)
		}
		out[key] = string(data)
	}
	for _, p := range cfg.Packages {
		put(p.Schema, p.Name, "", p)
	}
	for _, c := range cfg.Channels {
		put(c.Schema, c.Package, c.Name, c)
	}
	for _, b := range cfg.Bundles {
		put(b.Schema, b.Package, b.Name, b)
	}
	for _, d := range cfg.Deprecations {
		put(d.Schema, d.Package, "", d)
	}
	if len(cfg.Others) > 0 {
		t.Errorf("%d documents of other schemas", len(cfg.Others))
	}
	return out
}

func assertSameFBC(t *testing.T, got, want *declcfg.DeclarativeConfig) {
	t.Helper()
	g, w := canonicalFBC(t, got), canonicalFBC(t, want)
	for _, k := range slices.Sorted(maps.Keys(w)) {
		switch {
		case g[k] == "":
			t.Errorf("read back without %s", k)
		case g[k] != w[k]:
			t.Errorf("%s read back as\n %s\nwant\n %s", k, g[k], w[k])
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("read back with %s, not built", k)
		}
	}
}

// validModel converts cfg to operator-registry's model and validates it,
// on a copy: the model normalises property values in place.
func validModel(t *testing.T, cfg *declcfg.DeclarativeConfig) model.Model {
	t.Helper()
	view := *cfg
	view.Bundles = slices.Clone(cfg.Bundles)
	for i := range view.Bundles {
		view.Bundles[i].Properties = slices.Clone(view.Bundles[i].Properties)
	}
	m, err := declcfg.ConvertToModel(view)
	if err != nil {
		t.Fatalf("FBC does not convert: %v", err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("FBC does not validate: %v", err)
	}
	return m
}

// TestBuildCatalogFBC: the FBC built is a valid catalog by operator-
// registry's own model, with the heads HeadOf says, and has every trait
// the filter's tests need.
func TestBuildCatalogFBC(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	cat := BuildCatalog(t, reg.Host, CatalogOptions{})
	m := validModel(t, cat.FBC)

	wantHeads := map[string]string{
		"aurora-operator/stable":   "aurora-operator.v1.2.0",
		"aurora-operator/fast":     "aurora-operator.v2.0.0",
		"borealis-operator/stable": "borealisoperator.4.14.0-202311021650",
		"borealis-operator/fast":   "borealisoperator.4.15.0-202402011532",
		"cygnus-operator/alpha":    "cygnus-operator.v1.0.0",
		"cygnus-operator/stable":   "cygnus-operator.v1.1.0",
		"dorado-operator/stable":   "dorado-operator.v3.0.1",
	}
	heads := 0
	for _, p := range m {
		for _, ch := range p.Channels {
			head, err := ch.Head()
			if err != nil {
				t.Fatalf("%s/%s: %v", p.Name, ch.Name, err)
			}
			key := p.Name + "/" + ch.Name
			if got := cat.HeadOf(p.Name, ch.Name); got != head.Name || got != wantHeads[key] {
				t.Errorf("HeadOf(%s) = %s; model's head %s, want %s", key, got, head.Name, wantHeads[key])
			}
			heads++
		}
	}
	if heads != len(wantHeads) {
		t.Errorf("%d channels, want %d", heads, len(wantHeads))
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, cat.Packages) || len(got) != 4 {
		t.Errorf("packages %v, Packages %v", got, cat.Packages)
	}
	if d := cat.DefaultChannel(CatalogPackageBorealis); d != "fast" {
		t.Errorf("borealis default channel %q, want fast", d)
	}
	checkCatalogTraits(t, cat)
}

// checkCatalogTraits asserts what the FBC must hold for the tests that use
// it: every kind of upgrade edge, prerelease versions, deprecations, both
// forms of olm.maxOpenShiftVersion, dependencies, a related image by tag.
func checkCatalogTraits(t *testing.T, cat *Catalog) {
	t.Helper()
	var replaces, skips, skipRanges int
	for _, ch := range cat.FBC.Channels {
		for _, e := range ch.Entries {
			if e.Replaces != "" {
				replaces++
			}
			skips += len(e.Skips)
			if e.SkipRange != "" {
				if _, err := semver.ParseRange(e.SkipRange); err != nil {
					t.Errorf("%s: skipRange %q: %v", e.Name, e.SkipRange, err)
				}
				skipRanges++
			}
		}
	}
	if replaces == 0 || skips == 0 || skipRanges == 0 {
		t.Errorf("%d replaces, %d skips, %d skipRanges: want some of each", replaces, skips, skipRanges)
	}
	prerelease, maxForms, required := 0, map[string]bool{}, map[string]bool{}
	for _, b := range cat.Bundles {
		if v, err := semver.Parse(b.Version); err != nil {
			t.Errorf("%s: version %q: %v", b.Name, b.Version, err)
		} else if len(v.Pre) > 0 {
			prerelease++
		}
		if b.MaxOpenShiftVersion != "" {
			maxForms[b.MaxOpenShiftVersion] = true
		}
		if len(b.Channels) == 0 || b.RelatedImages[0] != b.Image {
			t.Errorf("%s: channels %v, related images %v", b.Name, b.Channels, b.RelatedImages)
		}
	}
	for _, b := range cat.FBC.Bundles {
		for _, p := range b.Properties {
			required[p.Type] = true
		}
	}
	if prerelease == 0 || !maxForms[`"4.16"`] || !maxForms[`4.2`] {
		t.Errorf("%d prerelease versions, olm.maxOpenShiftVersion forms %v", prerelease, slices.Sorted(maps.Keys(maxForms)))
	}
	if !required[property.TypePackageRequired] || !required[property.TypeGVKRequired] {
		t.Errorf("property types %v: want both kinds of dependency", slices.Sorted(maps.Keys(required)))
	}
	deprecated := map[string]int{}
	for _, d := range cat.FBC.Deprecations {
		deprecated[d.Package] = len(d.Entries)
	}
	if deprecated[CatalogPackageCygnus] != 2 || deprecated[CatalogPackageDorado] != 1 {
		t.Errorf("deprecations %v", deprecated)
	}
	byTag := 0
	for _, r := range cat.RelatedImages {
		if r.Tag != "" {
			byTag++
			if r.Image != cat.Host+"/"+r.Repository+":"+r.Tag || len(r.Bundles) != 2 {
				t.Errorf("related image by tag %+v", r)
			}
		} else if r.Image != cat.Host+"/"+r.Repository+"@"+r.Digest.String() {
			t.Errorf("related image %s, recorded as %s@%s", r.Image, r.Repository, r.Digest)
		}
	}
	if byTag != 1 {
		t.Errorf("%d related images by tag, want 1", byTag)
	}
}

// TestBuildCatalogReadBack: ferry's catalog reader, through ferry's
// registry client, reads back exactly the FBC built, from a single image
// and from an index, with the stock command and cache directory.
func TestBuildCatalogReadBack(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts CatalogOptions
		mt   string
	}{
		{"single", CatalogOptions{}, ocispec.MediaTypeImageManifest},
		{"multi", CatalogOptions{Multi: true}, ocispec.MediaTypeImageIndex},
		{"multi docker", CatalogOptions{Multi: true, Docker: true}, MediaTypeDockerManifestList},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := NewMemoryRegistry(t)
			cat := BuildCatalog(t, reg.Host, tt.opts)
			got := readCatalog(t, cat)
			assertSameFBC(t, got.FBC, cat.FBC)
			if got.Digest != cat.Digest || got.MediaType != tt.mt || cat.MediaType != tt.mt {
				t.Errorf("read %s %s, built %s %s, want type %s", got.Digest, got.MediaType, cat.Digest, cat.MediaType, tt.mt)
			}
			wantPlatforms := 1
			if tt.opts.Multi {
				wantPlatforms = len(CatalogArches)
			}
			if !slices.Equal(got.Platforms, cat.Platforms) || len(got.Platforms) != wantPlatforms {
				t.Errorf("platforms read %v, built %v", got.Platforms, cat.Platforms)
			}
			wantCmd := []string{"serve", "/configs", "--cache-dir=/tmp/cache"}
			if got.ConfigsDir != "/configs" || got.CacheDir != CatalogCacheDir ||
				!slices.Equal(got.Entrypoint, []string{"/bin/opm"}) || !slices.Equal(got.Cmd, wantCmd) || !slices.Equal(cat.Cmd, wantCmd) {
				t.Errorf("configs %s, cache %s, entrypoint %q, cmd %q", got.ConfigsDir, got.CacheDir, got.Entrypoint, got.Cmd)
			}
			checkCatalogLayers(t, reg, cat)
		})
	}
}

// checkCatalogLayers: every platform image has the base, FBC and cache
// layers, sharing the last two, and the FBC layer holds Files.
func checkCatalogLayers(t *testing.T, reg *Registry, cat *Catalog) {
	t.Helper()
	c := reg.Client()
	var bases []digest.Digest
	for _, p := range cat.Platforms {
		data, _ := mustManifest(t, c, cat.Repository, p.String())
		m := decode[ocispec.Manifest](t, data)
		var layers []digest.Digest
		for _, l := range m.Layers {
			layers = append(layers, l.Digest)
		}
		if len(layers) != 3 || layers[1] != cat.ConfigsLayer || layers[2] != cat.CacheLayer {
			t.Errorf("platform %s: layers %v; FBC %s, cache %s", p, layers, cat.ConfigsLayer, cat.CacheLayer)
			continue
		}
		bases = append(bases, layers[0])
	}
	if len(slices.Compact(slices.Clone(bases))) != len(cat.Platforms) {
		t.Errorf("base layers %v: want one per platform", bases)
	}
	files := layerFiles(t, c, cat.Repository, cat.ConfigsLayer)
	for name, data := range cat.Files {
		if !bytes.Equal(files["configs/"+name], data) {
			t.Errorf("FBC layer's configs/%s differs from Files", name)
		}
	}
	if len(files) != len(cat.Files) || len(cat.Files) < 6 {
		t.Errorf("FBC layer has %d files, Files %d", len(files), len(cat.Files))
	}
	dirs := map[string]bool{}
	for name := range cat.Files {
		dirs[strings.SplitN(name, "/", 2)[0]] = true
	}
	if got := slices.Sorted(maps.Keys(dirs)); !slices.Equal(got, cat.Packages) {
		t.Errorf("package directories %v, want %v", got, cat.Packages)
	}
}

// layerFiles are the regular files of a gzip'd layer blob.
func layerFiles(t *testing.T, c *Client, repo string, d digest.Digest) map[string][]byte {
	t.Helper()
	m := ocispec.Manifest{Layers: []ocispec.Descriptor{{Digest: d}}}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return releaseFiles(t, c, repo, data)
}
