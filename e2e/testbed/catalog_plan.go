package testbed

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// pkgPlan is one package of the test-bed catalog before its images exist.
type pkgPlan struct {
	name, defaultChannel string
	// ns is the registry namespace of its images (aurora/...).
	ns string
	// bundleName names its bundle of a version, in the package's style.
	bundleName func(version string) string
	// provides is the kind its bundles own: the olm.gvk value.
	provides json.RawMessage
	bundles  []bundlePlan
	channels []channelPlan
	// deprecations are its olm.deprecations entries; nil for none.
	deprecations []declcfg.DeprecationEntry
	// layout says in which file each of its documents goes.
	layout fileLayout
}

type bundlePlan struct {
	version string
	// maxOpenShift is the olm.maxOpenShiftVersion value as JSON; "" for
	// none. maxOpenShiftYAML, when set, is how a YAML file spells it
	// (4.20 for the JSON 4.2 that YAML reads it as).
	maxOpenShift, maxOpenShiftYAML string
	requires                       []property.Property
	related                        []relatedPlan
}

// relatedPlan is one relatedImages entry besides the bundle itself. Two
// entries with the same repo and variant are one image.
type relatedPlan struct {
	name, repo, variant string
	tag                 string // named by this tag rather than by digest
	signed              bool   // signed under CatalogOptions.Sigstore
}

type channelPlan struct {
	name    string
	entries []entryPlan
}

type entryPlan struct {
	version, replaces string
	skips             []string
	skipRange         string
}

// fileLayout splits a package's documents into files, as real catalogs
// do in many ways.
type fileLayout int

const (
	layoutJSON             fileLayout = iota // catalog.json: everything
	layoutYAML                               // catalog.yaml: everything
	layoutJSONDeprecations                   // catalog.json, deprecations.yaml
	layoutYAMLSplit                          // package.yaml (package, channels, deprecations), bundles/<name>.yaml
)

// catalogPlan is the test-bed catalog; BuildCatalog's doc describes it.
func catalogPlan() []pkgPlan {
	return []pkgPlan{auroraPlan(), borealisPlan(), cygnusPlan(), doradoPlan()}
}

func catalogPackageNames() []string {
	var out []string
	for _, p := range catalogPlan() {
		out = append(out, p.name)
	}
	return out
}

// vName is the usual bundle name: <package>.v<version>.
func vName(pkg string) func(string) string {
	return func(v string) string { return pkg + ".v" + v }
}

// operatorAndOperand are the related images of a bundle of ns's operator
// at version, whose operand is the image variant operand.
func operatorAndOperand(ns, version, operand string) []relatedPlan {
	return []relatedPlan{
		{name: ns + "-operator", repo: ns + "/" + ns + "-rhel9-operator", variant: version, signed: true},
		{name: ns + "-operand", repo: ns + "/" + ns + "-rhel9", variant: operand},
	}
}

func auroraPlan() pkgPlan {
	ns := "aurora"
	b := func(version, operand, maxOCP string) bundlePlan {
		return bundlePlan{version: version, maxOpenShift: maxOCP, related: operatorAndOperand(ns, version, operand)}
	}
	return pkgPlan{
		name: CatalogPackageAurora, defaultChannel: "stable", ns: ns, bundleName: vName(CatalogPackageAurora),
		provides: rawJSON(`{"group":"aurora.example.com","kind":"Aurora","version":"v1"}`),
		bundles: []bundlePlan{
			b("1.0.0", "1.0", `"4.16"`),
			b("1.1.0", "1.1", `"4.16"`),
			b("1.1.1", "1.1", ""),
			b("1.2.0", "1.2", ""),
			b("2.0.0", "2.0", ""),
		},
		channels: []channelPlan{
			{name: "stable", entries: []entryPlan{
				{version: "1.0.0"},
				{version: "1.1.0", replaces: "1.0.0"},
				{version: "1.1.1", replaces: "1.1.0"},
				{version: "1.2.0", replaces: "1.1.0", skips: []string{"1.1.1"}},
			}},
			{name: "fast", entries: []entryPlan{
				{version: "1.1.1"},
				{version: "1.2.0", replaces: "1.1.1"},
				{version: "2.0.0", replaces: "1.2.0", skipRange: ">=1.0.0 <2.0.0"},
			}},
		},
		layout: layoutJSON,
	}
}

func borealisPlan() pkgPlan {
	ns := "borealis"
	// Versions as Red Hat stamps its own operators': the OpenShift
	// minor, then the build time as a prerelease.
	const (
		v413  = "4.13.0-202309181427"
		v414a = "4.14.0-202310201027"
		v414b = "4.14.0-202311021650"
		v415  = "4.15.0-202402011532"
	)
	b := func(version, maxOCP, maxYAML string) bundlePlan {
		return bundlePlan{version: version, maxOpenShift: maxOCP, maxOpenShiftYAML: maxYAML, related: operatorAndOperand(ns, version, version)}
	}
	stable := []entryPlan{
		{version: v413, skipRange: ">=4.12.0 <" + v413},
		{version: v414a, replaces: v413, skipRange: ">=4.13.0 <" + v414a},
		{version: v414b, replaces: v413, skips: []string{v414a}, skipRange: ">=4.11.0 <" + v414b},
	}
	return pkgPlan{
		name: CatalogPackageBorealis, defaultChannel: "fast", ns: ns,
		// Named like Red Hat's descheduler: no ".v", no dash.
		bundleName: func(v string) string { return "borealisoperator." + v },
		provides:   rawJSON(`{"group":"borealis.example.com","kind":"Borealis","version":"v1"}`),
		bundles: []bundlePlan{
			b(v413, `"4.15"`, ""),
			b(v414a, `4.2`, `4.20`),
			b(v414b, "", ""),
			b(v415, "", ""),
		},
		channels: []channelPlan{
			{name: "stable", entries: stable},
			{name: "fast", entries: slices.Concat(stable, []entryPlan{
				{version: v415, replaces: v414b, skipRange: ">=4.14.0 <" + v415},
			})},
		},
		layout: layoutYAML,
	}
}

func cygnusPlan() pkgPlan {
	ns := "cygnus"
	name := vName(CatalogPackageCygnus)
	needsAurora := property.Property{Type: property.TypePackageRequired,
		Value: rawJSON(`{"packageName":%q,"versionRange":">=1.1.0 <2.0.0"}`, CatalogPackageAurora)}
	needsBorealis := property.Property{Type: property.TypeGVKRequired,
		Value: rawJSON(`{"group":"borealis.example.com","kind":"Borealis","version":"v1"}`)}
	operator := func(v string) relatedPlan {
		return relatedPlan{name: ns + "-operator", repo: ns + "/" + ns + "-rhel9-operator", variant: v, signed: true}
	}
	proxy := relatedPlan{name: "kube-rbac-proxy", repo: ns + "/kube-rbac-proxy", variant: "v0.15.0", tag: "v0.15.0"}
	return pkgPlan{
		name: CatalogPackageCygnus, defaultChannel: "stable", ns: ns, bundleName: name,
		provides: rawJSON(`{"group":"cygnus.example.com","kind":"Cygnus","version":"v1alpha1"}`),
		bundles: []bundlePlan{
			{version: "0.9.0", related: []relatedPlan{operator("0.9.0")}},
			{version: "1.0.0", requires: []property.Property{needsAurora}, related: []relatedPlan{operator("1.0.0"), proxy}},
			{version: "1.1.0", requires: []property.Property{needsAurora, needsBorealis}, related: []relatedPlan{operator("1.1.0"), proxy}},
		},
		channels: []channelPlan{
			{name: "alpha", entries: []entryPlan{{version: "0.9.0"}, {version: "1.0.0", replaces: "0.9.0"}}},
			{name: "stable", entries: []entryPlan{{version: "1.0.0"}, {version: "1.1.0", replaces: "1.0.0"}}},
		},
		deprecations: []declcfg.DeprecationEntry{
			{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaChannel, Name: "alpha"}, Message: "channel alpha is no longer updated; use stable\n"},
			{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaBundle, Name: name("0.9.0")}, Message: "cygnus-operator 0.9.0 loses data on upgrade; move to 1.0.0\n"},
		},
		layout: layoutJSONDeprecations,
	}
}

func doradoPlan() pkgPlan {
	ns := "dorado"
	operator := func(v string) []relatedPlan {
		return []relatedPlan{{name: ns + "-operator", repo: ns + "/" + ns + "-rhel9-operator", variant: v, signed: true}}
	}
	return pkgPlan{
		name: CatalogPackageDorado, defaultChannel: "stable", ns: ns, bundleName: vName(CatalogPackageDorado),
		provides: rawJSON(`{"group":"dorado.example.com","kind":"Dorado","version":"v1"}`),
		bundles: []bundlePlan{
			{version: "3.0.0", related: operator("3.0.0")},
			{version: "3.0.1", related: operator("3.0.1")},
		},
		channels: []channelPlan{
			{name: "stable", entries: []entryPlan{{version: "3.0.0"}, {version: "3.0.1", skips: []string{"3.0.0"}}}},
		},
		deprecations: []declcfg.DeprecationEntry{
			{Reference: declcfg.PackageScopedReference{Schema: declcfg.SchemaPackage}, Message: "dorado-operator is end of life; its features moved to aurora-operator\n"},
		},
		layout: layoutYAMLSplit,
	}
}

// rawJSON is a property value written out, as encoding/json would not:
// it escapes the < and > of version ranges.
func rawJSON(format string, args ...any) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(format, args...))
}
