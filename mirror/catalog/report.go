package catalog

import (
	"cmp"
	"slices"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// FilterReport says, per kept package, what Filter kept and why; it is what
// `ferry inspect` shows.
type FilterReport struct {
	Packages []PackageReport `json:"packages"`
}

// PackageReport is one kept package.
type PackageReport struct {
	Name string `json:"name"`
	// Selected is false for a package only dependencies brought in.
	Selected bool `json:"selected"`
	// Bundles are all kept bundles of the package, highest version first.
	Bundles        []string `json:"bundles"`
	DefaultChannel string   `json:"defaultChannel"`
	// DefaultChannelRewrittenFrom is the catalog's default channel when the
	// filter set another one, because the selection left it out.
	DefaultChannelRewrittenFrom string          `json:"defaultChannelRewrittenFrom,omitempty"`
	Channels                    []ChannelReport `json:"channels"`
	// ChannelsOutOfRange are the channels the package's version range left
	// without any bundle, so they are not kept.
	ChannelsOutOfRange     []string               `json:"channelsOutOfRange,omitempty"`
	DependenciesAdded      []DependencyAdded      `json:"dependenciesAdded,omitempty"`
	DependenciesUnresolved []DependencyUnresolved `json:"dependenciesUnresolved,omitempty"`
}

// ChannelReport is one kept channel.
type ChannelReport struct {
	Name string `json:"name"`
	Head string `json:"head"`
	// VersionRange is the range the selection applied, if any.
	VersionRange string `json:"versionRange,omitempty"`
	// Bundles are the channel's kept entries, highest version first.
	Bundles []string `json:"bundles"`
	// KeptForConnectivity are kept entries the selection did not ask for,
	// kept so that the channel stays one valid graph (a head above the
	// range, a bundle between two in-range ones).
	KeptForConnectivity []string `json:"keptForConnectivity,omitempty"`
	// NoUpgradePath are kept entries from which OLM offers no way to the
	// head (through replaces, skips and skipRange, as OLM picks candidates):
	// a cluster on one of them is not upgraded by this channel.
	NoUpgradePath []string `json:"noUpgradePath,omitempty"`
}

// DependencyAdded is a bundle Filter added because a kept bundle requires it.
type DependencyAdded struct {
	Bundle  string `json:"bundle"`
	Channel string `json:"channel"`
	// RequiredBy is package/bundle of the requiring bundle.
	RequiredBy string `json:"requiredBy"`
	// Requirement is the property, e.g. "olm.package.required etcd >=0.9.0 <0.10.0".
	Requirement string `json:"requirement"`
}

// DependencyUnresolved is a requirement of a kept bundle that the catalog
// does not meet; OLM installs the bundle only if another catalog meets it.
type DependencyUnresolved struct {
	Bundle      string `json:"bundle"`
	Requirement string `json:"requirement,omitempty"`
	Reason      string `json:"reason"`
}

func (f *filter) report() *FilterReport {
	r := &FilterReport{}
	for _, p := range f.x.cfg.Packages {
		kp := f.pkgs[p.Name]
		if kp == nil {
			continue
		}
		pr := PackageReport{
			Name: kp.name, Selected: kp.selected,
			DefaultChannel: kp.defaultChannel, DefaultChannelRewrittenFrom: kp.defaultFrom,
			ChannelsOutOfRange: kp.outOfRange,
			DependenciesAdded:  kp.added, DependenciesUnresolved: kp.unresolved,
		}
		type versioned struct {
			name string
			kc   *keptChannel
			i    int
		}
		var all []versioned
		seen := map[string]bool{}
		for _, name := range f.keptChannelNames(kp) {
			kc := kp.channels[name]
			pr.Channels = append(pr.Channels, kc.report())
			for i, in := range kc.kept {
				if n := kc.graph.entries[i].Name; in && !seen[n] {
					seen[n] = true
					all = append(all, versioned{n, kc, i})
				}
			}
		}
		slices.SortFunc(all, func(a, b versioned) int {
			return b.kc.graph.versions[b.i].Compare(a.kc.graph.versions[a.i])
		})
		for _, v := range all {
			pr.Bundles = append(pr.Bundles, v.name)
		}
		r.Packages = append(r.Packages, pr)
	}
	slices.SortFunc(r.Packages, func(a, b PackageReport) int { return cmp.Compare(a.Name, b.Name) })
	return r
}

func (kc *keptChannel) report() ChannelReport {
	g := kc.graph
	cr := ChannelReport{Name: g.name, Head: g.entries[kc.head].Name, NoUpgradePath: g.noUpgradePath(kc.kept, kc.head)}
	if kc.bounds.set() {
		cr.VersionRange = kc.bounds.String()
	}
	var kept []int
	for i, in := range kc.kept {
		if in {
			kept = append(kept, i)
		}
	}
	g.byVersionDesc(kept)
	for _, i := range kept {
		cr.Bundles = append(cr.Bundles, g.entries[i].Name)
		if !kc.required[i] {
			cr.KeptForConnectivity = append(cr.KeptForConnectivity, g.entries[i].Name)
		}
	}
	return cr
}

// BundleImage is one image a catalog's bundles need: a bundle image or a
// related image, with every bundle that names it.
type BundleImage struct {
	Image   string        `json:"image"`
	Sources []ImageSource `json:"sources"`
}

// ImageSource is where a BundleImage is named.
type ImageSource struct {
	Package string `json:"package"`
	Bundle  string `json:"bundle"`
	// RelatedImage is the relatedImages entry's name; empty, with
	// BundleImage true, for the bundle's own image.
	RelatedImage string `json:"relatedImage,omitempty"`
	BundleImage  bool   `json:"bundleImage,omitempty"`
}

// BundleImages lists the image of every bundle in cfg and every entry of
// their relatedImages, each image once, sorted, with every place it is
// named in catalog order. Empty image references are left out.
func BundleImages(cfg *declcfg.DeclarativeConfig) []BundleImage {
	if cfg == nil {
		return nil
	}
	at := map[string]int{}
	var out []BundleImage
	add := func(image string, src ImageSource) {
		if image == "" {
			return
		}
		i, ok := at[image]
		if !ok {
			i = len(out)
			at[image] = i
			out = append(out, BundleImage{Image: image})
		}
		out[i].Sources = append(out[i].Sources, src)
	}
	for _, b := range cfg.Bundles {
		add(b.Image, ImageSource{Package: b.Package, Bundle: b.Name, BundleImage: true})
		for _, ri := range b.RelatedImages {
			add(ri.Image, ImageSource{Package: b.Package, Bundle: b.Name, RelatedImage: ri.Name})
		}
	}
	slices.SortFunc(out, func(a, b BundleImage) int { return cmp.Compare(a.Image, b.Image) })
	return out
}
