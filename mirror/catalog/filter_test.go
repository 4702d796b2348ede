package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// twoPackages: alpha has stable (1.0.0 <- 1.1.0 <- 1.2.0) and fast
// (1.2.0 <- 2.0.0); beta has one channel.
func twoPackages() *declcfg.DeclarativeConfig {
	c := &fbc{}
	c.pkg("alpha", "stable").pkg("beta", "stable")
	c.channel("alpha", "stable", ent("alpha", "1.0.0", ""), ent("alpha", "1.1.0", "1.0.0"), ent("alpha", "1.2.0", "1.1.0"))
	c.channel("alpha", "fast", ent("alpha", "1.2.0", ""), ent("alpha", "2.0.0", "1.2.0"))
	c.channel("beta", "stable", ent("beta", "0.1.0", ""), ent("beta", "0.2.0", "0.1.0"))
	c.bundle("alpha", "1.0.0").bundle("alpha", "1.1.0").bundle("alpha", "1.2.0").bundle("alpha", "2.0.0")
	c.bundle("beta", "0.1.0").bundle("beta", "0.2.0")
	return &c.cfg
}

func TestFilterHeadsOnlyByDefault(t *testing.T) {
	out, report := mustFilter(t, twoPackages(), Selection{}, FilterOptions{})
	assertStrings(t, "alpha stable", keptEntries(t, out, "alpha", "stable"), names("alpha", "1.2.0"))
	assertStrings(t, "alpha fast", keptEntries(t, out, "alpha", "fast"), names("alpha", "2.0.0"))
	assertStrings(t, "beta stable", keptEntries(t, out, "beta", "stable"), names("beta", "0.2.0"))
	assertStrings(t, "alpha bundles", keptBundles(out, "alpha"), names("alpha", "1.2.0", "2.0.0"))
	alpha := packageReport(t, report, "alpha")
	if alpha.DefaultChannel != "stable" || alpha.DefaultChannelRewrittenFrom != "" || !alpha.Selected {
		t.Errorf("alpha report: %+v", alpha)
	}
	assertStrings(t, "alpha report bundles", alpha.Bundles, names("alpha", "2.0.0", "1.2.0"))
	if h := channelReport(t, alpha, "fast").Head; h != bundleName("alpha", "2.0.0") {
		t.Errorf("fast head %q", h)
	}
}

func TestFilterPackageWithoutChannelsKeepsEveryHead(t *testing.T) {
	out, _ := mustFilter(t, twoPackages(), Selection{Packages: []PackageSelection{{Name: "alpha"}}}, FilterOptions{})
	assertStrings(t, "alpha bundles", keptBundles(out, "alpha"), names("alpha", "1.2.0", "2.0.0"))
	if len(out.Packages) != 1 || keptBundles(out, "beta") != nil {
		t.Errorf("beta kept: %+v", out.Packages)
	}
}

func TestFilterFull(t *testing.T) {
	cfg := twoPackages()
	out, _ := mustFilter(t, cfg, Selection{Full: true}, FilterOptions{})
	if len(out.Bundles) != len(cfg.Bundles) || len(out.Channels) != len(cfg.Channels) {
		t.Errorf("full kept %d bundles, %d channels", len(out.Bundles), len(out.Channels))
	}
	out, _ = mustFilter(t, cfg, Selection{Full: true, Packages: []PackageSelection{{Name: "beta"}}}, FilterOptions{})
	assertStrings(t, "beta", keptBundles(out, "beta"), names("beta", "0.1.0", "0.2.0"))
	if keptBundles(out, "alpha") != nil {
		t.Error("full with packages kept alpha")
	}
}

// skipRangeChain: each release replaces the one before and its skipRange
// spans from 1.0.0, prerelease builds included.
func skipRangeChain() *declcfg.DeclarativeConfig {
	c := &fbc{}
	c.pkg("chain", "stable")
	c.channel("chain", "stable",
		ent("chain", "1.0.0", ""),
		ent("chain", "1.1.0-202301", "1.0.0", "range:>=1.0.0 <1.1.0-202301"),
		ent("chain", "1.1.0", "1.1.0-202301", "range:>=1.0.0 <1.1.0"),
		ent("chain", "1.2.0", "1.1.0", "range:>=1.0.0 <1.2.0"),
		ent("chain", "2.0.0", "1.2.0", "range:>=1.2.0 <2.0.0"),
	)
	for _, v := range []string{"1.0.0", "1.1.0-202301", "1.1.0", "1.2.0", "2.0.0"} {
		c.bundle("chain", v)
	}
	return &c.cfg
}

func TestFilterRangeAcrossSkipRangeChain(t *testing.T) {
	for _, tc := range []struct {
		min, max string
		want     []string
		head     string
	}{
		// The upper bound cuts the chain: the head is the highest kept.
		{"1.1.0-0", "1.2.0", names("chain", "1.1.0-202301", "1.1.0", "1.2.0"), "1.2.0"},
		// 1.1.0 as the minimum leaves out its own prerelease build.
		{"1.1.0", "", names("chain", "1.1.0", "1.2.0", "2.0.0"), "2.0.0"},
		{"", "1.0.0", names("chain", "1.0.0"), "1.0.0"},
	} {
		sel := Selection{Packages: []PackageSelection{{Name: "chain", Channels: []ChannelSelection{{Name: "stable", MinVersion: tc.min, MaxVersion: tc.max}}}}}
		out, report := mustFilter(t, skipRangeChain(), sel, FilterOptions{})
		assertStrings(t, tc.min+".."+tc.max, keptEntries(t, out, "chain", "stable"), sorted(tc.want))
		cr := channelReport(t, packageReport(t, report, "chain"), "stable")
		if cr.Head != bundleName("chain", tc.head) || cr.KeptForConnectivity != nil || cr.NoUpgradePath != nil {
			t.Errorf("%s..%s: report %+v", tc.min, tc.max, cr)
		}
	}
}

// skipsFan: 2.0.0 replaces 1.0.0 and skips 1.1.0 and 1.2.0, which each
// replace 1.0.0; only 2.0.0 joins them.
func skipsFan() *declcfg.DeclarativeConfig {
	c := &fbc{}
	c.pkg("fan", "stable")
	c.channel("fan", "stable",
		ent("fan", "1.0.0", ""),
		ent("fan", "1.1.0", "1.0.0"),
		ent("fan", "1.2.0", "1.0.0"),
		ent("fan", "2.0.0", "1.0.0", "skip:1.1.0", "skip:1.2.0"),
	)
	c.bundle("fan", "1.0.0").bundle("fan", "1.1.0").bundle("fan", "1.2.0").bundle("fan", "2.0.0")
	return &c.cfg
}

func TestFilterSkipsKeepHeadForConnectivity(t *testing.T) {
	sel := Selection{Packages: []PackageSelection{{Name: "fan", MinVersion: "1.1.0", MaxVersion: "1.2.0"}}}
	out, report := mustFilter(t, skipsFan(), sel, FilterOptions{})
	assertStrings(t, "kept", keptEntries(t, out, "fan", "stable"), names("fan", "1.1.0", "1.2.0", "2.0.0"))
	cr := channelReport(t, packageReport(t, report, "fan"), "stable")
	assertStrings(t, "connectivity", cr.KeptForConnectivity, names("fan", "2.0.0"))
	if cr.Head != bundleName("fan", "2.0.0") || cr.VersionRange != "[1.1.0, 1.2.0]" {
		t.Errorf("report %+v", cr)
	}
	// 1.0.0 and 1.1.0: 1.1.0 replaces 1.0.0, so 1.1.0 heads them alone.
	sel = Selection{Packages: []PackageSelection{{Name: "fan", MaxVersion: "1.1.0"}}}
	out, _ = mustFilter(t, skipsFan(), sel, FilterOptions{})
	assertStrings(t, "kept", keptEntries(t, out, "fan", "stable"), names("fan", "1.0.0", "1.1.0"))
}

func TestFilterKeepsBundleBetweenForConnectivity(t *testing.T) {
	// A renumbered release: 3.0.0 sits between 1.0.0 and 2.0.0 in the graph.
	c := &fbc{}
	c.pkg("renum", "stable")
	c.channel("renum", "stable", ent("renum", "1.0.0", ""), ent("renum", "3.0.0", "1.0.0"), ent("renum", "2.0.0", "3.0.0"))
	c.bundle("renum", "1.0.0").bundle("renum", "3.0.0").bundle("renum", "2.0.0")
	sel := Selection{Packages: []PackageSelection{{Name: "renum", MaxVersion: "2.0.0"}}}
	out, report := mustFilter(t, &c.cfg, sel, FilterOptions{})
	assertStrings(t, "kept", keptEntries(t, out, "renum", "stable"), names("renum", "1.0.0", "2.0.0", "3.0.0"))
	cr := channelReport(t, packageReport(t, report, "renum"), "stable")
	assertStrings(t, "connectivity", cr.KeptForConnectivity, names("renum", "3.0.0"))
	if cr.Head != bundleName("renum", "2.0.0") {
		t.Errorf("head %q", cr.Head)
	}
}

// channels3: stable (default), fast and candidate, each one bundle.
func channels3() *declcfg.DeclarativeConfig {
	c := &fbc{}
	c.pkg("multi", "stable")
	c.channel("multi", "stable", ent("multi", "1.0.0", ""))
	c.channel("multi", "fast", ent("multi", "1.0.0", ""), ent("multi", "1.1.0", "1.0.0"))
	c.channel("multi", "candidate", ent("multi", "1.1.0", ""), ent("multi", "2.0.0-rc.1", "1.1.0"))
	c.bundle("multi", "1.0.0").bundle("multi", "1.1.0").bundle("multi", "2.0.0-rc.1")
	return &c.cfg
}

func TestFilterDefaultChannel(t *testing.T) {
	one := Selection{Packages: []PackageSelection{{Name: "multi", Channels: []ChannelSelection{{Name: "fast"}}}}}
	out, report := mustFilter(t, channels3(), one, FilterOptions{})
	p := packageReport(t, report, "multi")
	if out.Packages[0].DefaultChannel != "fast" || p.DefaultChannel != "fast" || p.DefaultChannelRewrittenFrom != "stable" {
		t.Errorf("one channel kept: package %+v, report %+v", out.Packages[0], p)
	}

	two := Selection{Packages: []PackageSelection{{Name: "multi", Channels: []ChannelSelection{{Name: "fast"}, {Name: "candidate"}}}}}
	_, _, err := Filter(channels3(), two, FilterOptions{})
	var dce *DefaultChannelError
	if !errors.As(err, &dce) || dce.Package != "multi" || dce.Dropped != "stable" || strings.Join(dce.Candidates, ",") != "fast,candidate" {
		t.Fatalf("two channels, no default: %v", err)
	}
	if !strings.Contains(err.Error(), `package "multi"`) {
		t.Errorf("error does not name the package: %v", err)
	}

	two.Packages[0].DefaultChannel = "candidate"
	out, report = mustFilter(t, channels3(), two, FilterOptions{})
	if out.Packages[0].DefaultChannel != "candidate" || packageReport(t, report, "multi").DefaultChannelRewrittenFrom != "stable" {
		t.Errorf("chosen default: %+v", out.Packages[0])
	}

	// The catalog's default kept: nothing rewritten.
	keep := Selection{Packages: []PackageSelection{{Name: "multi", Channels: []ChannelSelection{{Name: "stable"}, {Name: "fast"}}}}}
	_, report = mustFilter(t, channels3(), keep, FilterOptions{})
	if p := packageReport(t, report, "multi"); p.DefaultChannel != "stable" || p.DefaultChannelRewrittenFrom != "" {
		t.Errorf("default kept: %+v", p)
	}

	// A package range that empties the default channel.
	ranged := Selection{Packages: []PackageSelection{{Name: "multi", MinVersion: "2.0.0-0"}}}
	_, report = mustFilter(t, channels3(), ranged, FilterOptions{})
	p = packageReport(t, report, "multi")
	if p.DefaultChannel != "candidate" || strings.Join(p.ChannelsOutOfRange, ",") != "stable,fast" {
		t.Errorf("range: %+v", p)
	}
}

func TestFilterSelectionErrorsNameWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		sel  Selection
		want string
	}{
		{Selection{Packages: []PackageSelection{{Name: "nope"}}}, `package "nope": not in the catalog`},
		{Selection{Packages: []PackageSelection{{Name: "multi", Channels: []ChannelSelection{{Name: "beta"}}}}}, `package "multi" channel "beta": not in the catalog`},
		{Selection{Packages: []PackageSelection{{Name: "multi", Channels: []ChannelSelection{{Name: "stable", MinVersion: "5.0.0"}}}}}, `channel "stable": no bundle in >= 5.0.0`},
		{Selection{Packages: []PackageSelection{{Name: "multi", MinVersion: "5.0.0"}}}, `package "multi": no channel holds a bundle in >= 5.0.0`},
		{Selection{Packages: []PackageSelection{{Name: "multi", MinVersion: "2", MaxVersion: "1.0.0"}}}, `minVersion "2" is not a semantic version`},
	} {
		_, _, err := Filter(channels3(), tc.sel, FilterOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.sel, err, tc.want)
		}
	}
}

// withDependencies: app requires db in [2.0.0, 3.0.0) and the Widget API;
// widgets provides it and requires base.
func withDependencies() *declcfg.DeclarativeConfig {
	c := &fbc{}
	c.pkg("app", "stable").pkg("db", "stable").pkg("widgets", "stable").pkg("base", "stable").pkg("unrelated", "stable")
	c.channel("app", "stable", ent("app", "1.0.0", ""))
	c.channel("db", "stable", ent("db", "1.0.0", ""), ent("db", "1.5.0", "1.0.0"))
	c.channel("db", "v2", ent("db", "2.0.0", ""), ent("db", "2.1.0", "2.0.0"), ent("db", "3.0.0", "2.1.0"))
	c.channel("widgets", "stable", ent("widgets", "0.1.0", ""), ent("widgets", "0.2.0", "0.1.0"))
	c.channel("base", "stable", ent("base", "1.0.0", ""))
	c.channel("unrelated", "stable", ent("unrelated", "1.0.0", ""))
	c.bundle("app", "1.0.0",
		property.MustBuildPackageRequired("db", ">=2.0.0 <3.0.0"),
		property.MustBuildGVKRequired("example.com", "v1", "Widget"),
		property.MustBuildPackageRequired("ghost", ">=1.0.0"))
	c.bundle("db", "1.0.0").bundle("db", "1.5.0").bundle("db", "2.0.0").bundle("db", "2.1.0").bundle("db", "3.0.0")
	c.bundle("widgets", "0.1.0", property.MustBuildGVK("example.com", "v1", "Widget"))
	c.bundle("widgets", "0.2.0", property.MustBuildGVK("example.com", "v1", "Widget"), property.MustBuildPackageRequired("base", ">=0.0.0"))
	c.bundle("base", "1.0.0")
	c.bundle("unrelated", "1.0.0")
	return &c.cfg
}

func TestFilterDependencyClosure(t *testing.T) {
	sel := Selection{Packages: []PackageSelection{{Name: "app"}}}
	out, report := mustFilter(t, withDependencies(), sel, FilterOptions{})

	// db: neither head of stable (1.5.0) nor of v2 (3.0.0) is in range; the
	// first OLM offers in v2, head first, is 2.1.0.
	assertStrings(t, "db", keptBundles(out, "db"), names("db", "2.1.0"))
	assertStrings(t, "widgets", keptBundles(out, "widgets"), names("widgets", "0.2.0"))
	assertStrings(t, "base (required by widgets)", keptBundles(out, "base"), names("base", "1.0.0"))
	if keptBundles(out, "unrelated") != nil {
		t.Error("unrelated package kept")
	}

	db := packageReport(t, report, "db")
	want := DependencyAdded{Bundle: "db.v2.1.0", Channel: "v2", RequiredBy: "app/app.v1.0.0", Requirement: "olm.package.required db >=2.0.0 <3.0.0"}
	if db.Selected || len(db.DependenciesAdded) != 1 || db.DependenciesAdded[0] != want {
		t.Errorf("db report: %+v", db)
	}
	if db.DefaultChannel != "v2" || db.DefaultChannelRewrittenFrom != "stable" {
		t.Errorf("db default channel: %+v", db)
	}
	w := packageReport(t, report, "widgets")
	if len(w.DependenciesAdded) != 1 || w.DependenciesAdded[0].Requirement != "olm.gvk.required example.com/v1 Widget" {
		t.Errorf("widgets report: %+v", w)
	}
	b := packageReport(t, report, "base")
	if len(b.DependenciesAdded) != 1 || b.DependenciesAdded[0].RequiredBy != "widgets/widgets.v0.2.0" {
		t.Errorf("base report: %+v", b)
	}
	app := packageReport(t, report, "app")
	if len(app.DependenciesUnresolved) != 1 || !strings.Contains(app.DependenciesUnresolved[0].Reason, `package "ghost" is not in the catalog`) {
		t.Errorf("app unresolved: %+v", app.DependenciesUnresolved)
	}

	out, report = mustFilter(t, withDependencies(), sel, FilterOptions{SkipDependencies: true})
	if len(out.Packages) != 1 || len(report.Packages) != 1 {
		t.Errorf("SkipDependencies kept %d packages", len(out.Packages))
	}
}

func TestFilterDependencyMetByKeptBundleAddsNothing(t *testing.T) {
	sel := Selection{Packages: []PackageSelection{{Name: "app"}, {Name: "db", Channels: []ChannelSelection{{Name: "v2", MaxVersion: "2.0.0"}}, DefaultChannel: "v2"}}}
	out, report := mustFilter(t, withDependencies(), sel, FilterOptions{})
	assertStrings(t, "db", keptBundles(out, "db"), names("db", "2.0.0"))
	if db := packageReport(t, report, "db"); db.DependenciesAdded != nil {
		t.Errorf("db added %+v", db.DependenciesAdded)
	}
}

func TestFilterDependencyJoinsKeptChannel(t *testing.T) {
	// The user keeps db's v2 channel at 2.0.0; app needs [2.0.0, 3.0.0) and
	// OLM's first pick is 2.1.0, which joins the kept channel as its head.
	cfg := withDependencies()
	cfg.Bundles[0].Properties[1] = property.MustBuildPackageRequired("db", ">=2.1.0 <3.0.0")
	sel := Selection{Packages: []PackageSelection{{Name: "app"}, {Name: "db", DefaultChannel: "v2", Channels: []ChannelSelection{{Name: "v2", MaxVersion: "2.0.0"}}}}}
	out, report := mustFilter(t, cfg, sel, FilterOptions{})
	assertStrings(t, "db v2", keptEntries(t, out, "db", "v2"), names("db", "2.0.0", "2.1.0"))
	db := packageReport(t, report, "db")
	cr := channelReport(t, db, "v2")
	if cr.Head != "db.v2.1.0" || cr.KeptForConnectivity != nil || len(db.DependenciesAdded) != 1 || db.DependenciesAdded[0].Bundle != "db.v2.1.0" {
		t.Errorf("db report %+v", db)
	}
}

func TestFilterFollowsSimpleConstraints(t *testing.T) {
	cfg := withDependencies()
	cfg.Packages = append(cfg.Packages, declcfg.Package{Schema: declcfg.SchemaPackage, Name: "tool", DefaultChannel: "stable"})
	cfg.Channels = append(cfg.Channels, declcfg.Channel{Schema: declcfg.SchemaChannel, Package: "tool", Name: "stable", Entries: []declcfg.ChannelEntry{{Name: "tool.v1.0.0"}}})
	c := &fbc{cfg: *cfg}
	c.bundle("tool", "1.0.0",
		property.Property{Type: property.TypeConstraint, Value: []byte(`{"failureMessage":"needs db 2.0","package":{"packageName":"db","versionRange":">=2.0.0 <2.1.0"}}`)},
		property.Property{Type: property.TypeConstraint, Value: []byte(`{"failureMessage":"needs both","all":{"constraints":[{"gvk":{"group":"a","version":"v1","kind":"A"}}]}}`)})
	out, report := mustFilter(t, &c.cfg, Selection{Packages: []PackageSelection{{Name: "tool"}}}, FilterOptions{})
	// In v2, head first: 3.0.0 and 2.1.0 are out of the range, 2.0.0 is in.
	assertStrings(t, "db", keptBundles(out, "db"), names("db", "2.0.0"))
	tool := packageReport(t, report, "tool")
	want := DependencyUnresolved{Bundle: "tool.v1.0.0", Requirement: "olm.constraint needs both", Reason: errConstraintNotFollowed.Error()}
	if len(tool.DependenciesUnresolved) != 1 || tool.DependenciesUnresolved[0] != want {
		t.Errorf("unresolved %+v", tool.DependenciesUnresolved)
	}
	if db := packageReport(t, report, "db"); len(db.DependenciesAdded) != 1 || db.DependenciesAdded[0].Requirement != "olm.constraint db >=2.0.0 <2.1.0" {
		t.Errorf("db added %+v", db.DependenciesAdded)
	}
}

func TestFilterPrunesDeprecations(t *testing.T) {
	cfg := twoPackages()
	cfg.Deprecations = append(cfg.Deprecations, declcfg.Deprecation{Schema: declcfg.SchemaDeprecation, Package: "alpha", Entries: []declcfg.DeprecationEntry{
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaPackage}, Message: "alpha is going away"},
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaChannel, Name: "stable"}, Message: "use fast"},
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaChannel, Name: "fast"}, Message: "fast too"},
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaBundle, Name: "alpha.v1.0.0"}, Message: "old"},
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaBundle, Name: "alpha.v1.2.0"}, Message: "old too"},
	}}, declcfg.Deprecation{Schema: declcfg.SchemaDeprecation, Package: "beta", Entries: []declcfg.DeprecationEntry{
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaBundle, Name: "beta.v0.1.0"}, Message: "old"},
	}})
	sel := Selection{Packages: []PackageSelection{{Name: "alpha", Channels: []ChannelSelection{{Name: "stable"}}}, {Name: "beta"}}}
	out, _ := mustFilter(t, cfg, sel, FilterOptions{})
	if len(out.Deprecations) != 1 || out.Deprecations[0].Package != "alpha" {
		t.Fatalf("deprecations: %+v", out.Deprecations)
	}
	var got []string
	for _, e := range out.Deprecations[0].Entries {
		got = append(got, e.Reference.Schema+":"+e.Reference.Name)
	}
	assertStrings(t, "alpha deprecations", got, []string{"olm.package:", "olm.channel:stable", "olm.bundle:alpha.v1.2.0"})
}

func TestFilterSharesBundlesAndLeavesCatalogAlone(t *testing.T) {
	cfg := twoPackages()
	snapshot := func() string {
		var b strings.Builder
		if err := declcfg.WriteJSON(*cfg, &b); err != nil {
			t.Fatal(err)
		}
		// WriteJSON compacts property values; their raw bytes are compared too.
		for _, bundle := range cfg.Bundles {
			for _, p := range bundle.Properties {
				b.Write(p.Value)
			}
		}
		return b.String()
	}
	before := snapshot()
	out, _ := mustFilter(t, cfg, Selection{}, FilterOptions{})
	if snapshot() != before {
		t.Error("Filter changed the catalog it was given")
	}
	for _, ob := range out.Bundles {
		for i := range cfg.Bundles {
			if cfg.Bundles[i].Name == ob.Name && &cfg.Bundles[i].Properties[0] != &ob.Properties[0] {
				t.Errorf("bundle %s: properties copied", ob.Name)
			}
		}
	}
}

func TestFilterKeepsOtherSchemasOfKeptPackages(t *testing.T) {
	cfg := twoPackages()
	cfg.Others = []declcfg.Meta{
		{Schema: "example.note", Package: "alpha", Blob: []byte(`{"schema":"example.note","package":"alpha"}`)},
		{Schema: "example.note", Package: "beta", Blob: []byte(`{"schema":"example.note","package":"beta"}`)},
		{Schema: "example.global", Blob: []byte(`{"schema":"example.global"}`)},
	}
	out, _ := mustFilter(t, cfg, Selection{Packages: []PackageSelection{{Name: "alpha"}}}, FilterOptions{})
	var got []string
	for _, m := range out.Others {
		got = append(got, m.Schema+"/"+m.Package)
	}
	assertStrings(t, "others", got, []string{"example.note/alpha", "example.global/"})
}

func TestBundleImages(t *testing.T) {
	cfg := twoPackages()
	// alpha 2.0.0 reuses 1.2.0's operator image; beta's bundle image is also
	// a related image of its own.
	cfg.Bundles[3].RelatedImages = append(cfg.Bundles[3].RelatedImages, declcfg.RelatedImage{Name: "previous", Image: "registry.example/alpha/operator:v1.2.0"}, declcfg.RelatedImage{Name: "empty"})
	cfg.Bundles[5].RelatedImages = append(cfg.Bundles[5].RelatedImages, declcfg.RelatedImage{Image: cfg.Bundles[5].Image})
	out, _ := mustFilter(t, cfg, Selection{}, FilterOptions{})
	images := BundleImages(out)
	var got []string
	for _, im := range images {
		got = append(got, im.Image)
	}
	assertStrings(t, "images", got, []string{
		"registry.example/alpha/bundle:v1.2.0", "registry.example/alpha/bundle:v2.0.0",
		"registry.example/alpha/operator:v1.2.0", "registry.example/alpha/operator:v2.0.0",
		"registry.example/beta/bundle:v0.2.0", "registry.example/beta/operator:v0.2.0",
	})
	op := images[2].Sources
	if len(op) != 2 || op[0] != (ImageSource{Package: "alpha", Bundle: "alpha.v1.2.0", RelatedImage: "operator"}) ||
		op[1] != (ImageSource{Package: "alpha", Bundle: "alpha.v2.0.0", RelatedImage: "previous"}) {
		t.Errorf("operator:v1.2.0 sources %+v", op)
	}
	if b := images[4].Sources; len(b) != 2 || !b[0].BundleImage || b[1].BundleImage {
		t.Errorf("beta bundle sources %+v", b)
	}
}

func TestFilterAllocatesForKeptBundlesOnly(t *testing.T) {
	// A chain of 256 bundles, each with a 256 KiB olm.bundle.object: 64 MiB
	// of blobs (one blob shared, so the test itself stays small). Keeping
	// the head must cost in proportion to the head, not to the catalog.
	const bundles, blobSize = 256, 256 << 10
	blob := property.MustBuildBundleObject(bytes.Repeat([]byte("k"), blobSize*3/4))
	c := &fbc{}
	c.pkg("big", "stable")
	var entries []declcfg.ChannelEntry
	for i := 0; i < bundles; i++ {
		v, prev := fmt.Sprintf("1.%d.0", i), ""
		if i > 0 {
			prev = fmt.Sprintf("1.%d.0", i-1)
		}
		entries = append(entries, ent("big", v, prev))
		c.bundle("big", v, blob)
	}
	c.channel("big", "stable", entries...)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, _, err := Filter(&c.cfg, Selection{}, FilterOptions{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Bundles) != 1 {
		t.Fatalf("kept %d bundles", len(out.Bundles))
	}
	// The model's validation decodes and re-encodes the kept bundle's blob
	// a few times (about 4x without the race detector, 8x with it); the
	// other 255 blobs are not touched.
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(16*blobSize); got > limit {
		t.Errorf("Filter allocated %d bytes keeping one bundle of a %d-byte blob, limit %d (the catalog holds %d)", got, blobSize, limit, bundles*blobSize)
	}
}
