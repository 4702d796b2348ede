package catalog

import (
	"errors"
	"testing"

	"github.com/blang/semver/v4"
)

const (
	descheduler     = "cluster-kube-descheduler-operator"
	deschedulerFile = "descheduler-v4.18.catalog.json"
	quay            = "project-quay"
	quayFile        = "project-quay-v4.18.catalog.yaml"
)

func deschedulerNames(versions ...string) []string {
	out := make([]string, len(versions))
	for i, v := range versions {
		out[i] = "clusterkubedescheduleroperator." + v
	}
	return sorted(out)
}

func TestFilterDeschedulerHeads(t *testing.T) {
	cfg := loadOperatorFixture(t, deschedulerFile)
	out, report := mustFilter(t, cfg, Selection{Packages: []PackageSelection{{Name: descheduler}}}, FilterOptions{})
	assertStrings(t, "4.13", keptEntries(t, out, descheduler, "4.13"), deschedulerNames("4.13.0-202309181427"))
	assertStrings(t, "stable", keptEntries(t, out, descheduler, "stable"), deschedulerNames("v5.1.4"))
	assertStrings(t, "bundles", keptBundles(out, descheduler), deschedulerNames("4.13.0-202309181427", "v5.1.4"))
	if p := packageReport(t, report, descheduler); p.DefaultChannel != "stable" || p.DefaultChannelRewrittenFrom != "" {
		t.Errorf("report %+v", p)
	}
	if out.Packages[0].Icon == nil {
		t.Error("package icon dropped")
	}
	// Two bundles, each with its bundle image and related images.
	if n := len(BundleImages(out)); n < 2 || n > 2*(1+4) {
		t.Errorf("%d images", n)
	}
}

func TestFilterDeschedulerRange(t *testing.T) {
	cfg := loadOperatorFixture(t, deschedulerFile)
	stable := func(min, max string) Selection {
		return Selection{Packages: []PackageSelection{{Name: descheduler, Channels: []ChannelSelection{{Name: "stable", MinVersion: min, MaxVersion: max}}}}}
	}

	// Every 5.0/5.1 bundle up to 5.1.2 is joined to the others only by
	// v5.1.4's skips: it is kept, above the range, as the head.
	out, report := mustFilter(t, cfg, stable("5.0.0", "5.1.2"), FilterOptions{})
	assertStrings(t, "stable 5.0.0..5.1.2", keptEntries(t, out, descheduler, "stable"),
		deschedulerNames("v5.0.1", "v5.0.2", "v5.0.3", "v5.1.0", "v5.1.1", "v5.1.2", "v5.1.4"))
	p := packageReport(t, report, descheduler)
	cr := channelReport(t, p, "stable")
	assertStrings(t, "connectivity", cr.KeptForConnectivity, deschedulerNames("v5.1.4"))
	if cr.Head != "clusterkubedescheduleroperator.v5.1.4" || cr.NoUpgradePath != nil {
		t.Errorf("report %+v", cr)
	}
	if len(out.Channels) != 1 || p.DefaultChannel != "stable" {
		t.Errorf("channels %d, default %q", len(out.Channels), p.DefaultChannel)
	}

	// Prerelease-style builds: 4.14.0 as the minimum leaves out
	// 4.14.0-202310201027 (a prerelease of 4.14.0); 4.14.0-0 takes it in.
	out, _ = mustFilter(t, cfg, stable("4.14.0", "5.0.2"), FilterOptions{})
	assertStrings(t, "stable 4.14.0..5.0.2", keptEntries(t, out, descheduler, "stable"), deschedulerNames("v5.0.1", "v5.0.2", "v5.1.4"))
	out, report = mustFilter(t, cfg, stable("4.14.0-0", "5.0.2"), FilterOptions{})
	assertStrings(t, "stable 4.14.0-0..5.0.2", keptEntries(t, out, descheduler, "stable"),
		deschedulerNames("4.14.0-202310201027", "4.14.0-202311021650", "v5.0.1", "v5.0.2", "v5.1.4"))
	// OLM offers nothing from 4.14.0-202310201027: the only candidate,
	// v5.1.4, neither skips it nor holds it in its skipRange. Nor does the
	// unfiltered catalog: the filter keeps OLM's view.
	cr = channelReport(t, packageReport(t, report, descheduler), "stable")
	assertStrings(t, "no upgrade path", cr.NoUpgradePath, deschedulerNames("4.14.0-202310201027"))
	got, err := ReachableUpgrade(cfg, descheduler, "stable", "clusterkubedescheduleroperator.4.14.0-202310201027")
	if err != nil || len(got) != 0 {
		t.Errorf("unfiltered catalog offers %d upgrades (%v)", len(got), err)
	}
}

func TestReachableUpgradeDescheduler(t *testing.T) {
	cfg := loadOperatorFixture(t, deschedulerFile)
	for _, tc := range []struct {
		channel, installed string
		want               []string
	}{
		{"stable", "clusterkubedescheduleroperator.v5.0.1", deschedulerNames("v5.1.4")},
		{"stable", "clusterkubedescheduleroperator.4.14.0-202311021650", deschedulerNames("v5.1.4")},
		{"stable", "clusterkubedescheduleroperator.v5.1.4", nil},
		// 4.13's only entry skips and skipRanges from 4.10 up.
		{"4.13", "clusterkubedescheduleroperator.4.13.0-202309181427", nil},
	} {
		got, err := ReachableUpgrade(cfg, descheduler, tc.channel, tc.installed)
		if err != nil {
			t.Fatalf("%s: %v", tc.installed, err)
		}
		var gotNames []string
		for _, b := range got {
			gotNames = append(gotNames, b.Name)
		}
		assertStrings(t, tc.installed, sorted(gotNames), tc.want)
	}

	// An installed 4.12 build the catalog no longer lists: the 4.13 head's
	// skipRange >=4.10.0 <4.13.0-202309181427 holds its version.
	_, err := ReachableUpgrade(cfg, descheduler, "4.13", "clusterkubedescheduleroperator.4.12.0-202301010000")
	if !errors.Is(err, ErrInstalledNotInCatalog) {
		t.Fatalf("installed bundle not in catalog: %v", err)
	}
	got, err := ReachableUpgradeFrom(cfg, descheduler, "4.13", "clusterkubedescheduleroperator.4.12.0-202301010000", semver.MustParse("4.12.0-202301010000"))
	if err != nil || len(got) != 1 || got[0].Name != "clusterkubedescheduleroperator.4.13.0-202309181427" {
		t.Errorf("from 4.12: %v %v", got, err)
	}
}

func TestFilterQuayHeadsOfTwoChannels(t *testing.T) {
	cfg := loadOperatorFixture(t, quayFile)
	sel := Selection{Packages: []PackageSelection{{Name: quay, Channels: []ChannelSelection{{Name: "stable-3.17"}, {Name: "stable-3.16"}}}}}
	out, report := mustFilter(t, cfg, sel, FilterOptions{})
	assertStrings(t, "stable-3.17", keptEntries(t, out, quay, "stable-3.17"), []string{"quay-operator.v3.17.4"})
	assertStrings(t, "stable-3.16", keptEntries(t, out, quay, "stable-3.16"), []string{"quay-operator.v3.16.5"})
	assertStrings(t, "bundles", keptBundles(out, quay), []string{"quay-operator.v3.16.5", "quay-operator.v3.17.4"})
	if p := packageReport(t, report, quay); p.DefaultChannel != "stable-3.17" || len(p.Channels) != 2 {
		t.Errorf("report %+v", p)
	}

	// Without the default channel and no defaultChannel: the user chooses.
	sel.Packages[0].Channels = []ChannelSelection{{Name: "stable-3.15"}, {Name: "stable-3.16"}}
	_, _, err := Filter(cfg, sel, FilterOptions{})
	var dce *DefaultChannelError
	if !errors.As(err, &dce) || dce.Package != quay || dce.Dropped != "stable-3.17" {
		t.Fatalf("want a DefaultChannelError naming %s: %v", quay, err)
	}
}

func TestFilterQuayRangeWhoseChainContinuesAcrossChannels(t *testing.T) {
	cfg := loadOperatorFixture(t, quayFile)
	// stable-3.16 starts at v3.16.0, which replaces v3.15.2 of another channel.
	sel := Selection{Packages: []PackageSelection{{Name: quay, Channels: []ChannelSelection{{Name: "stable-3.16", MaxVersion: "3.16.2"}}}}}
	out, report := mustFilter(t, cfg, sel, FilterOptions{})
	assertStrings(t, "stable-3.16", keptEntries(t, out, quay, "stable-3.16"), []string{"quay-operator.v3.16.0", "quay-operator.v3.16.1", "quay-operator.v3.16.2"})
	cr := channelReport(t, packageReport(t, report, quay), "stable-3.16")
	if cr.Head != "quay-operator.v3.16.2" || cr.KeptForConnectivity != nil || cr.NoUpgradePath != nil {
		t.Errorf("report %+v", cr)
	}
	// The entries carry no skipRange (only the CSV annotations do, which
	// OLM does not read): v3.16.1 reaches v3.16.2 by replaces alone.
	got, err := ReachableUpgrade(out, quay, "stable-3.16", "quay-operator.v3.16.0")
	if err != nil || len(got) != 2 || got[0].Name != "quay-operator.v3.16.2" {
		t.Errorf("reachable from v3.16.0: %v %v", got, err)
	}
}

func TestFilterRealCatalogsFull(t *testing.T) {
	for _, file := range []string{deschedulerFile, quayFile} {
		cfg := loadOperatorFixture(t, file)
		out, _ := mustFilter(t, cfg, Selection{Full: true}, FilterOptions{})
		if len(out.Bundles) != len(cfg.Bundles) {
			t.Errorf("%s: full kept %d of %d bundles", file, len(out.Bundles), len(cfg.Bundles))
		}
	}
}
