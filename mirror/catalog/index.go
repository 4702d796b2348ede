package catalog

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// catalogIndex finds a catalog's packages, channels and bundles by name and
// caches what the filter parses of them. It holds indices into the catalog's
// slices, never copies of its bundles.
type catalogIndex struct {
	cfg      *declcfg.DeclarativeConfig
	packages map[string]int            // package → index in cfg.Packages
	channels map[string]map[string]int // package → channel → index in cfg.Channels
	order    map[string][]string       // package → its channels in catalog order
	bundles  map[string]map[string]int // package → bundle → index in cfg.Bundles
	versions map[int]semver.Version    // bundle index → parsed version
	graphs   map[int]*channelGraph     // channel index → graph
}

func newCatalogIndex(cfg *declcfg.DeclarativeConfig) (*catalogIndex, error) {
	if cfg == nil {
		return nil, errors.New("no catalog given")
	}
	x := &catalogIndex{
		cfg:      cfg,
		packages: make(map[string]int, len(cfg.Packages)),
		channels: map[string]map[string]int{},
		order:    map[string][]string{},
		bundles:  map[string]map[string]int{},
		versions: map[int]semver.Version{},
		graphs:   map[int]*channelGraph{},
	}
	for i, p := range cfg.Packages {
		if _, dup := x.packages[p.Name]; dup {
			return nil, fmt.Errorf("catalog declares package %q twice", p.Name)
		}
		x.packages[p.Name] = i
		x.channels[p.Name] = map[string]int{}
		x.bundles[p.Name] = map[string]int{}
	}
	for i, c := range cfg.Channels {
		byName, ok := x.channels[c.Package]
		if !ok {
			return nil, fmt.Errorf("channel %q names package %q, which the catalog does not declare", c.Name, c.Package)
		}
		if _, dup := byName[c.Name]; dup {
			return nil, fmt.Errorf("package %q declares channel %q twice", c.Package, c.Name)
		}
		byName[c.Name] = i
		x.order[c.Package] = append(x.order[c.Package], c.Name)
	}
	for i, b := range cfg.Bundles {
		byName, ok := x.bundles[b.Package]
		if !ok {
			return nil, fmt.Errorf("bundle %q names package %q, which the catalog does not declare", b.Name, b.Package)
		}
		if _, dup := byName[b.Name]; dup {
			return nil, fmt.Errorf("package %q declares bundle %q twice", b.Package, b.Name)
		}
		byName[b.Name] = i
	}
	return x, nil
}

// version is the bundle's version, from its one olm.package property.
func (x *catalogIndex) version(pkg, bundle string) (semver.Version, error) {
	i, ok := x.bundles[pkg][bundle]
	if !ok {
		return semver.Version{}, fmt.Errorf("no olm.bundle %q in package %q", bundle, pkg)
	}
	if v, ok := x.versions[i]; ok {
		return v, nil
	}
	v, err := bundleVersion(&x.cfg.Bundles[i])
	if err != nil {
		return semver.Version{}, err
	}
	x.versions[i] = v
	return v, nil
}

// bundleVersion parses only the olm.package property, leaving the others,
// olm.bundle.object blobs included, untouched.
func bundleVersion(b *declcfg.Bundle) (semver.Version, error) {
	var found []property.Package
	for _, p := range b.Properties {
		if p.Type != property.TypePackage {
			continue
		}
		var pp property.Package
		if err := json.Unmarshal(p.Value, &pp); err != nil {
			return semver.Version{}, fmt.Errorf("bundle %q: property %s: %w", b.Name, property.TypePackage, err)
		}
		found = append(found, pp)
	}
	if len(found) != 1 {
		return semver.Version{}, fmt.Errorf("bundle %q has %d %s properties, want exactly 1", b.Name, len(found), property.TypePackage)
	}
	v, err := semver.Parse(found[0].Version)
	if err != nil {
		return semver.Version{}, fmt.Errorf("bundle %q: version %q: %w", b.Name, found[0].Version, err)
	}
	return v, nil
}

func (x *catalogIndex) channelGraph(pkg, channel string) (*channelGraph, error) {
	if _, ok := x.packages[pkg]; !ok {
		return nil, fmt.Errorf("package %q is not in the catalog", pkg)
	}
	ci, ok := x.channels[pkg][channel]
	if !ok {
		return nil, fmt.Errorf("package %q has no channel %q", pkg, channel)
	}
	if g, ok := x.graphs[ci]; ok {
		return g, nil
	}
	g, err := newChannelGraph(pkg, &x.cfg.Channels[ci], func(bundle string) (semver.Version, error) {
		return x.version(pkg, bundle)
	})
	if err != nil {
		return nil, err
	}
	x.graphs[ci] = g
	return g, nil
}
