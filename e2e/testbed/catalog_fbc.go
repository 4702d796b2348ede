package testbed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// imageRefs are the references the FBC names images by, once pushed.
type imageRefs struct {
	bundles map[string]string // bundle name -> reference
	related map[string]string // relatedKey -> reference
}

// relatedKey identifies one related image of the plan.
func relatedKey(r relatedPlan) string { return r.repo + "#" + r.variant }

// fbc is the FBC of one package of the plan, as operator-registry
// reads it, every list in plan order.
func (p pkgPlan) fbc(refs imageRefs) declcfg.DeclarativeConfig {
	cfg := declcfg.DeclarativeConfig{
		Packages: []declcfg.Package{{
			Schema: declcfg.SchemaPackage, Name: p.name, DefaultChannel: p.defaultChannel,
			Description: "The " + p.ns + " operator of ferry's test bed.",
		}},
	}
	for _, ch := range p.channels {
		c := declcfg.Channel{Schema: declcfg.SchemaChannel, Package: p.name, Name: ch.name}
		for _, e := range ch.entries {
			entry := declcfg.ChannelEntry{Name: p.bundleName(e.version), SkipRange: e.skipRange}
			if e.replaces != "" {
				entry.Replaces = p.bundleName(e.replaces)
			}
			for _, s := range e.skips {
				entry.Skips = append(entry.Skips, p.bundleName(s))
			}
			c.Entries = append(c.Entries, entry)
		}
		cfg.Channels = append(cfg.Channels, c)
	}
	for _, bp := range p.bundles {
		cfg.Bundles = append(cfg.Bundles, p.bundle(bp, refs))
	}
	if len(p.deprecations) > 0 {
		cfg.Deprecations = []declcfg.Deprecation{{Schema: declcfg.SchemaDeprecation, Package: p.name, Entries: p.deprecations}}
	}
	return cfg
}

func (p pkgPlan) bundle(bp bundlePlan, refs imageRefs) declcfg.Bundle {
	name := p.bundleName(bp.version)
	props := []property.Property{
		{Type: property.TypeGVK, Value: p.provides},
		{Type: property.TypePackage, Value: rawJSON(`{"packageName":%q,"version":%q}`, p.name, bp.version)},
	}
	if bp.maxOpenShift != "" {
		props = append(props, property.Property{Type: maxOpenShiftVersionProperty, Value: json.RawMessage(bp.maxOpenShift)})
	}
	props = append(props, bp.requires...)
	b := declcfg.Bundle{
		Schema: declcfg.SchemaBundle, Name: name, Package: p.name, Image: refs.bundles[name],
		Properties:    props,
		RelatedImages: []declcfg.RelatedImage{{Name: "", Image: refs.bundles[name]}},
	}
	for _, r := range bp.related {
		b.RelatedImages = append(b.RelatedImages, declcfg.RelatedImage{Name: r.name, Image: refs.related[relatedKey(r)]})
	}
	return b
}

// maxOpenShiftVersionProperty is the bundle property OLM's upgrade gate reads.
const maxOpenShiftVersionProperty = "olm.maxOpenShiftVersion"

// sortFBC orders cfg's documents by package and name, the order Catalog.FBC
// promises.
func sortFBC(cfg *declcfg.DeclarativeConfig) {
	slices.SortFunc(cfg.Packages, func(a, b declcfg.Package) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(cfg.Channels, func(a, b declcfg.Channel) int {
		return cmpPair(a.Package, a.Name, b.Package, b.Name)
	})
	slices.SortFunc(cfg.Bundles, func(a, b declcfg.Bundle) int {
		return cmpPair(a.Package, a.Name, b.Package, b.Name)
	})
	slices.SortFunc(cfg.Deprecations, func(a, b declcfg.Deprecation) int { return strings.Compare(a.Package, b.Package) })
}

func cmpPair(a1, a2, b1, b2 string) int {
	if c := strings.Compare(a1, b1); c != 0 {
		return c
	}
	return strings.Compare(a2, b2)
}

// files writes the package's FBC as the plan lays it out, by path under
// the configs directory.
func (p pkgPlan) files(cfg declcfg.DeclarativeConfig) (map[string][]byte, error) {
	out := map[string][]byte{}
	put := func(name string, part declcfg.DeclarativeConfig, write declcfg.WriteFunc) error {
		var buf bytes.Buffer
		if err := write(part, &buf); err != nil {
			return fmt.Errorf("writing %s/%s: %w", p.name, name, err)
		}
		out[p.name+"/"+name] = buf.Bytes()
		return nil
	}
	var err error
	switch p.layout {
	case layoutJSON:
		err = put("catalog.json", cfg, declcfg.WriteJSON)
	case layoutYAML:
		err = put("catalog.yaml", cfg, p.writeYAML)
	case layoutJSONDeprecations:
		deprecations := declcfg.DeclarativeConfig{Deprecations: cfg.Deprecations}
		cfg.Deprecations = nil
		if err = put("catalog.json", cfg, declcfg.WriteJSON); err == nil {
			err = put("deprecations.yaml", deprecations, p.writeYAML)
		}
	case layoutYAMLSplit:
		head := declcfg.DeclarativeConfig{Packages: cfg.Packages, Channels: cfg.Channels, Deprecations: cfg.Deprecations}
		err = put("package.yaml", head, p.writeYAML)
		for _, b := range cfg.Bundles {
			if err != nil {
				break
			}
			err = put("bundles/"+b.Name+".yaml", declcfg.DeclarativeConfig{Bundles: []declcfg.Bundle{b}}, p.writeYAML)
		}
	default:
		err = fmt.Errorf("package %s: unknown layout %d", p.name, p.layout)
	}
	return out, err
}

// writeYAML writes cfg as operator-registry does, then spells the
// olm.maxOpenShiftVersion values the plan gives a YAML form for as a
// person writing YAML would: 4.20, which YAML reads back as 4.2.
func (p pkgPlan) writeYAML(cfg declcfg.DeclarativeConfig, w io.Writer) error {
	var buf bytes.Buffer
	if err := declcfg.WriteYAML(cfg, &buf); err != nil {
		return err
	}
	data := buf.Bytes()
	want := map[string]int{}
	for _, b := range cfg.Bundles {
		for _, bp := range p.bundles {
			if p.bundleName(bp.version) == b.Name && bp.maxOpenShiftYAML != "" {
				want[bp.maxOpenShift+"\x00"+bp.maxOpenShiftYAML]++
			}
		}
	}
	for pair, n := range want {
		from, to, _ := strings.Cut(pair, "\x00")
		line := func(v string) []byte {
			return []byte("- type: " + maxOpenShiftVersionProperty + "\n  value: " + v + "\n")
		}
		if got := bytes.Count(data, line(from)); got != n {
			return fmt.Errorf("package %s: %d lines of %s %s in the YAML written, want %d", p.name, got, maxOpenShiftVersionProperty, from, n)
		}
		data = bytes.ReplaceAll(data, line(from), line(to))
	}
	_, err := w.Write(data)
	return err
}
