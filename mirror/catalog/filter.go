package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// FilterOptions tunes Filter; the zero value is the default.
type FilterOptions struct {
	// SkipDependencies leaves out the bundles that kept bundles require
	// (olm.package.required, olm.gvk.required, and olm.constraint in its
	// package and gvk forms). By default Filter adds them, since OLM cannot
	// install a bundle whose requirements no catalog meets.
	SkipDependencies bool
}

// DefaultChannelError says that the selection drops a package's default
// channel and keeps several others, so the user must name one.
type DefaultChannelError struct {
	Package    string
	Dropped    string   // the catalog's default channel
	Candidates []string // the kept channels
}

func (e *DefaultChannelError) Error() string {
	return fmt.Sprintf("package %q: the selection leaves out its default channel %q and keeps %s: set defaultChannel to one of them",
		e.Package, e.Dropped, strings.Join(e.Candidates, ", "))
}

// Filter returns the part of cfg that sel selects, as OLM reads a catalog:
//
//   - a channel without a range keeps its head; with a range it keeps every
//     bundle inside the range and the fewest others that keep it one valid
//     channel (one head, every entry on the head's replaces chain or
//     skipped), its entries unchanged; those others are reported;
//   - a package whose default channel is left out gets the one channel it
//     keeps as default (reported), or the one the selection names; with
//     several, it is a *DefaultChannelError;
//   - unless opts.SkipDependencies, the bundles kept bundles require are
//     added, each the first that OLM would pick, and reported with why;
//   - olm.deprecations entries are pruned to what is kept, other schemas
//     are kept for the kept packages.
//
// The result is checked with operator-registry's ConvertToModel (which runs
// the model's Validate) before it is returned. It shares cfg's bundles
// (their properties, blobs included, are not copied); cfg is not modified.
func Filter(cfg *declcfg.DeclarativeConfig, sel Selection, opts FilterOptions) (*declcfg.DeclarativeConfig, *FilterReport, error) {
	if errs := sel.validatePackages(); len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	x, err := newCatalogIndex(cfg)
	if err != nil {
		return nil, nil, err
	}
	f := &filter{x: x, pkgs: map[string]*keptPackage{}}
	if err := f.apply(sel); err != nil {
		return nil, nil, err
	}
	if !opts.SkipDependencies {
		if err := f.closeDependencies(); err != nil {
			return nil, nil, err
		}
	}
	if err := f.resolveDefaultChannels(); err != nil {
		return nil, nil, err
	}
	out := f.assemble()
	if err := f.validate(out); err != nil {
		return nil, nil, err
	}
	return out, f.report(), nil
}

type filter struct {
	x    *catalogIndex
	pkgs map[string]*keptPackage
	// gvkProviders maps each API to the packages providing it, built when
	// the first olm.gvk.required is met.
	gvkProviders map[property.GVK][]string
}

type keptPackage struct {
	name        string
	selected    bool   // by the selection, not only as a dependency
	wantDefault string // the selection's defaultChannel
	channels    map[string]*keptChannel
	outOfRange  []string // channels the package's range leaves empty

	defaultChannel, defaultFrom string
	added                       []DependencyAdded
	unresolved                  []DependencyUnresolved
}

type keptChannel struct {
	graph    *channelGraph
	bounds   versionBounds
	required []bool // selected: the head, the range, dependencies
	kept     []bool // required plus connectors
	head     int
}

func (f *filter) apply(sel Selection) error {
	if len(sel.Packages) == 0 {
		for _, p := range f.x.cfg.Packages {
			if err := f.selectPackage(PackageSelection{Name: p.Name}, sel.Full); err != nil {
				return err
			}
		}
		return nil
	}
	for _, ps := range sel.Packages {
		if err := f.selectPackage(ps, sel.Full); err != nil {
			return err
		}
	}
	return nil
}

func (f *filter) selectPackage(ps PackageSelection, full bool) error {
	if _, ok := f.x.packages[ps.Name]; !ok {
		return &SelectionError{Package: ps.Name, Reason: "not in the catalog"}
	}
	kp := f.keptPackage(ps.Name)
	kp.selected, kp.wantDefault = true, ps.DefaultChannel
	pkgBounds, err := parseBounds(ps.MinVersion, ps.MaxVersion)
	if err != nil {
		return &SelectionError{Package: ps.Name, Reason: err.Error()}
	}
	channels := ps.Channels
	explicit := len(channels) > 0
	if !explicit {
		for _, name := range f.x.order[ps.Name] {
			channels = append(channels, ChannelSelection{Name: name})
		}
	}
	for _, cs := range channels {
		bounds, err := parseBounds(cs.MinVersion, cs.MaxVersion)
		if err != nil {
			return &SelectionError{Package: ps.Name, Channel: cs.Name, Reason: err.Error()}
		}
		if !bounds.set() {
			bounds = pkgBounds
		}
		if err := f.selectChannel(kp, cs.Name, bounds, full, explicit); err != nil {
			return err
		}
	}
	if len(kp.channels) == 0 {
		return &SelectionError{Package: ps.Name, Reason: fmt.Sprintf("no channel holds a bundle in %s", pkgBounds)}
	}
	return nil
}

func (f *filter) selectChannel(kp *keptPackage, channel string, bounds versionBounds, full, explicit bool) error {
	if _, ok := f.x.channels[kp.name][channel]; !ok {
		return &SelectionError{Package: kp.name, Channel: channel, Reason: "not in the catalog"}
	}
	g, err := f.x.channelGraph(kp.name, channel)
	if err != nil {
		return err
	}
	var required []bool
	switch {
	case full:
		required = g.all()
	case bounds.set():
		required = make([]bool, len(g.entries))
		for i, v := range g.versions {
			required[i] = bounds.contains(v)
		}
		if count(required) == 0 {
			if explicit {
				return &SelectionError{Package: kp.name, Channel: channel, Reason: fmt.Sprintf("no bundle in %s", bounds)}
			}
			kp.outOfRange = append(kp.outOfRange, channel)
			return nil
		}
	default:
		head, err := g.check(g.all())
		if err != nil {
			return fmt.Errorf("catalog channel is not valid: %w", err)
		}
		required = make([]bool, len(g.entries))
		required[head] = true
	}
	_, err = f.keep(kp.name, g, required, bounds)
	return err
}

// keep makes required (plus what joins it) the kept part of the channel,
// and the package kept.
func (f *filter) keep(pkg string, g *channelGraph, required []bool, bounds versionBounds) (*keptPackage, error) {
	kept, head, err := g.keepChannel(required)
	if err != nil {
		return nil, err
	}
	kp := f.keptPackage(pkg)
	kc := kp.channels[g.name]
	if kc == nil {
		kc = &keptChannel{graph: g, bounds: bounds}
		kp.channels[g.name] = kc
	}
	kc.required, kc.kept, kc.head = required, kept, head
	return kp, nil
}

func count(set []bool) int {
	n := 0
	for _, in := range set {
		if in {
			n++
		}
	}
	return n
}

func (f *filter) keptPackage(name string) *keptPackage {
	kp := f.pkgs[name]
	if kp == nil {
		kp = &keptPackage{name: name, channels: map[string]*keptChannel{}}
		f.pkgs[name] = kp
	}
	return kp
}

// resolveDefaultChannels keeps each package's default channel, or rewrites
// it to the one kept channel, or the one the selection names.
func (f *filter) resolveDefaultChannels() error {
	for _, p := range f.x.cfg.Packages {
		kp := f.pkgs[p.Name]
		if kp == nil {
			continue
		}
		kept := f.keptChannelNames(kp)
		switch {
		case kp.wantDefault != "":
			if kp.channels[kp.wantDefault] == nil {
				return &SelectionError{Package: p.Name, Reason: fmt.Sprintf("defaultChannel %q keeps no bundle (kept: %s)", kp.wantDefault, strings.Join(kept, ", "))}
			}
			kp.defaultChannel = kp.wantDefault
		case kp.channels[p.DefaultChannel] != nil:
			kp.defaultChannel = p.DefaultChannel
		case len(kept) == 1:
			kp.defaultChannel = kept[0]
		case kp.selected:
			return &DefaultChannelError{Package: p.Name, Dropped: p.DefaultChannel, Candidates: kept}
		default:
			// Only dependencies brought the package in: take the channel
			// whose head is the highest version, and say so.
			kp.defaultChannel = f.highestHeadChannel(kp, kept)
		}
		if kp.defaultChannel != p.DefaultChannel {
			kp.defaultFrom = p.DefaultChannel
		}
	}
	return nil
}

func (f *filter) keptChannelNames(kp *keptPackage) []string {
	var names []string
	for _, name := range f.x.order[kp.name] {
		if kp.channels[name] != nil {
			names = append(names, name)
		}
	}
	return names
}

func (f *filter) highestHeadChannel(kp *keptPackage, names []string) string {
	best := names[0]
	for _, name := range names[1:] {
		a, b := kp.channels[name], kp.channels[best]
		if a.graph.versions[a.head].GT(b.graph.versions[b.head]) {
			best = name
		}
	}
	return best
}

// assemble builds the filtered catalog in the catalog's own order. Package,
// channel and bundle values are copied as structs (slice headers), so the
// bundles' properties and their blobs are shared with the catalog.
func (f *filter) assemble() *declcfg.DeclarativeConfig {
	cfg := f.x.cfg
	out := &declcfg.DeclarativeConfig{}
	keptBundles := map[string]map[string]bool{}
	for _, p := range cfg.Packages {
		kp := f.pkgs[p.Name]
		if kp == nil {
			continue
		}
		p.DefaultChannel = kp.defaultChannel
		out.Packages = append(out.Packages, p)
		keptBundles[p.Name] = map[string]bool{}
	}
	for _, c := range cfg.Channels {
		kp := f.pkgs[c.Package]
		if kp == nil || kp.channels[c.Name] == nil {
			continue
		}
		kc := kp.channels[c.Name]
		entries := make([]declcfg.ChannelEntry, 0, count(kc.kept))
		for i, e := range c.Entries {
			if kc.kept[i] {
				entries = append(entries, e)
				keptBundles[c.Package][e.Name] = true
			}
		}
		c.Entries = entries
		out.Channels = append(out.Channels, c)
	}
	for _, b := range cfg.Bundles {
		if keptBundles[b.Package][b.Name] {
			out.Bundles = append(out.Bundles, b)
		}
	}
	for _, d := range cfg.Deprecations {
		kp := f.pkgs[d.Package]
		if kp == nil {
			continue
		}
		if d.Entries = pruneDeprecations(d.Entries, kp, keptBundles[d.Package]); len(d.Entries) > 0 {
			out.Deprecations = append(out.Deprecations, d)
		}
	}
	for _, m := range cfg.Others {
		if m.Package == "" || f.pkgs[m.Package] != nil {
			out.Others = append(out.Others, m)
		}
	}
	return out
}

func pruneDeprecations(in []declcfg.DeprecationEntry, kp *keptPackage, bundles map[string]bool) []declcfg.DeprecationEntry {
	var out []declcfg.DeprecationEntry
	for _, e := range in {
		switch e.Reference.Schema {
		case declcfg.SchemaChannel:
			if kp.channels[e.Reference.Name] == nil {
				continue
			}
		case declcfg.SchemaBundle:
			if !bundles[e.Reference.Name] {
				continue
			}
		}
		// olm.package entries, and any schema opm does not know (which its
		// validation then refuses), stay.
		out = append(out, e)
	}
	return out
}

// validate converts the filtered catalog to operator-registry's model one
// package at a time, which runs the model's Validate, and checks that each
// channel's head is the one the filter chose. Each package's bundles get a
// copy of their property list, so that the model's normalisation of
// property values writes into the copy rather than into the catalog, and
// the blobs it re-encodes are garbage once the package is checked.
func (f *filter) validate(out *declcfg.DeclarativeConfig) error {
	views := make(map[string]*declcfg.DeclarativeConfig, len(out.Packages))
	for _, p := range out.Packages {
		views[p.Name] = &declcfg.DeclarativeConfig{Packages: []declcfg.Package{p}}
	}
	for _, c := range out.Channels {
		views[c.Package].Channels = append(views[c.Package].Channels, c)
	}
	for _, b := range out.Bundles {
		// The model decodes every olm.bundle.object (tens of MB in a full
		// catalog) into the CSV and objects it keeps beside the bundle,
		// and checks them only for a bundle without an image; the view
		// leaves them out of the others.
		b.Properties = slices.DeleteFunc(slices.Clone(b.Properties), func(p property.Property) bool {
			return b.Image != "" && p.Type == property.TypeBundleObject
		})
		views[b.Package].Bundles = append(views[b.Package].Bundles, b)
	}
	for _, d := range out.Deprecations {
		views[d.Package].Deprecations = append(views[d.Package].Deprecations, d)
	}
	for _, p := range out.Packages {
		m, err := declcfg.ConvertToModel(*views[p.Name])
		if err != nil {
			return fmt.Errorf("filtered catalog is not valid: %w", err)
		}
		delete(views, p.Name)
		for name, ch := range m[p.Name].Channels {
			head, err := ch.Head()
			if err != nil {
				return fmt.Errorf("filtered catalog, package %q channel %q: %w", p.Name, name, err)
			}
			kc := f.pkgs[p.Name].channels[name]
			if want := kc.graph.entries[kc.head].Name; head.Name != want {
				return fmt.Errorf("filtered catalog, package %q channel %q: head is %q, the filter chose %q", p.Name, name, head.Name, want)
			}
		}
	}
	return nil
}
