package manifests

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "sigs.k8s.io/yaml"
)

const (
	releaseRepo   = "quay.io/openshift-release-dev/ocp-release"
	componentRepo = "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
	mirrorRepo    = "registry.example:5000/ocp4/openshift4"
)

// mirrorObject is the shape shared by the three kinds, read strictly.
type mirrorObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec map[string][]mirror `yaml:"spec"`
}

type mirror struct {
	Source  string   `yaml:"source"`
	Mirrors []string `yaml:"mirrors"`
}

func decodeStrict(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%v in\n%s", err, data)
	}
}

func TestMirrorSets(t *testing.T) {
	m, err := MirrorSets("4.15.0-x86_64", []string{componentRepo, releaseRepo, componentRepo, releaseRepo}, mirrorRepo)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "ferry-4-15-0-x86-64" {
		t.Errorf("name %s", m.Name)
	}
	wantMirrors := []mirror{
		{Source: releaseRepo, Mirrors: []string{mirrorRepo}},
		{Source: componentRepo, Mirrors: []string{mirrorRepo}},
	}
	for _, c := range []struct {
		data                  []byte
		apiVersion, kind, key string
	}{
		{m.ImageDigestMirrorSet, "config.openshift.io/v1", "ImageDigestMirrorSet", "imageDigestMirrors"},
		{m.ImageContentSourcePolicy, "operator.openshift.io/v1alpha1", "ImageContentSourcePolicy", "repositoryDigestMirrors"},
	} {
		var obj mirrorObject
		decodeStrict(t, c.data, &obj)
		if obj.APIVersion != c.apiVersion || obj.Kind != c.kind || obj.Metadata.Name != m.Name {
			t.Errorf("%s: got %s %s %s", c.kind, obj.APIVersion, obj.Kind, obj.Metadata.Name)
		}
		if len(obj.Spec) != 1 || !slices.EqualFunc(obj.Spec[c.key], wantMirrors, mirrorEqual) {
			t.Errorf("%s: spec %+v", c.kind, obj.Spec)
		}
		// kubectl's YAML 1.1 reading agrees.
		var v11 map[string]any
		if err := k8syaml.Unmarshal(c.data, &v11); err != nil || v11["kind"] != c.kind {
			t.Errorf("%s: sigs.k8s.io/yaml: %v %v", c.kind, err, v11["kind"])
		}
	}
	var ic struct {
		ImageDigestSources []mirror `yaml:"imageDigestSources"`
	}
	decodeStrict(t, m.InstallConfig, &ic)
	if !slices.EqualFunc(ic.ImageDigestSources, wantMirrors, mirrorEqual) {
		t.Errorf("install-config: %+v", ic.ImageDigestSources)
	}
	// Releases are pulled by digest: no tag routes, no ImageTagMirrorSet.
	files := m.Files()
	if len(files) != 1 || files[0].Name != "idms-ferry-4-15-0-x86-64.yaml" || string(files[0].Data) != string(m.ImageDigestMirrorSet) ||
		m.ImageTagMirrorSet != nil || len(m.TagRoutes) != 0 {
		t.Errorf("files %+v, tag routes %+v", files, m.TagRoutes)
	}
}

// TestMirrorSetsByTag: an image named by tag routes its source in the
// ImageTagMirrorSet to the mirrors that hold its tag, and only there; a
// digest-only source stays out of it; the digest forms route both.
func TestMirrorSetsByTag(t *testing.T) {
	const toolRepo, pinnedRepo = "registry.example/extras/tool", "registry.example/extras/pinned"
	m, err := RoutedMirrorSets("x", []Route{
		{Source: releaseRepo, Mirrors: []string{mirrorRepo}},
		{Source: toolRepo, Mirrors: []string{mirrorRepo + "/extras/tool"}, ByTag: true},
		{Source: toolRepo, Mirrors: []string{mirrorRepo}},
		{Source: pinnedRepo, Mirrors: []string{mirrorRepo + "/extras/pinned"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var itms, idms mirrorObject
	decodeStrict(t, m.ImageTagMirrorSet, &itms)
	decodeStrict(t, m.ImageDigestMirrorSet, &idms)
	if itms.Kind != KindImageTagMirrorSet || itms.APIVersion != ConfigAPIVersion || itms.Metadata.Name != "ferry-x" {
		t.Errorf("tag mirror set %s %s %s", itms.APIVersion, itms.Kind, itms.Metadata.Name)
	}
	wantTag := []mirror{{Source: toolRepo, Mirrors: []string{mirrorRepo + "/extras/tool"}}}
	if !slices.EqualFunc(itms.Spec["imageTagMirrors"], wantTag, mirrorEqual) || len(itms.Spec) != 1 {
		t.Errorf("imageTagMirrors %+v, want %+v", itms.Spec, wantTag)
	}
	wantDigest := []mirror{
		{Source: releaseRepo, Mirrors: []string{mirrorRepo}},
		{Source: pinnedRepo, Mirrors: []string{mirrorRepo + "/extras/pinned"}},
		{Source: toolRepo, Mirrors: []string{mirrorRepo + "/extras/tool", mirrorRepo}},
	}
	if !slices.EqualFunc(idms.Spec["imageDigestMirrors"], wantDigest, mirrorEqual) {
		t.Errorf("imageDigestMirrors %+v, want %+v", idms.Spec, wantDigest)
	}
	files := m.Files()
	if len(files) != 2 || files[1].Name != "itms-ferry-x.yaml" || string(files[1].Data) != string(m.ImageTagMirrorSet) {
		t.Errorf("files %+v", files)
	}
}

func mirrorEqual(a, b mirror) bool {
	return a.Source == b.Source && slices.Equal(a.Mirrors, b.Mirrors)
}

func TestMirrorSetsDoNotChangeTheirInput(t *testing.T) {
	in := []string{componentRepo, releaseRepo, componentRepo}
	if _, err := MirrorSets("x", in, mirrorRepo); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in, []string{componentRepo, releaseRepo, componentRepo}) {
		t.Errorf("input changed: %v", in)
	}
}

func TestMirrorSetName(t *testing.T) {
	for id, want := range map[string]string{
		"4.15.0-x86_64":                    "ferry-4-15-0-x86-64",
		"0123456789abcdef0123456789abcdef": "ferry-0123456789abcdef0123456789abcdef",
		"ferry-abc":                        "ferry-abc",
		"FERRY-Upper":                      "ferry-ferry-upper",
		"--a__b..c--":                      "ferry-a-b-c",
		"ünïcode 4.16":                     "ferry-n-code-4-16",
		strings.Repeat("a", 70):            "ferry-" + strings.Repeat("a", 57),
		strings.Repeat("a", 56) + "-b":     "ferry-" + strings.Repeat("a", 56),
	} {
		got, err := MirrorSetName(id)
		if err != nil {
			t.Errorf("%q: %v", id, err)
			continue
		}
		if got != want {
			t.Errorf("%q: got %q, want %q", id, got, want)
		}
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Errorf("%q: %q: %v", id, got, errs)
		}
	}
	for _, id := range []string{"", "ferry-", "...", "ü"} {
		if got, err := MirrorSetName(id); err == nil {
			t.Errorf("%q: got %q, want an error", id, got)
		}
	}
}

func TestMirrorSetsRefuse(t *testing.T) {
	for what, c := range map[string]struct {
		id      string
		sources []string
		target  string
	}{
		"no sources":             {"x", nil, mirrorRepo},
		"bad id":                 {"", []string{releaseRepo}, mirrorRepo},
		"source with tag":        {"x", []string{releaseRepo + ":4.15.0-x86_64"}, mirrorRepo},
		"source with digest":     {"x", []string{releaseRepo + "@sha256:" + strings.Repeat("ab", 32)}, mirrorRepo},
		"source not qualified":   {"x", []string{"ubuntu"}, mirrorRepo},
		"source with scheme":     {"x", []string{"https://" + releaseRepo}, mirrorRepo},
		"target with tag":        {"x", []string{releaseRepo}, mirrorRepo + ":latest"},
		"target empty":           {"x", []string{releaseRepo}, ""},
		"target upper case path": {"x", []string{releaseRepo}, "registry.example/OCP"},
	} {
		if _, err := MirrorSets(c.id, c.sources, c.target); err == nil {
			t.Errorf("%s: no error", what)
		}
	}
}

// TestRoutedMirrorSets: each source goes to its own mirrors, the same in
// every form; a source given twice gets the mirrors of both, in order.
func TestRoutedMirrorSets(t *testing.T) {
	const toolRepo, otherRepo = "registry.example/extras/tool", "quay.io/org/both"
	m, err := RoutedMirrorSets("x", []Route{
		{Source: toolRepo, Mirrors: []string{mirrorRepo + "/extras/tool"}},
		{Source: releaseRepo, Mirrors: []string{mirrorRepo}},
		{Source: otherRepo, Mirrors: []string{mirrorRepo}},
		{Source: otherRepo, Mirrors: []string{mirrorRepo + "/org/both", mirrorRepo}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []mirror{
		{Source: releaseRepo, Mirrors: []string{mirrorRepo}},
		{Source: otherRepo, Mirrors: []string{mirrorRepo, mirrorRepo + "/org/both"}},
		{Source: toolRepo, Mirrors: []string{mirrorRepo + "/extras/tool"}},
	}
	for key, data := range map[string][]byte{"imageDigestMirrors": m.ImageDigestMirrorSet,
		"repositoryDigestMirrors": m.ImageContentSourcePolicy} {
		var obj mirrorObject
		decodeStrict(t, data, &obj)
		if !slices.EqualFunc(obj.Spec[key], want, mirrorEqual) {
			t.Errorf("%s: %+v", key, obj.Spec[key])
		}
	}
	var ic struct {
		ImageDigestSources []mirror `yaml:"imageDigestSources"`
	}
	decodeStrict(t, m.InstallConfig, &ic)
	if !slices.EqualFunc(ic.ImageDigestSources, want, mirrorEqual) {
		t.Errorf("install-config: %+v", ic.ImageDigestSources)
	}
	if !slices.Equal(m.Sources, []string{releaseRepo, otherRepo, toolRepo}) {
		t.Errorf("sources %v", m.Sources)
	}
}

// TestMirrorSetsAreOneRoute: MirrorSets is RoutedMirrorSets with one
// mirror for every source, byte for byte.
func TestMirrorSetsAreOneRoute(t *testing.T) {
	one, err := MirrorSets("x", []string{componentRepo, releaseRepo}, mirrorRepo)
	if err != nil {
		t.Fatal(err)
	}
	routed, err := RoutedMirrorSets("x", []Route{{Source: componentRepo, Mirrors: []string{mirrorRepo}}, {Source: releaseRepo, Mirrors: []string{mirrorRepo}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2][]byte{{one.ImageDigestMirrorSet, routed.ImageDigestMirrorSet},
		{one.ImageContentSourcePolicy, routed.ImageContentSourcePolicy}, {one.InstallConfig, routed.InstallConfig}} {
		if string(pair[0]) != string(pair[1]) {
			t.Errorf("MirrorSets:\n%s\nRoutedMirrorSets:\n%s", pair[0], pair[1])
		}
	}
}

func TestRoutedMirrorSetsRefuse(t *testing.T) {
	for what, routes := range map[string][]Route{
		"no routes":         nil,
		"no mirror":         {{Source: releaseRepo}},
		"mirror with tag":   {{Source: releaseRepo, Mirrors: []string{mirrorRepo, mirrorRepo + "/x:latest"}}},
		"mirror empty":      {{Source: releaseRepo, Mirrors: []string{""}}},
		"source not named":  {{Source: "ubuntu", Mirrors: []string{mirrorRepo}}},
		"mirror upper case": {{Source: releaseRepo, Mirrors: []string{mirrorRepo + "/Tool"}}},
	} {
		if _, err := RoutedMirrorSets("x", routes); err == nil {
			t.Errorf("%s: no error", what)
		}
	}
}
