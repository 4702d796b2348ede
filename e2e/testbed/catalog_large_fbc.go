package testbed

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/opencontainers/go-digest"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// propertyBundleObject is the property that carries one of a bundle's
// manifests, base64 in {"data": ...}.
const propertyBundleObject = property.TypeBundleObject

// largeGen writes one package's FBC: the plans of all packages (for
// dependencies), its profile (the text and objects its bundles share) and
// where images are named.
type largeGen struct {
	p       *largePackage
	plans   []*largePackage
	prof    *largeProfile
	seed    int64
	refHost string
	// crds caches each CRD's JSON by kind and minor: bundles of one minor
	// carry the same CRDs, as real ones mostly do.
	crds map[string][]byte
	err  error
}

// fbc is the package's FBC, every list in the order opm writes it.
func (p *largePackage) fbc(plans []*largePackage, seed int64, refHost string) (declcfg.DeclarativeConfig, error) {
	g := &largeGen{p: p, plans: plans, prof: newLargeProfile(seed, p), seed: seed, refHost: refHost, crds: map[string][]byte{}}
	cfg := declcfg.DeclarativeConfig{Packages: []declcfg.Package{{
		Schema: declcfg.SchemaPackage, Name: p.name, DefaultChannel: g.defaultChannel(),
		Icon:        &declcfg.Icon{Data: g.prof.icon, MediaType: "image/png"},
		Description: g.prof.summary,
	}}}
	cfg.Channels = g.channels()
	for k := range p.versions {
		cfg.Bundles = append(cfg.Bundles, g.bundle(k))
	}
	if p.minorChannels >= 2 {
		cfg.Deprecations = []declcfg.Deprecation{{
			Schema: declcfg.SchemaDeprecation, Package: p.name,
			Entries: []declcfg.DeprecationEntry{{
				Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaChannel, Name: g.minorChannel(len(p.minors) - p.minorChannels)},
				Message:   fmt.Sprintf("%s %s is no longer supported; move to a newer channel.\n", p.name, p.minorNames[len(p.minors)-p.minorChannels]),
			}},
		}}
	}
	return cfg, g.err
}

func (g *largeGen) minorChannel(m int) string { return "stable-" + g.p.minorNames[m] }

func (g *largeGen) defaultChannel() string {
	if g.p.defaultNewest {
		return g.minorChannel(len(g.p.minors) - 1)
	}
	return "stable"
}

// channels are stable, every bundle with its skips and skipRanges, then a
// chain per newest minor.
func (g *largeGen) channels() []declcfg.Channel {
	p := g.p
	stable := declcfg.Channel{Schema: declcfg.SchemaChannel, Package: p.name, Name: "stable"}
	for k, v := range p.versions {
		e := declcfg.ChannelEntry{Name: p.bundleName(v), SkipRange: p.skipRange(k)}
		switch {
		case k%4 == 3:
			// Skips the one before, which stays reachable as skipped.
			e.Replaces, e.Skips = p.bundleName(p.versions[k-2]), []string{p.bundleName(p.versions[k-1])}
		case k > 0:
			e.Replaces = p.bundleName(p.versions[k-1])
		}
		stable.Entries = append(stable.Entries, e)
	}
	out := []declcfg.Channel{stable}
	for m := len(p.minors) - p.minorChannels; m < len(p.minors); m++ {
		ch := declcfg.Channel{Schema: declcfg.SchemaChannel, Package: p.name, Name: g.minorChannel(m)}
		for k := p.minors[m][0]; k < p.minors[m][1]; k++ {
			e := declcfg.ChannelEntry{Name: p.bundleName(p.versions[k])}
			if k == p.minors[m][0] {
				e.SkipRange = p.skipRange(k)
			} else {
				e.Replaces = p.bundleName(p.versions[k-1])
			}
			ch.Entries = append(ch.Entries, e)
		}
		out = append(out, ch)
	}
	return out
}

// bundle is the bundle at index k with its properties and images.
func (g *largeGen) bundle(k int) declcfg.Bundle {
	p := g.p
	v := p.versions[k]
	m := p.minorOf(k)
	images := g.images(k, m)
	var props []property.Property
	add := func(v any) {
		prop, err := property.Build(v)
		if err != nil && g.err == nil {
			g.err = fmt.Errorf("package %s: %w", p.name, err)
		}
		if err == nil {
			props = append(props, *prop)
		}
	}
	for _, kd := range p.kinds {
		add(&property.GVK{Group: kd.group, Kind: kd.kind, Version: kd.version})
	}
	add(&property.Package{PackageName: p.name, Version: v})
	if d := p.requiresPackage; d >= 0 {
		add(&property.PackageRequired{PackageName: g.plans[d].name, VersionRange: ">=" + g.plans[d].versions[0]})
	}
	if d := p.requiresAPI; d >= 0 {
		kd := g.plans[d].kinds[0]
		add(&property.GVKRequired{Group: kd.group, Kind: kd.kind, Version: kd.version})
	}
	if p.prerelease && m < len(p.minors)-1 {
		props = append(props, property.Property{Type: maxOpenShiftVersionProperty, Value: rawJSON(`"4.%d"`, 11+m+2)})
	}
	add(&property.BundleObject{Data: g.csv(k, images)})
	for _, kd := range p.kinds {
		add(&property.BundleObject{Data: g.crd(kd, m)})
	}
	b := declcfg.Bundle{Schema: declcfg.SchemaBundle, Name: p.bundleName(v), Package: p.name, Image: images[0].Image, Properties: props}
	b.RelatedImages = images
	return b
}

// images are the bundle's relatedImages: itself (named ""), its operator,
// its operands (the same for every bundle of a minor), by digest.
func (g *largeGen) images(k, m int) []declcfg.RelatedImage {
	p := g.p
	v := p.versions[k]
	out := []declcfg.RelatedImage{
		{Name: "", Image: g.imageRef(p.ns+"/"+p.ns+"-operator-bundle", v)},
		{Name: p.ns + "-operator", Image: g.imageRef(p.ns+"/"+p.ns+"-rhel9-operator", v)},
	}
	for _, repo := range p.operands {
		out = append(out, declcfg.RelatedImage{Name: repo[len(p.ns)+1:], Image: g.imageRef(repo, p.minorNames[m])})
	}
	return out
}

// imageRef names an image by a digest drawn from the seed: none is pushed.
func (g *largeGen) imageRef(repo, variant string) string {
	seed := seedFor(g.seed, "large-catalog", "image", repo, variant)
	d := digest.NewDigestFromBytes(digest.SHA256, sha256Of(seed[:]))
	return g.refHost + "/" + repo + "@" + d.String()
}

func sha256Of(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// crd is the JSON of kd's CRD as the bundles of minor m carry it: each
// minor adds a field.
func (g *largeGen) crd(kd largeKind, m int) []byte {
	key := kd.kind + "/" + strconv.Itoa(m)
	if data, ok := g.crds[key]; ok {
		return data
	}
	data, err := json.Marshal(g.prof.crd(kd, kd.fields+m))
	if err != nil && g.err == nil {
		g.err = fmt.Errorf("package %s: CRD %s: %w", g.p.name, kd.kind, err)
	}
	g.crds[key] = data
	return data
}

// csv is the JSON of the bundle's ClusterServiceVersion.
func (g *largeGen) csv(k int, images []declcfg.RelatedImage) []byte {
	doc, err := g.prof.csv(g.p, k, images)
	var data []byte
	if err == nil {
		data, err = json.Marshal(doc)
	}
	if err != nil && g.err == nil {
		g.err = fmt.Errorf("package %s: CSV: %w", g.p.name, err)
	}
	return data
}

// newLargeProfile draws what p's bundles share from its own seed, so that
// packages can be written in any order.
func newLargeProfile(seed int64, p *largePackage) *largeProfile {
	r := rand.New(rand.NewChaCha8(seedFor(seed, "large-catalog", "profile", p.name)))
	return drawProfile(r, p)
}
