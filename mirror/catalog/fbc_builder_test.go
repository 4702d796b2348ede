package catalog

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// operatorFixtures is shared/fixtures/operators beside the checkout (see
// shared/fixtures/README.md): real catalogs, read in place, never copied.
const operatorFixtures = "../../../shared/fixtures/operators"

func loadOperatorFixture(t testing.TB, name string) *declcfg.DeclarativeConfig {
	t.Helper()
	cfg, err := declcfg.LoadFile(os.DirFS(operatorFixtures), name)
	if err != nil {
		t.Fatalf("operator fixture %s (shared/fixtures must sit beside the checkout): %v", name, err)
	}
	return cfg
}

// fbc builds small catalogs for tests, one call per document.
type fbc struct{ cfg declcfg.DeclarativeConfig }

func (c *fbc) pkg(name, defaultChannel string) *fbc {
	c.cfg.Packages = append(c.cfg.Packages, declcfg.Package{Schema: declcfg.SchemaPackage, Name: name, DefaultChannel: defaultChannel})
	return c
}

func (c *fbc) channel(pkg, name string, entries ...declcfg.ChannelEntry) *fbc {
	c.cfg.Channels = append(c.cfg.Channels, declcfg.Channel{Schema: declcfg.SchemaChannel, Package: pkg, Name: name, Entries: entries})
	return c
}

// bundle adds pkg's bundle "<pkg>.v<version>" with an image, a related
// image and the extra properties. Its olm.package value is written with
// spaces on purpose: opm's normalisation would compact it, which shows
// whether anyone wrote through to the catalog.
func (c *fbc) bundle(pkg, version string, extra ...property.Property) *fbc {
	name := bundleName(pkg, version)
	props := []property.Property{{
		Type:  property.TypePackage,
		Value: json.RawMessage(fmt.Sprintf(`{"packageName": %q, "version": %q}`, pkg, version)),
	}}
	c.cfg.Bundles = append(c.cfg.Bundles, declcfg.Bundle{
		Schema: declcfg.SchemaBundle, Package: pkg, Name: name,
		Image:         "registry.example/" + pkg + "/bundle:v" + version,
		Properties:    append(props, extra...),
		RelatedImages: []declcfg.RelatedImage{{Name: "operator", Image: "registry.example/" + pkg + "/operator:v" + version}},
	})
	return c
}

func (c *fbc) deprecation(pkg string, entries ...declcfg.DeprecationEntry) *fbc {
	c.cfg.Deprecations = append(c.cfg.Deprecations, declcfg.Deprecation{Schema: declcfg.SchemaDeprecation, Package: pkg, Entries: entries})
	return c
}

func bundleName(pkg, version string) string { return pkg + ".v" + version }

// ent is a channel entry of pkg's bundle at version, replacing the bundle
// at replaces (if any), with skips and skipRange in opts: "skip:1.0.0",
// "range:>=1.0.0 <2.0.0".
func ent(pkg, version, replaces string, opts ...string) declcfg.ChannelEntry {
	e := declcfg.ChannelEntry{Name: bundleName(pkg, version)}
	if replaces != "" {
		e.Replaces = bundleName(pkg, replaces)
	}
	for _, o := range opts {
		switch {
		case len(o) > 5 && o[:5] == "skip:":
			e.Skips = append(e.Skips, bundleName(pkg, o[5:]))
		case len(o) > 6 && o[:6] == "range:":
			e.SkipRange = o[6:]
		default:
			panic("unknown entry option " + o)
		}
	}
	return e
}

func names(pkg string, versions ...string) []string {
	out := make([]string, len(versions))
	for i, v := range versions {
		out[i] = bundleName(pkg, v)
	}
	return out
}

// mustFilter runs Filter and checks its result on its own, independently of
// Filter's check: the whole catalog through ConvertToModel and Validate.
func mustFilter(t *testing.T, cfg *declcfg.DeclarativeConfig, sel Selection, opts FilterOptions) (*declcfg.DeclarativeConfig, *FilterReport) {
	t.Helper()
	out, report, err := Filter(cfg, sel, opts)
	if err != nil {
		t.Fatalf("Filter: %v", err)
	}
	assertValidFBC(t, out)
	return out, report
}

func assertValidFBC(t testing.TB, cfg *declcfg.DeclarativeConfig) {
	t.Helper()
	// Work on a copy of the property lists: the model normalises values in place.
	view := *cfg
	view.Bundles = slices.Clone(cfg.Bundles)
	for i := range view.Bundles {
		view.Bundles[i].Properties = slices.Clone(view.Bundles[i].Properties)
	}
	m, err := declcfg.ConvertToModel(view)
	if err != nil {
		t.Fatalf("filtered catalog does not convert: %v", err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("filtered catalog does not validate: %v", err)
	}
}

// keptEntries lists the entries of the channel in out, sorted.
func keptEntries(t *testing.T, out *declcfg.DeclarativeConfig, pkg, channel string) []string {
	t.Helper()
	for _, c := range out.Channels {
		if c.Package == pkg && c.Name == channel {
			var got []string
			for _, e := range c.Entries {
				got = append(got, e.Name)
			}
			slices.Sort(got)
			return got
		}
	}
	return nil
}

func keptBundles(out *declcfg.DeclarativeConfig, pkg string) []string {
	var got []string
	for _, b := range out.Bundles {
		if b.Package == pkg {
			got = append(got, b.Name)
		}
	}
	slices.Sort(got)
	return got
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func assertStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func packageReport(t *testing.T, r *FilterReport, pkg string) PackageReport {
	t.Helper()
	for _, p := range r.Packages {
		if p.Name == pkg {
			return p
		}
	}
	t.Fatalf("report has no package %q", pkg)
	return PackageReport{}
}

func channelReport(t *testing.T, p PackageReport, channel string) ChannelReport {
	t.Helper()
	for _, c := range p.Channels {
		if c.Name == channel {
			return c
		}
	}
	t.Fatalf("report of %q has no channel %q", p.Name, channel)
	return ChannelReport{}
}
