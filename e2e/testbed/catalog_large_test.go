package testbed

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"

	"github.com/ferryhq/ferry/mirror/catalog"
)

// largeTestPackages keeps the large catalog's tests quick: enough packages
// for every trait the generator draws.
const largeTestPackages = 24

// TestBuildLargeCatalog: ferry reads back the catalog as built, figures
// and all; operator-registry's model accepts it; the filter selects heads
// (dependencies resolved within the catalog) and everything.
func TestBuildLargeCatalog(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	cat := BuildLargeCatalog(t, reg.Host, LargeCatalogOptions{Packages: largeTestPackages})
	got, err := catalog.Read(t.Context(), ferryClient(t), cat.PullSpec)
	if err != nil {
		t.Fatalf("reading %s: %v", cat.PullSpec, err)
	}
	if got.Digest != cat.Digest {
		t.Errorf("read %s, built %s", got.Digest, cat.Digest)
	}
	fbc := got.FBC
	var names []string
	for _, p := range fbc.Packages {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, cat.Packages) || len(names) != largeTestPackages ||
		len(fbc.Channels) != cat.Channels || len(fbc.Bundles) != cat.Bundles {
		t.Fatalf("read %d packages, %d channels, %d bundles; built %d, %d, %d",
			len(names), len(fbc.Channels), len(fbc.Bundles), len(cat.Packages), cat.Channels, cat.Bundles)
	}
	validModel(t, fbc)
	checkLargeFiles(t, reg, cat)
	checkLargeBundles(t, fbc, cat)
	checkLargeTraits(t, fbc)

	all, _, err := catalog.Filter(fbc, catalog.Selection{Full: true}, catalog.FilterOptions{})
	if err != nil || len(all.Bundles) != cat.Bundles {
		t.Fatalf("full: true: %v; kept %d bundles of %d", err, len(all.Bundles), cat.Bundles)
	}
	// The heads of the packages that require others: the filter adds the
	// bundles they need from the catalog.
	var sel catalog.Selection
	for _, name := range requiringPackages(fbc) {
		sel.Packages = append(sel.Packages, catalog.PackageSelection{Name: name})
	}
	_, report, err := catalog.Filter(fbc, sel, catalog.FilterOptions{})
	if err != nil {
		t.Fatalf("heads of %d packages: %v", len(sel.Packages), err)
	}
	added := 0
	for _, p := range report.Packages {
		added += len(p.DependenciesAdded)
		if len(p.DependenciesUnresolved) > 0 {
			t.Errorf("%s: dependencies unresolved: %+v", p.Name, p.DependenciesUnresolved)
		}
	}
	if added == 0 {
		t.Errorf("heads of %d packages that require others: no dependency added", len(sel.Packages))
	}
}

// requiringPackages are the packages with olm.package.required or
// olm.gvk.required properties, sorted.
func requiringPackages(fbc *declcfg.DeclarativeConfig) []string {
	set := map[string]bool{}
	for _, b := range fbc.Bundles {
		for _, p := range b.Properties {
			if p.Type == property.TypePackageRequired || p.Type == property.TypeGVKRequired {
				set[b.Package] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// checkLargeFiles: the FBC layer holds one catalog.json per package, whose
// sizes are the figures given.
func checkLargeFiles(t *testing.T, reg *Registry, cat *LargeCatalog) {
	t.Helper()
	files := layerFiles(t, reg.Client(), cat.Repository, cat.ConfigsLayer)
	var want []string
	for _, p := range cat.Packages {
		want = append(want, "configs/"+p+"/catalog.json")
	}
	if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, want) {
		t.Fatalf("FBC layer files %v, want %v", got, want)
	}
	var total, largest int64
	for _, data := range files {
		total += int64(len(data))
		largest = max(largest, int64(len(data)))
	}
	if total != cat.FBCBytes || largest != cat.LargestFile {
		t.Errorf("files hold %d bytes, largest %d; figures say %d, %d", total, largest, cat.FBCBytes, cat.LargestFile)
	}
}

// checkLargeBundles: each bundle carries a CSV naming it and its related
// images, and its CRDs, as olm.bundle.object; the figures count them.
func checkLargeBundles(t *testing.T, fbc *declcfg.DeclarativeConfig, cat *LargeCatalog) {
	t.Helper()
	var objects int
	var objectBytes int64
	for _, b := range fbc.Bundles {
		kinds := map[string]int{}
		for _, p := range b.Properties {
			if p.Type != property.TypeBundleObject {
				continue
			}
			var o struct {
				Data string `json:"data"`
			}
			if err := json.Unmarshal(p.Value, &o); err != nil {
				t.Fatalf("%s: %s: %v", b.Name, p.Type, err)
			}
			objects++
			objectBytes += int64(len(o.Data))
			data, err := base64.StdEncoding.DecodeString(o.Data)
			if err != nil {
				t.Fatalf("%s: %s: %v", b.Name, p.Type, err)
			}
			var doc struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
				Spec struct {
					RelatedImages []declcfg.RelatedImage `json:"relatedImages"`
				} `json:"spec"`
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatalf("%s: object: %v", b.Name, err)
			}
			kinds[doc.Kind]++
			if doc.Kind == "ClusterServiceVersion" && (doc.Metadata.Name != b.Name || !slices.Equal(doc.Spec.RelatedImages, b.RelatedImages[1:])) {
				t.Errorf("%s: CSV %s names related images %v, the bundle %v", b.Name, doc.Metadata.Name, doc.Spec.RelatedImages, b.RelatedImages)
			}
		}
		if kinds["ClusterServiceVersion"] != 1 || kinds["CustomResourceDefinition"] < 1 || len(b.RelatedImages) < 3 {
			t.Errorf("%s: objects %v, %d related images", b.Name, kinds, len(b.RelatedImages))
		}
	}
	if objects != cat.BundleObjects || objectBytes != cat.BundleObjectBytes {
		t.Errorf("%d objects of %d bytes; figures say %d of %d", objects, objectBytes, cat.BundleObjects, cat.BundleObjectBytes)
	}
}

// checkLargeTraits: the catalog has what real ones have, so that reading
// and filtering it walks every path: skips, skipRanges, channels up to
// four, defaults other than stable, prerelease versions with
// olm.maxOpenShiftVersion, deprecations, both kinds of requirement.
func checkLargeTraits(t *testing.T, fbc *declcfg.DeclarativeConfig) {
	t.Helper()
	traits := map[string]int{}
	channels := map[string]int{}
	for _, ch := range fbc.Channels {
		channels[ch.Package]++
		for _, e := range ch.Entries {
			if len(e.Skips) > 0 {
				traits["skips"]++
			}
			if e.SkipRange != "" {
				traits["skipRange"]++
			}
		}
	}
	for _, n := range channels {
		if n == 4 {
			traits["four channels"]++
		}
	}
	for _, p := range fbc.Packages {
		if p.DefaultChannel != "stable" {
			traits["default not stable"]++
		}
	}
	for _, b := range fbc.Bundles {
		if strings.Contains(b.Name, "-20") {
			traits["prerelease"]++
		}
		for _, p := range b.Properties {
			traits[p.Type]++
		}
	}
	traits["deprecations"] = len(fbc.Deprecations)
	for _, want := range []string{"skips", "skipRange", "four channels", "default not stable", "prerelease", "deprecations",
		maxOpenShiftVersionProperty, property.TypePackageRequired, property.TypeGVKRequired} {
		if traits[want] == 0 {
			t.Errorf("no %s in the catalog: %v", want, traits)
		}
	}
}

// TestLargeCatalogOPMValidates: opm, operator-registry's reference tool,
// accepts the FBC as written.
func TestLargeCatalogOPMValidates(t *testing.T) {
	t.Parallel()
	OPM(t)
	plans := largePlans(0, largeTestPackages)
	files, _, err := largeFBC(t.Context(), plans, 0, LargeCatalogReferenceHost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ValidateFBC(t, dir)
}

// TestBuildLargeCatalogDeterministic: the same seed makes the same catalog
// on any registry; another seed another.
func TestBuildLargeCatalogDeterministic(t *testing.T) {
	t.Parallel()
	regA, regB := NewMemoryRegistry(t), NewMemoryRegistry(t)
	opts := LargeCatalogOptions{Seed: 3, Packages: 12}
	a := BuildLargeCatalog(t, regA.Host, opts)
	b := BuildLargeCatalog(t, regB.Host, opts)
	if a.Digest != b.Digest || a.FBCBytes != b.FBCBytes {
		t.Errorf("seed 3 on two registries: %s (%d bytes) and %s (%d bytes)", a.Digest, a.FBCBytes, b.Digest, b.FBCBytes)
	}
	opts.Seed = 4
	if c := BuildLargeCatalog(t, regB.Host, opts); c.ConfigsLayer == a.ConfigsLayer {
		t.Errorf("seeds 3 and 4 made the same FBC layer %s", c.ConfigsLayer)
	}
}
