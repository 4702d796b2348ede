package apply

import (
	"fmt"
	"slices"

	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/trust"
)

// Rendered is what the cluster needs for a set of proven images.
type Rendered struct {
	// Objects are applied to the cluster, in order: the signature
	// ConfigMaps, the ImageDigestMirrorSet and, when an image is pulled by
	// tag, the ImageTagMirrorSet, the
	// CatalogSources and, on request, the OperatorHub that turns the
	// default sources off.
	Objects []manifests.File
	// WhereServed are applied where the cluster serves their kind, and
	// only written elsewhere: the ClusterCatalogs of OLM v1 (OpenShift
	// 4.18 and later), the UpdateService (where its operator runs).
	WhereServed []manifests.File
	// Extra are written beside them, never applied: the install-config
	// snippet and, on request, the legacy ImageContentSourcePolicy.
	Extra []manifests.File
}

// RenderOptions say what to render.
type RenderOptions struct {
	// Name names the mirror sets ("ferry-<name>").
	Name       string
	ConfigMaps []manifests.File
	// Sources are the repositories to route to the mirror; Routes the
	// paths under Target each one's images went to (trust.Report.Routes):
	// a source routes to Target + "/" + path for each path, and to Target
	// itself for "" or when Routes does not name it.
	Sources []string
	Routes  map[string][]string
	// TagRoutes are the paths that hold a source's images under their
	// source tags (trust.Report.TagRoutes): the ImageTagMirrorSet routes
	// pulls by tag of those sources there, and renders nothing without
	// them.
	TagRoutes map[string][]string
	Target    string
	// ICSP adds the legacy ImageContentSourcePolicy.
	ICSP bool
	// Catalogs are the proven operator catalogs, each served from Target
	// by digest.
	Catalogs []trust.Catalog
	// TargetVersion is the OpenShift version the cluster will run, when
	// known: it decides whether OLM extracts a catalog's content itself
	// (manifests.ExtractContentSupported).
	TargetVersion string
	// DisableDefaultSources adds the OperatorHub object that turns the
	// cluster's default (internet) catalog sources off.
	DisableDefaultSources bool
	// GraphData is the proven graph-data image: an UpdateService serves
	// the releases in Target with it.
	GraphData *trust.GraphData
}

// UpdateServiceName names the UpdateService apply renders.
const UpdateServiceName = "ferry"

// Render makes the mirror configuration that routes every proven source
// repository to the repositories its images went to, after the given
// signature ConfigMaps, and the objects that serve each proven operator
// catalog from the mirror.
func Render(o RenderOptions) (*Rendered, error) {
	mirrors, err := manifests.RoutedMirrorSets(o.Name, o.routes())
	if err != nil {
		return nil, err
	}
	r := &Rendered{Objects: append(append([]manifests.File(nil), o.ConfigMaps...), mirrors.Files()...)}
	r.Extra = []manifests.File{{Name: "install-config-snippet.yaml", Data: mirrors.InstallConfig}}
	if o.ICSP {
		r.Extra = append(r.Extra, manifests.File{Name: "icsp-" + mirrors.Name + ".yaml", Data: mirrors.ImageContentSourcePolicy})
	}
	if err := r.addCatalogs(o); err != nil {
		return nil, err
	}
	if g := o.GraphData; g != nil {
		us, err := manifests.UpdateService(UpdateServiceName, manifests.UpdateServiceNamespace, o.Target,
			o.Target+"/"+g.Target+"@"+g.Digest.String(), manifests.DefaultUpdateServiceReplicas)
		if err != nil {
			return nil, err
		}
		r.WhereServed = append(r.WhereServed, manifests.File{Name: "updateservice-" + UpdateServiceName + ".yaml", Data: us})
	}
	return r, nil
}

// routes are the mirror-set routes of o's sources, in the order of their
// paths: the target itself (path "") first; a source pulled by tag has a
// second route, by tag, to the paths that hold its tags.
func (o RenderOptions) routes() []manifests.Route {
	routes := make([]manifests.Route, 0, len(o.Sources))
	for _, s := range o.Sources {
		paths := o.Routes[s]
		if len(paths) == 0 {
			paths = []string{""}
		}
		r := manifests.Route{Source: s}
		for _, p := range slices.Sorted(slices.Values(paths)) {
			r.Mirrors = append(r.Mirrors, MirrorOf(o.Target, p))
		}
		routes = append(routes, r)
		if tagged := o.TagRoutes[s]; len(tagged) > 0 {
			r := manifests.Route{Source: s, ByTag: true}
			for _, p := range slices.Sorted(slices.Values(tagged)) {
				r.Mirrors = append(r.Mirrors, MirrorOf(o.Target, p))
			}
			routes = append(routes, r)
		}
	}
	return routes
}

// MirrorOf is the repository of the target to that holds images listed
// under path: to itself for "".
func MirrorOf(to, path string) string {
	if path == "" {
		return to
	}
	return to + "/" + path
}

// addCatalogs renders a CatalogSource and a ClusterCatalog per catalog,
// named after its source, refusing two catalogs that would share a name.
func (r *Rendered) addCatalogs(o RenderOptions) error {
	names := map[string]string{}
	for _, c := range o.Catalogs {
		name, err := manifests.CatalogSourceName(c.Ref)
		if err != nil {
			return err
		}
		if prior, ok := names[name]; ok {
			return fmt.Errorf("operator catalogs %s and %s would both be named %s: carry them in separate bundles", prior, c.Ref, name)
		}
		names[name] = c.Ref
		image := o.Target + "@" + c.Digest.String()
		cs, err := manifests.CatalogSource(manifests.CatalogSourceOptions{Name: name, Image: image, DisplayName: c.Ref,
			Publisher: "ferry", ConfigsDir: c.ConfigsDir, ExtractContent: manifests.ExtractContentSupported(o.TargetVersion)})
		if err != nil {
			return err
		}
		cc, err := manifests.ClusterCatalog(name, image)
		if err != nil {
			return err
		}
		r.Objects = append(r.Objects, manifests.File{Name: "catalogsource-" + name + ".yaml", Data: cs})
		r.WhereServed = append(r.WhereServed, manifests.File{Name: "clustercatalog-" + name + ".yaml", Data: cc})
	}
	if o.DisableDefaultSources {
		hub, err := manifests.OperatorHubDisableDefaults()
		if err != nil {
			return err
		}
		r.Objects = append(r.Objects, manifests.File{Name: "operatorhub-cluster.yaml", Data: hub})
	}
	return nil
}

// NextSteps are the upgrade commands, one per proven step, in order.
func NextSteps(steps []trust.Step, target string) []string {
	var out []string
	for _, st := range steps {
		out = append(out, fmt.Sprintf("oc adm upgrade --allow-explicit-upgrade --to-image=%s@%s", target, st.Digest))
	}
	return out
}
