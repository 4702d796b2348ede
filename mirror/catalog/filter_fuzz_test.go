package catalog

import (
	"fmt"
	"slices"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// fuzzInput turns fuzz bytes into small choices; past the end it answers 0.
type fuzzInput struct{ b []byte }

func (r *fuzzInput) pick(n int) int {
	if len(r.b) == 0 || n <= 1 {
		return 0
	}
	v := int(r.b[0]) % n
	r.b = r.b[1:]
	return v
}

var fuzzSkipRanges = []string{">=1.0.0 <1.3.0", "<1.2.0", ">=1.1.0-0 <2.0.0", "not a range", ">=1.0.0"}

// fuzzCatalog builds one to two packages of up to six bundles (versions
// 1.<i>.0, some of them prereleases) in one or two channels, mostly
// replaces chains but with replaces, skips and skipRange pointing anywhere,
// valid or not, and requirements between the packages.
func fuzzCatalog(r *fuzzInput) *declcfg.DeclarativeConfig {
	c := &fbc{}
	npkg := 1 + r.pick(2)
	for p := 0; p < npkg; p++ {
		pkg := fmt.Sprintf("p%d", p)
		var versions []string
		for i, n := 0, 1+r.pick(6); i < n; i++ {
			v := fmt.Sprintf("1.%d.0", i)
			if r.pick(4) == 0 {
				v += "-rc.1"
			}
			versions = append(versions, v)
		}
		inChannel := map[string]bool{}
		nch := 1 + r.pick(2)
		for ch := 0; ch < nch; ch++ {
			var entries []declcfg.ChannelEntry
			for _, v := range versions {
				if r.pick(3) == 0 && len(entries) > 0 {
					continue
				}
				e := ent(pkg, v, "")
				switch k := r.pick(16); {
				case len(entries) == 0 || k == 0:
				case k <= 13: // mostly a chain, as real channels are
					e.Replaces = entries[len(entries)-1].Name
				case k == 14:
					e.Replaces = entries[r.pick(len(entries))].Name
				default: // anywhere: later entries, itself
					e.Replaces = bundleName(pkg, versions[r.pick(len(versions))])
				}
				switch k := r.pick(10); {
				case k <= 2 && len(entries) >= 2: // replace the one before the last, skip the last
					e.Replaces = entries[len(entries)-2].Name
					e.Skips = append(e.Skips, entries[len(entries)-1].Name)
				case k == 3:
					e.Skips = append(e.Skips, bundleName(pkg, versions[r.pick(len(versions))]))
				}
				if r.pick(3) == 0 {
					e.SkipRange = fuzzSkipRanges[r.pick(len(fuzzSkipRanges))]
				}
				entries = append(entries, e)
				inChannel[v] = true
			}
			c.channel(pkg, fmt.Sprintf("c%d", ch), entries...)
		}
		c.pkg(pkg, fmt.Sprintf("c%d", r.pick(nch)))
		for _, v := range versions {
			if !inChannel[v] {
				continue
			}
			var extra []property.Property
			switch r.pick(5) {
			case 1:
				extra = append(extra, property.MustBuildPackageRequired(fmt.Sprintf("p%d", r.pick(2)), ">=1.1.0"))
			case 2:
				extra = append(extra, property.MustBuildGVK("example.com", "v1", pkg))
			case 3:
				extra = append(extra, property.MustBuildGVKRequired("example.com", "v1", fmt.Sprintf("p%d", r.pick(2))))
			}
			c.bundle(pkg, v, extra...)
		}
		if r.pick(3) == 0 {
			c.deprecation(pkg,
				declcfg.DeprecationEntry{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaChannel, Name: "c0"}, Message: "old"},
				declcfg.DeprecationEntry{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaBundle, Name: c.cfg.Channels[len(c.cfg.Channels)-1].Entries[0].Name}, Message: "old"})
		}
	}
	return &c.cfg
}

func fuzzSelection(r *fuzzInput, cfg *declcfg.DeclarativeConfig) Selection {
	sel := Selection{Catalog: "example.com/catalog:latest", Full: r.pick(6) == 0}
	bound := func() string {
		if k := r.pick(8); k > 0 {
			return fmt.Sprintf("1.%d.0%s", k-1, []string{"", "-0"}[r.pick(2)])
		}
		return ""
	}
	for _, p := range cfg.Packages {
		if r.pick(3) != 0 {
			continue
		}
		ps := PackageSelection{Name: p.Name}
		if !sel.Full {
			ps.MinVersion, ps.MaxVersion = bound(), bound()
			for _, ch := range []string{"c0", "c1"} {
				if r.pick(3) == 0 {
					ps.Channels = append(ps.Channels, ChannelSelection{Name: ch, MinVersion: bound(), MaxVersion: bound()})
				}
			}
			if r.pick(3) == 0 {
				ps.DefaultChannel = "c1"
			}
		}
		sel.Packages = append(sel.Packages, ps)
	}
	return sel
}

func FuzzFilter(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		{1, 5, 1, 0, 1, 2, 3, 1, 0, 0, 2, 0, 1},
		{0, 3, 0, 1, 0, 1, 0, 2, 1, 0, 1, 2, 0, 0, 0, 3, 1, 2, 4, 0},
		{1, 4, 2, 2, 1, 1, 2, 0, 0, 1, 3, 3, 1, 0, 2, 1, 0, 4, 2, 0, 0, 1, 0, 2, 5},
		[]byte("a longer seed that walks through more of the choices, both packages"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzInput{b: data}
		cfg := fuzzCatalog(r)
		assertChannelInvariants(t, r, cfg)
		sel := fuzzSelection(r, cfg)
		opts := FilterOptions{SkipDependencies: r.pick(2) == 0}
		out, report, err := Filter(cfg, sel, opts)
		if err != nil {
			return
		}
		assertValidFBC(t, out)
		assertSelectionKept(t, cfg, sel, out)
		if len(report.Packages) != len(out.Packages) {
			t.Fatalf("report has %d packages, catalog %d", len(report.Packages), len(out.Packages))
		}
	})
}

// assertChannelInvariants: a channel passes channelGraph.check exactly when
// opm's model accepts it on its own, and from a channel that passes,
// keepChannel keeps any subset of entries in a channel that passes too.
func assertChannelInvariants(t *testing.T, r *fuzzInput, cfg *declcfg.DeclarativeConfig) {
	x, err := newCatalogIndex(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range cfg.Channels {
		g, err := x.channelGraph(ch.Package, ch.Name)
		if err != nil {
			t.Fatal(err)
		}
		_, ours := g.check(g.all())
		one := declcfg.DeclarativeConfig{
			Packages: []declcfg.Package{{Schema: declcfg.SchemaPackage, Name: ch.Package, DefaultChannel: ch.Name}},
			Channels: []declcfg.Channel{ch},
		}
		for _, e := range ch.Entries {
			b := cfg.Bundles[x.bundles[ch.Package][e.Name]]
			b.Properties = slices.Clone(b.Properties)
			one.Bundles = append(one.Bundles, b)
		}
		_, theirs := declcfg.ConvertToModel(one)
		if (ours == nil) != (theirs == nil) {
			t.Fatalf("channel %s/%s %+v: check says %v, opm says %v", ch.Package, ch.Name, ch.Entries, ours, theirs)
		}
		if ours != nil {
			continue
		}
		required := make([]bool, len(g.entries))
		required[r.pick(len(required))] = true
		for i := range required {
			required[i] = required[i] || r.pick(2) == 0
		}
		kept, head, err := g.keepChannel(required)
		if err != nil {
			t.Fatalf("channel %s/%s %+v, required %v: %v", ch.Package, ch.Name, ch.Entries, required, err)
		}
		if got, err := g.check(kept); !covers(kept, required) || err != nil || got != head {
			t.Fatalf("channel %s/%s %+v, required %v: kept %v head %d, check %d %v", ch.Package, ch.Name, ch.Entries, required, kept, head, got, err)
		}
	}
}

// assertSelectionKept: every bundle the selection names is kept (the
// channel's head without a range, every in-range entry with one).
func assertSelectionKept(t *testing.T, cfg *declcfg.DeclarativeConfig, sel Selection, out *declcfg.DeclarativeConfig) {
	x, _ := newCatalogIndex(cfg)
	for _, ps := range sel.Packages {
		channels := ps.Channels
		if len(channels) == 0 {
			for _, name := range x.order[ps.Name] {
				channels = append(channels, ChannelSelection{Name: name})
			}
		}
		for _, cs := range channels {
			bounds, _ := parseBounds(cs.MinVersion, cs.MaxVersion)
			if !bounds.set() {
				bounds, _ = parseBounds(ps.MinVersion, ps.MaxVersion)
			}
			kept := map[string]bool{}
			for _, c := range out.Channels {
				if c.Package == ps.Name && c.Name == cs.Name {
					for _, e := range c.Entries {
						kept[e.Name] = true
					}
				}
			}
			g, _ := x.channelGraph(ps.Name, cs.Name)
			for i, e := range g.entries {
				inRange := sel.Full || (bounds.set() && bounds.contains(g.versions[i]))
				if inRange && !kept[e.Name] {
					t.Fatalf("%s/%s: %s in %s not kept", ps.Name, cs.Name, e.Name, bounds)
				}
			}
			if !bounds.set() && !sel.Full {
				head, _ := g.check(g.all())
				if !kept[g.entries[head].Name] {
					t.Fatalf("%s/%s: head %s not kept", ps.Name, cs.Name, g.entries[head].Name)
				}
			}
		}
	}
}
