package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/pkg/api"
	"google.golang.org/grpc/status"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// These tests hand Filter's output to operator-registry's own opm binary
// (`make opm-bin`, found through FERRY_OPM): what OLM's tooling accepts is
// the judge, not ferry's reading of it.

// fbcLayout is how a filtered catalog is written out for opm.
type fbcLayout int

const (
	oneJSONFile     fbcLayout = iota // catalog.json
	oneYAMLFile                      // catalog.yaml
	packageJSONDirs                  // <package>/catalog.json, as catalog images lay them out
)

// writeFBC writes cfg under a new directory in the given layout and returns
// the directory. It reads the catalog back and checks that every bundle is
// there: an empty directory would pass opm validate and prove nothing.
func writeFBC(t *testing.T, cfg *declcfg.DeclarativeConfig, layout fbcLayout) string {
	t.Helper()
	dir := t.TempDir()
	switch layout {
	case oneJSONFile:
		writeFBCFile(t, filepath.Join(dir, "catalog.json"), cfg, declcfg.WriteJSON)
	case oneYAMLFile:
		writeFBCFile(t, filepath.Join(dir, "catalog.yaml"), cfg, declcfg.WriteYAML)
	case packageJSONDirs:
		// Not declcfg.WriteFS: it leaves out deprecations and other schemas.
		for _, pkg := range cfg.Packages {
			part := packagePart(cfg, pkg.Name)
			if err := os.Mkdir(filepath.Join(dir, pkg.Name), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFBCFile(t, filepath.Join(dir, pkg.Name, "catalog.json"), part, declcfg.WriteJSON)
		}
	}
	back, err := declcfg.LoadFS(t.Context(), os.DirFS(dir))
	if err != nil {
		t.Fatalf("reading the written catalog back: %v", err)
	}
	if got, want := bundleNames(back), bundleNames(cfg); !slices.Equal(got, want) {
		t.Fatalf("written catalog holds bundles %q, want %q", got, want)
	}
	return dir
}

func writeFBCFile(t *testing.T, path string, cfg *declcfg.DeclarativeConfig, write declcfg.WriteFunc) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(*cfg, f); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// packagePart is every document of cfg that belongs to package pkg.
func packagePart(cfg *declcfg.DeclarativeConfig, pkg string) *declcfg.DeclarativeConfig {
	part := &declcfg.DeclarativeConfig{}
	for _, p := range cfg.Packages {
		if p.Name == pkg {
			part.Packages = append(part.Packages, p)
		}
	}
	for _, c := range cfg.Channels {
		if c.Package == pkg {
			part.Channels = append(part.Channels, c)
		}
	}
	for _, b := range cfg.Bundles {
		if b.Package == pkg {
			part.Bundles = append(part.Bundles, b)
		}
	}
	for _, d := range cfg.Deprecations {
		if d.Package == pkg {
			part.Deprecations = append(part.Deprecations, d)
		}
	}
	for _, o := range cfg.Others {
		if o.Package == pkg {
			part.Others = append(part.Others, o)
		}
	}
	return part
}

func bundleNames(cfg *declcfg.DeclarativeConfig) []string {
	var out []string
	for _, b := range cfg.Bundles {
		out = append(out, b.Package+"/"+b.Name)
	}
	return sorted(out)
}

// bothFixtures is the descheduler and Quay catalogs as one catalog.
func bothFixtures(t *testing.T) *declcfg.DeclarativeConfig {
	t.Helper()
	cfg := loadOperatorFixture(t, deschedulerFile)
	cfg.Merge(loadOperatorFixture(t, quayFile))
	return cfg
}

// withDeprecations is twoPackages with deprecations on every level, some of
// which the filter must prune.
func withDeprecations() *declcfg.DeclarativeConfig {
	cfg := twoPackages()
	cfg.Deprecations = []declcfg.Deprecation{{Schema: declcfg.SchemaDeprecation, Package: "alpha", Entries: []declcfg.DeprecationEntry{
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaPackage}, Message: "alpha is going away"},
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaChannel, Name: "fast"}, Message: "use stable"},
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaBundle, Name: "alpha.v1.0.0"}, Message: "old"},
		{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaBundle, Name: "alpha.v1.2.0"}, Message: "old too"},
	}}}
	return cfg
}

func stableRange(pkg, channel, minVersion, maxVersion string) Selection {
	return Selection{Packages: []PackageSelection{{Name: pkg, Channels: []ChannelSelection{{Name: channel, MinVersion: minVersion, MaxVersion: maxVersion}}}}}
}

func TestFilteredCatalogsPassOPMValidate(t *testing.T) {
	testbed.OPM(t) // skip before filtering when opm is not built
	for _, tc := range []struct {
		name   string
		cfg    func(*testing.T) *declcfg.DeclarativeConfig
		sel    Selection
		opts   FilterOptions
		layout fbcLayout
	}{
		{"real catalogs, head of every channel", bothFixtures, Selection{}, FilterOptions{}, packageJSONDirs},
		{"descheduler range kept connected by a head above it", bothFixtures,
			stableRange(descheduler, "stable", "5.0.0", "5.1.2"), FilterOptions{}, oneYAMLFile},
		{"descheduler range of prerelease builds, one without an upgrade path", bothFixtures,
			stableRange(descheduler, "stable", "4.14.0-0", "5.0.2"), FilterOptions{}, oneJSONFile},
		{"quay heads of two channels", bothFixtures,
			Selection{Packages: []PackageSelection{{Name: quay, Channels: []ChannelSelection{{Name: "stable-3.17"}, {Name: "stable-3.16"}}}}}, FilterOptions{}, oneYAMLFile},
		{"quay range whose replaces chain leaves the kept catalog", bothFixtures,
			stableRange(quay, "stable-3.16", "", "3.16.2"), FilterOptions{}, oneJSONFile},
		{"quay package range over several channels, default rewritten", bothFixtures,
			Selection{Packages: []PackageSelection{{Name: quay, MinVersion: "3.14.0", MaxVersion: "3.15.99", DefaultChannel: "stable-3.15"}}}, FilterOptions{}, packageJSONDirs},
		{"both real catalogs in full", bothFixtures, Selection{Full: true}, FilterOptions{}, packageJSONDirs},
		{"range across a skipRange chain", func(*testing.T) *declcfg.DeclarativeConfig { return skipRangeChain() },
			stableRange("chain", "stable", "1.1.0-0", "1.2.0"), FilterOptions{}, oneYAMLFile},
		{"dependency closure across packages", func(*testing.T) *declcfg.DeclarativeConfig { return withDependencies() },
			Selection{Packages: []PackageSelection{{Name: "app"}}}, FilterOptions{}, packageJSONDirs},
		{"dependencies left out", func(*testing.T) *declcfg.DeclarativeConfig { return withDependencies() },
			Selection{Packages: []PackageSelection{{Name: "app"}}}, FilterOptions{SkipDependencies: true}, oneJSONFile},
		{"deprecations pruned with their channel", func(*testing.T) *declcfg.DeclarativeConfig { return withDeprecations() },
			Selection{Packages: []PackageSelection{{Name: "alpha", Channels: []ChannelSelection{{Name: "stable"}}}}}, FilterOptions{}, oneYAMLFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := mustFilter(t, tc.cfg(t), tc.sel, tc.opts)
			testbed.ValidateFBC(t, writeFBC(t, out, tc.layout))
		})
	}
}

// TestOPMValidateRejectsTwoChannelHeads shows that the check above can fail:
// a filtered catalog that is valid but for one edit, a channel entry whose
// replaces edge is dropped so that its channel has two heads (the break
// oc-mirror's users report), is refused by opm for that reason.
func TestOPMValidateRejectsTwoChannelHeads(t *testing.T) {
	testbed.OPM(t)
	out, _ := mustFilter(t, loadOperatorFixture(t, quayFile), stableRange(quay, "stable-3.16", "", "3.16.2"), FilterOptions{})
	if len(out.Channels) != 1 {
		t.Fatalf("want one channel, got %d", len(out.Channels))
	}
	testbed.ValidateFBC(t, writeFBC(t, out, oneJSONFile)) // valid before the edit

	// v3.16.2 replaces v3.16.1; without that edge both are heads. The
	// entries are copied: Filter's output may share them with the fixture.
	ch := &out.Channels[0]
	ch.Entries = slices.Clone(ch.Entries)
	cut := slices.IndexFunc(ch.Entries, func(e declcfg.ChannelEntry) bool { return e.Name == "quay-operator.v3.16.2" })
	if cut < 0 || ch.Entries[cut].Replaces != "quay-operator.v3.16.1" || len(ch.Entries[cut].Skips) != 0 || ch.Entries[cut].SkipRange != "" {
		t.Fatalf("fixture changed: stable-3.16 entries %+v", ch.Entries)
	}
	ch.Entries[cut].Replaces = ""

	err := testbed.OPMValidate(t, writeFBC(t, out, oneJSONFile))
	var rejection *testbed.OPMRejection
	if !errors.As(err, &rejection) {
		t.Fatalf("opm validate accepted a channel with two heads (%v)", err)
	}
	if !strings.Contains(rejection.Output, "multiple channel heads") ||
		!strings.Contains(rejection.Output, "quay-operator.v3.16.1") || !strings.Contains(rejection.Output, "quay-operator.v3.16.2") {
		t.Errorf("opm validate refused the catalog, but not for its two heads:\n%s", rejection.Output)
	}
}

// TestOPMServesFilteredCatalog serves a filtered catalog with the real
// `opm serve` (cache built first, then served with its integrity checked,
// as a stock catalog image runs it) and asks it over OLM's gRPC API what a
// cluster would see: the kept packages and channels only, each channel's
// head as the filter reported it, the bundle image from the catalog, and
// nothing of what was left out.
func TestOPMServesFilteredCatalog(t *testing.T) {
	testbed.OPM(t)
	sel := Selection{Packages: []PackageSelection{
		{Name: descheduler, Channels: []ChannelSelection{{Name: "stable"}}},
		{Name: quay, Channels: []ChannelSelection{{Name: "stable-3.17"}, {Name: "stable-3.16"}}},
	}}
	out, report := mustFilter(t, bothFixtures(t), sel, FilterOptions{})
	srv := testbed.ServeFBC(t, writeFBC(t, out, packageJSONDirs))

	assertStrings(t, "served packages", sorted(srv.Packages(t)), sorted([]string{descheduler, quay}))
	reg := srv.Registry()
	for _, pr := range report.Packages {
		ctx, cancel := srv.CallContext()
		pkg, err := reg.GetPackage(ctx, &api.GetPackageRequest{Name: pr.Name})
		cancel()
		if err != nil {
			t.Fatalf("GetPackage %s: %v", pr.Name, err)
		}
		if pkg.GetDefaultChannelName() != pr.DefaultChannel {
			t.Errorf("%s: served default channel %q, filter kept %q", pr.Name, pkg.GetDefaultChannelName(), pr.DefaultChannel)
		}
		var served, want []string
		for _, c := range pkg.GetChannels() {
			served = append(served, c.GetName()+"@"+c.GetCsvName())
		}
		for _, c := range pr.Channels {
			want = append(want, c.Name+"@"+c.Head)
		}
		assertStrings(t, pr.Name+" channels and heads", sorted(served), sorted(want))
	}

	// The head of quay's default channel, with its image from the catalog.
	head := "quay-operator.v3.17.4"
	i := slices.IndexFunc(out.Bundles, func(b declcfg.Bundle) bool { return b.Name == head })
	if i < 0 {
		t.Fatalf("%s not kept", head)
	}
	ctx, cancel := srv.CallContext()
	defer cancel()
	b, err := reg.GetBundle(ctx, &api.GetBundleRequest{PkgName: quay, ChannelName: "stable-3.17", CsvName: head})
	if err != nil {
		t.Fatalf("GetBundle %s: %v", head, err)
	}
	if b.GetBundlePath() != out.Bundles[i].Image {
		t.Errorf("%s: served image %q, catalog %q", head, b.GetBundlePath(), out.Bundles[i].Image)
	}
	// A bundle the filter left out (the entry v3.17.4 replaces) is not
	// served; opm says so with code Unknown, not NotFound.
	left := "quay-operator.v3.17.3"
	_, err = reg.GetBundle(ctx, &api.GetBundleRequest{PkgName: quay, ChannelName: "stable-3.17", CsvName: left})
	if err == nil || !strings.Contains(status.Convert(err).Message(), strconv.Quote(left)+" not found") {
		t.Errorf("GetBundle of %s, left out: want not found, got %v", left, err)
	}
}
