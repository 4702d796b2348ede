package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// requirement is one olm.package.required, olm.gvk.required or olm.constraint
// property of a bundle: what OLM must find in a catalog before it installs
// the bundle.
type requirement struct {
	typ          string
	pkg          string // a package requirement
	versionRange string
	gvk          property.GVK // an API requirement, when pkg is empty
	note         string       // a compound olm.constraint's failureMessage
}

func (r requirement) String() string {
	switch {
	case r.typ == "":
		return ""
	case r.pkg != "":
		return fmt.Sprintf("%s %s %s", r.typ, r.pkg, r.versionRange)
	case r.gvk != property.GVK{}:
		return fmt.Sprintf("%s %s/%s %s", r.typ, r.gvk.Group, r.gvk.Version, r.gvk.Kind)
	}
	return strings.TrimSpace(r.typ + " " + r.note)
}

// constraint is the part of an olm.constraint value the filter follows: a
// single package or gvk requirement. The compound (all, any, not) and cel
// forms are not followed; they are reported as unresolved.
type constraint struct {
	FailureMessage string                    `json:"failureMessage"`
	Package        *property.PackageRequired `json:"package"`
	GVK            *property.GVKRequired     `json:"gvk"`
}

// errConstraintNotFollowed marks an olm.constraint the filter cannot weigh.
var errConstraintNotFollowed = errors.New("olm.constraint with all, any, not or cel is not followed: check by hand what it needs")

// requirements parses only the requirement properties of the bundle.
func requirements(b *declcfg.Bundle) ([]requirement, error) {
	var out []requirement
	for _, p := range b.Properties {
		switch p.Type {
		case property.TypeConstraint:
			var c constraint
			if err := json.Unmarshal(p.Value, &c); err != nil {
				return nil, fmt.Errorf("property %s: %w", p.Type, err)
			}
			switch {
			case c.Package != nil:
				out = append(out, requirement{typ: p.Type, pkg: c.Package.PackageName, versionRange: c.Package.VersionRange})
			case c.GVK != nil:
				out = append(out, requirement{typ: p.Type, gvk: property.GVK(*c.GVK)})
			default:
				out = append(out, requirement{typ: p.Type, note: c.FailureMessage})
			}
		case property.TypePackageRequired:
			var v property.PackageRequired
			if err := json.Unmarshal(p.Value, &v); err != nil {
				return nil, fmt.Errorf("property %s: %w", p.Type, err)
			}
			if v.PackageName == "" {
				return nil, fmt.Errorf("property %s names no package", p.Type)
			}
			out = append(out, requirement{typ: p.Type, pkg: v.PackageName, versionRange: v.VersionRange})
		case property.TypeGVKRequired:
			var v property.GVKRequired
			if err := json.Unmarshal(p.Value, &v); err != nil {
				return nil, fmt.Errorf("property %s: %w", p.Type, err)
			}
			out = append(out, requirement{typ: p.Type, gvk: property.GVK(v)})
		}
	}
	return out, nil
}

// provides lists the APIs (olm.gvk) the bundle provides.
func provides(b *declcfg.Bundle) []property.GVK {
	var out []property.GVK
	for _, p := range b.Properties {
		if p.Type != property.TypeGVK {
			continue
		}
		var v property.GVK
		if json.Unmarshal(p.Value, &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

type bundleRef struct{ pkg, name string }

// closeDependencies adds, until nothing is missing, a bundle for every
// requirement of a kept bundle that no kept bundle meets. A requirement the
// catalog cannot meet is reported, not an error: another catalog on the
// cluster may meet it.
func (f *filter) closeDependencies() error {
	inspected := map[bundleRef]bool{}
	queue := f.keptBundleRefs(f.x.cfg.Packages)
	for ; len(queue) > 0; queue = queue[1:] {
		ref := queue[0]
		if inspected[ref] {
			continue
		}
		inspected[ref] = true
		b := &f.x.cfg.Bundles[f.x.bundles[ref.pkg][ref.name]]
		reqs, err := requirements(b)
		if err != nil {
			f.unresolved(ref, requirement{}, err.Error())
			continue
		}
		for _, req := range reqs {
			changed, err := f.require(req, ref)
			if err != nil {
				f.unresolved(ref, req, err.Error())
				continue
			}
			if changed != "" {
				pi := f.x.packages[changed]
				queue = append(queue, f.keptBundleRefs(f.x.cfg.Packages[pi:pi+1])...)
			}
		}
	}
	return nil
}

func (f *filter) unresolved(by bundleRef, req requirement, reason string) {
	kp := f.pkgs[by.pkg]
	kp.unresolved = append(kp.unresolved, DependencyUnresolved{Bundle: by.name, Requirement: req.String(), Reason: reason})
}

func (f *filter) keptBundleRefs(pkgs []declcfg.Package) []bundleRef {
	var out []bundleRef
	for _, p := range pkgs {
		kp := f.pkgs[p.Name]
		if kp == nil {
			continue
		}
		for _, ch := range f.x.order[p.Name] {
			if kc := kp.channels[ch]; kc != nil {
				for _, name := range kc.graph.names(kc.kept) {
					out = append(out, bundleRef{p.Name, name})
				}
			}
		}
	}
	return out
}

// require meets req if nothing kept meets it, returning the package it
// added to.
func (f *filter) require(req requirement, by bundleRef) (string, error) {
	var accept func(pkg string, bundle *declcfg.Bundle, v semver.Version) bool
	var pkgs []string
	switch {
	case req.pkg == "" && req.gvk == property.GVK{}:
		return "", errConstraintNotFollowed
	case req.pkg != "":
		r, err := semver.ParseRange(req.versionRange)
		if err != nil {
			return "", fmt.Errorf("versionRange %q does not parse: %w", req.versionRange, err)
		}
		if _, ok := f.x.packages[req.pkg]; !ok {
			return "", fmt.Errorf("package %q is not in the catalog", req.pkg)
		}
		pkgs = []string{req.pkg}
		accept = func(pkg string, _ *declcfg.Bundle, v semver.Version) bool { return pkg == req.pkg && r(v) }
	default:
		accept = func(_ string, b *declcfg.Bundle, _ semver.Version) bool { return slices.Contains(provides(b), req.gvk) }
		pkgs = f.providers(req.gvk)
	}
	if f.keptMeets(pkgs, accept) {
		return "", nil
	}
	for _, pkg := range pkgs {
		ch, entry, ok := f.olmPick(pkg, accept)
		if !ok {
			continue
		}
		return pkg, f.addForDependency(pkg, ch, entry, req, by)
	}
	return "", fmt.Errorf("no bundle in the catalog meets it")
}

// providers lists the packages with a bundle providing gvk: those already
// kept first, each group in catalog order. The index of providers is built
// on first use, reading the olm.gvk properties of every bundle once.
func (f *filter) providers(gvk property.GVK) []string {
	if f.gvkProviders == nil {
		f.gvkProviders = map[property.GVK][]string{}
		for i := range f.x.cfg.Bundles {
			b := &f.x.cfg.Bundles[i]
			for _, g := range provides(b) {
				if !slices.Contains(f.gvkProviders[g], b.Package) {
					f.gvkProviders[g] = append(f.gvkProviders[g], b.Package)
				}
			}
		}
	}
	var kept, other []string
	for _, p := range f.x.cfg.Packages {
		switch {
		case !slices.Contains(f.gvkProviders[gvk], p.Name):
		case f.pkgs[p.Name] != nil:
			kept = append(kept, p.Name)
		default:
			other = append(other, p.Name)
		}
	}
	return append(kept, other...)
}

func (f *filter) keptMeets(pkgs []string, accept func(string, *declcfg.Bundle, semver.Version) bool) bool {
	for _, pkg := range pkgs {
		kp := f.pkgs[pkg]
		if kp == nil {
			continue
		}
		for _, kc := range kp.channels {
			for i, in := range kc.kept {
				b := &f.x.cfg.Bundles[f.x.bundles[pkg][kc.graph.entries[i].Name]]
				if in && accept(pkg, b, kc.graph.versions[i]) {
					return true
				}
			}
		}
	}
	return false
}

// olmPick finds the bundle of pkg that OLM's resolver would try first for a
// dependency: channels in OLM's order (the default channel, then the others
// by name), in each the entries OLM offers, head first. Failing that, the
// highest accepted version of any entry, so that a requirement only a
// skipped bundle meets is still met.
func (f *filter) olmPick(pkg string, accept func(string, *declcfg.Bundle, semver.Version) bool) (string, int, bool) {
	channels := slices.Clone(f.x.order[pkg])
	slices.Sort(channels)
	def := f.x.cfg.Packages[f.x.packages[pkg]].DefaultChannel
	if i := slices.Index(channels, def); i > 0 {
		channels = append([]string{def}, slices.Delete(channels, i, i+1)...)
	}
	ok := func(g *channelGraph, i int) bool {
		return accept(pkg, &f.x.cfg.Bundles[f.x.bundles[pkg][g.entries[i].Name]], g.versions[i])
	}
	bestCh, best := "", -1
	var bestGraph *channelGraph
	for _, ch := range channels {
		g, err := f.x.channelGraph(pkg, ch)
		if err != nil {
			continue
		}
		if order, err := g.olmOrder(g.all()); err == nil {
			for _, i := range order {
				if ok(g, i) {
					return ch, i, true
				}
			}
		}
		for i := range g.entries {
			if ok(g, i) && (best < 0 || g.versions[i].GT(bestGraph.versions[best])) {
				bestCh, best, bestGraph = ch, i, g
			}
		}
	}
	return bestCh, best, best >= 0
}

func (f *filter) addForDependency(pkg, channel string, entry int, req requirement, by bundleRef) error {
	g, err := f.x.channelGraph(pkg, channel)
	if err != nil {
		return err
	}
	required := make([]bool, len(g.entries))
	var bounds versionBounds
	if kp := f.pkgs[pkg]; kp != nil && kp.channels[channel] != nil {
		required, bounds = slices.Clone(kp.channels[channel].required), kp.channels[channel].bounds
	}
	required[entry] = true
	kp, err := f.keep(pkg, g, required, bounds)
	if err != nil {
		return err
	}
	kp.added = append(kp.added, DependencyAdded{
		Bundle: g.entries[entry].Name, Channel: channel,
		RequiredBy: by.pkg + "/" + by.name, Requirement: req.String(),
	})
	return nil
}
