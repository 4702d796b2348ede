package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// PackageSummary is what an admin needs of one package to write a
// selection: its channels, their heads and the versions they hold.
type PackageSummary struct {
	Name           string           `json:"name"`
	DefaultChannel string           `json:"defaultChannel"`
	Channels       []ChannelSummary `json:"channels"`
	// Deprecated is set when the package itself is deprecated.
	Deprecated bool `json:"deprecated,omitempty"`
}

// ChannelSummary is one channel: its head and its versions, oldest first.
type ChannelSummary struct {
	Name        string   `json:"name"`
	Head        string   `json:"head"`
	HeadVersion string   `json:"headVersion"`
	Versions    []string `json:"versions"`
	Deprecated  bool     `json:"deprecated,omitempty"`
}

// Summarize lists the packages of cfg (only pkg when not empty), sorted by
// name, with each channel's head as opm validates it and the channel's
// versions in semver order. A channel opm would refuse is an error naming
// it.
func Summarize(cfg *declcfg.DeclarativeConfig, pkg string) ([]PackageSummary, error) {
	x, err := newCatalogIndex(cfg)
	if err != nil {
		return nil, err
	}
	deprecated := deprecatedEntries(cfg)
	var out []PackageSummary
	for _, p := range cfg.Packages {
		if pkg != "" && p.Name != pkg {
			continue
		}
		s := PackageSummary{Name: p.Name, DefaultChannel: p.DefaultChannel, Deprecated: deprecated[p.Name+"/"], Channels: []ChannelSummary{}}
		for _, ch := range cfg.Channels {
			if ch.Package != p.Name {
				continue
			}
			g, err := x.channelGraph(p.Name, ch.Name)
			if err != nil {
				return nil, err
			}
			cs, err := summarizeChannel(g)
			if err != nil {
				return nil, err
			}
			cs.Deprecated = deprecated[p.Name+"/channel/"+ch.Name]
			s.Channels = append(s.Channels, cs)
		}
		slices.SortFunc(s.Channels, func(a, b ChannelSummary) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, s)
	}
	if pkg != "" && len(out) == 0 {
		return nil, fmt.Errorf("the catalog has no package %q", pkg)
	}
	slices.SortFunc(out, func(a, b PackageSummary) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func summarizeChannel(g *channelGraph) (ChannelSummary, error) {
	head, err := g.check(g.all())
	if err != nil {
		return ChannelSummary{}, err
	}
	cs := ChannelSummary{Name: g.name, Head: g.entries[head].Name, HeadVersion: g.versions[head].String()}
	sorted := slices.Clone(g.versions)
	slices.SortFunc(sorted, func(a, b semver.Version) int { return a.Compare(b) })
	for _, v := range sorted {
		cs.Versions = append(cs.Versions, v.String())
	}
	return cs, nil
}

// deprecatedEntries keys what olm.deprecations marks: "pkg/" for a
// package, "pkg/channel/name" for a channel.
func deprecatedEntries(cfg *declcfg.DeclarativeConfig) map[string]bool {
	out := map[string]bool{}
	for _, d := range cfg.Deprecations {
		for _, e := range d.Entries {
			switch e.Reference.Schema {
			case declcfg.SchemaPackage:
				out[d.Package+"/"] = true
			case declcfg.SchemaChannel:
				out[d.Package+"/channel/"+e.Reference.Name] = true
			}
		}
	}
	return out
}
