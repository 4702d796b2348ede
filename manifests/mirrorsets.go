package manifests

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"gopkg.in/yaml.v3"
)

// Kinds and API versions of the mirror configuration ferry renders.
const (
	ConfigAPIVersion             = "config.openshift.io/v1"
	OperatorAPIVersion           = "operator.openshift.io/v1alpha1"
	KindImageDigestMirrorSet     = "ImageDigestMirrorSet"
	KindImageTagMirrorSet        = "ImageTagMirrorSet"
	KindImageContentSourcePolicy = "ImageContentSourcePolicy"

	// NamePrefix starts the name of every mirror set ferry renders.
	NamePrefix = "ferry-"
	// maxNameLength is a DNS-1123 label's limit, which also satisfies the
	// subdomain rule that cluster-scoped object names follow.
	maxNameLength = 63
)

// MirrorConfig is the mirror configuration for one mirror registry: every
// source repository mapped to the mirror repositories that hold its images
// (SPEC §5), typically the one target repository. Each []byte field is a
// complete YAML document.
type MirrorConfig struct {
	// Name is the objects' name: "ferry-<id>", a valid DNS-1123 label.
	Name string
	// Sources are the source repositories, sorted and without duplicates.
	Sources []string
	// Routes are the sources with their mirrors, in the order of Sources;
	// TagRoutes those of them pulled by tag too, with the mirrors that
	// hold their tags (Route.ByTag), in the same order.
	Routes    []Route
	TagRoutes []Route

	// ImageDigestMirrorSet (config.openshift.io/v1) serves pulls by digest,
	// which is how the cluster pulls release and component images (4.13+).
	ImageDigestMirrorSet []byte
	// ImageTagMirrorSet (config.openshift.io/v1) serves pulls by tag
	// (4.13+) of the TagRoutes; nil when there are none.
	ImageTagMirrorSet []byte
	// ImageContentSourcePolicy (operator.openshift.io/v1alpha1) is the legacy
	// form for clusters older than 4.13. Do not apply it beside the mirror
	// sets: newer clusters refuse to use both kinds at once.
	ImageContentSourcePolicy []byte
	// InstallConfig is the `imageDigestSources:` snippet for install-config.yaml.
	InstallConfig []byte
}

// File is a manifest and the file name it is written under.
type File struct {
	Name string
	Data []byte
}

// Files are the manifests for a 4.13+ cluster, ImageDigestMirrorSet and,
// when some source is pulled by tag, ImageTagMirrorSet, named
// "idms-<name>.yaml" and "itms-<name>.yaml".
func (m *MirrorConfig) Files() []File {
	files := []File{{Name: "idms-" + m.Name + ".yaml", Data: m.ImageDigestMirrorSet}}
	if m.ImageTagMirrorSet != nil {
		files = append(files, File{Name: "itms-" + m.Name + ".yaml", Data: m.ImageTagMirrorSet})
	}
	return files
}

// Route sends pulls of one source repository to its mirror repositories,
// tried in order.
type Route struct {
	Source  string
	Mirrors []string
	// ByTag says the mirrors hold the source's images under their source
	// tags too (an image named by tag, pushed with it), so that the
	// ImageTagMirrorSet routes pulls by tag there. A digest pull finds
	// an image whatever its tag; a tag pull finds it only under the tag
	// it had, so only such routes serve tags.
	ByTag bool
}

// MirrorSets renders the mirror configuration that sends pulls by digest
// of every repository in sources to target: RoutedMirrorSets with one
// mirror for all and no tag routes.
func MirrorSets(id string, sources []string, target string) (*MirrorConfig, error) {
	routes := make([]Route, len(sources))
	for i, s := range sources {
		routes[i] = Route{Source: s, Mirrors: []string{target}}
	}
	return RoutedMirrorSets(id, routes)
}

// RoutedMirrorSets renders the mirror configuration that sends pulls of
// each route's source to its mirrors. id names the objects "ferry-<id>" (a
// leading "ferry-" is not repeated) after turning it into a DNS-1123 label;
// it is typically the release version or the bundle id. Sources and mirrors
// must be fully qualified repositories without tag or digest; sources are
// sorted, and a source given twice gets the mirrors of both, each once, in
// the order given. Every route serves pulls by digest; the ByTag ones also
// serve pulls by tag, in the ImageTagMirrorSet.
func RoutedMirrorSets(id string, routes []Route) (*MirrorConfig, error) {
	name, err := MirrorSetName(id)
	if err != nil {
		return nil, err
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("mirror sets %s: no source repositories", name)
	}
	mirrors, tagMirrors := map[string][]string{}, map[string][]string{}
	for _, r := range routes {
		if err := checkRepository(r.Source); err != nil {
			return nil, fmt.Errorf("mirror source: %w", err)
		}
		if len(r.Mirrors) == 0 {
			return nil, fmt.Errorf("mirror source %s: no mirror", r.Source)
		}
		for _, target := range r.Mirrors {
			if err := checkRepository(target); err != nil {
				return nil, fmt.Errorf("mirror target: %w", err)
			}
			mirrors[r.Source] = appendNew(mirrors[r.Source], target)
			if r.ByTag {
				tagMirrors[r.Source] = appendNew(tagMirrors[r.Source], target)
			}
		}
	}
	m := &MirrorConfig{Name: name}
	for _, s := range slices.Sorted(maps.Keys(mirrors)) {
		m.Sources = append(m.Sources, s)
		m.Routes = append(m.Routes, Route{Source: s, Mirrors: mirrors[s]})
		if t, ok := tagMirrors[s]; ok {
			m.TagRoutes = append(m.TagRoutes, Route{Source: s, Mirrors: t, ByTag: true})
		}
	}
	if m.ImageDigestMirrorSet, err = render(m.object(ConfigAPIVersion, KindImageDigestMirrorSet, "imageDigestMirrors", m.Routes)); err != nil {
		return nil, err
	}
	if len(m.TagRoutes) > 0 {
		if m.ImageTagMirrorSet, err = render(m.object(ConfigAPIVersion, KindImageTagMirrorSet, "imageTagMirrors", m.TagRoutes)); err != nil {
			return nil, err
		}
	}
	if m.ImageContentSourcePolicy, err = render(m.object(OperatorAPIVersion, KindImageContentSourcePolicy, "repositoryDigestMirrors", m.Routes)); err != nil {
		return nil, err
	}
	if m.InstallConfig, err = render(mapping("imageDigestSources", mirrorList(m.Routes))); err != nil {
		return nil, err
	}
	return m, nil
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func (m *MirrorConfig) object(apiVersion, kind, listField string, routes []Route) *yaml.Node {
	return mapping(
		"apiVersion", apiVersion,
		"kind", kind,
		"metadata", mapping("name", m.Name),
		"spec", mapping(listField, mirrorList(routes)),
	)
}

// mirrorList is the list every form shares: [{source, mirrors: [...]}].
func mirrorList(routes []Route) *yaml.Node {
	list := sequence()
	for _, r := range routes {
		targets := sequence()
		for _, target := range r.Mirrors {
			targets.Content = append(targets.Content, str(target))
		}
		list.Content = append(list.Content, mapping(
			"source", r.Source,
			"mirrors", targets,
		))
	}
	return list
}

// MirrorSetName is the object name MirrorSets uses for id: "ferry-"
// and id, lower-cased, with every run of characters outside [a-z0-9] turned
// into one "-", cut to 63 characters, starting and ending alphanumeric.
func MirrorSetName(id string) (string, error) {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimPrefix(id, NamePrefix)) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("mirror set name from %q: no letters or digits", id)
	}
	name := NamePrefix + b.String()
	if len(name) > maxNameLength {
		name = strings.TrimRight(name[:maxNameLength], "-")
	}
	return name, nil
}

// checkRepository accepts a fully qualified repository name, like
// "quay.io/openshift-release-dev/ocp-release", without tag or digest.
func checkRepository(s string) error {
	named, err := reference.ParseNamed(s)
	if err != nil {
		return fmt.Errorf("%q is not a fully qualified repository: %w", s, err)
	}
	if !reference.IsNameOnly(named) {
		return fmt.Errorf("%q: want a repository without tag or digest", s)
	}
	return nil
}
