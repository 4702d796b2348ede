package manifests

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Where a cluster keeps its version and the admin-ack gates of its updates.
const (
	// ClusterVersionName is the one ClusterVersion object.
	ClusterVersionName = "version"
	// AdminAcksConfigMap in AdminAcksNamespace is where the admin gives an
	// ack: a data key set to "true".
	AdminAcksConfigMap = "admin-acks"
	AdminAcksNamespace = "openshift-config"
	// AdminGatesConfigMap in AdminGatesNamespace lists the acks an update
	// may need, each key with the message that explains it.
	AdminGatesConfigMap = "admin-gates"
	AdminGatesNamespace = "openshift-config-managed"
)

// Bounds on what is read of a cluster's mirror configuration. A cluster
// has a few mirror sets of a few dozen sources; these leave a wide margin
// and keep a cluster with runaway objects from filling ferry's memory.
const (
	// mirrorListPage is how many objects one list request asks for.
	mirrorListPage = 100
	// MaxMirrorObjects caps the objects read of each mirror kind.
	MaxMirrorObjects = 1000
)

var (
	clusterVersionResource = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "clusterversions"}
	// mirrorKinds are the kinds whose rules route pulls to mirrors, with
	// their resource and the spec field holding the rules.
	mirrorKinds = []struct {
		kind     string
		resource schema.GroupVersionResource
	}{
		{KindImageDigestMirrorSet, schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "imagedigestmirrorsets"}},
		{KindImageTagMirrorSet, schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "imagetagmirrorsets"}},
		{KindImageContentSourcePolicy, schema.GroupVersionResource{Group: "operator.openshift.io", Version: "v1alpha1", Resource: "imagecontentsourcepolicies"}},
	}
)

// ClusterState is what ferry reads of a cluster to judge an update: each
// part is empty when the cluster lacks it (the kind is not served, or the
// object does not exist), which is not an error.
type ClusterState struct {
	// Version is the ClusterVersion "version"; nil without one.
	Version *ClusterVersion
	// Mirrors are the rules of every ImageDigestMirrorSet, ImageTagMirrorSet
	// and ImageContentSourcePolicy, by kind, then object name, then order.
	Mirrors []MirrorRule
	// AdminAcks is the data of ConfigMap openshift-config/admin-acks, and
	// AdminGates of openshift-config-managed/admin-gates; nil without them.
	AdminAcks  map[string]string
	AdminGates map[string]string
}

// ClusterVersion is the part of config.openshift.io/v1 ClusterVersion
// "version" that says where the cluster is and where it goes.
type ClusterVersion struct {
	// Desired is status.desired.version: the version the cluster runs or
	// is updating to; DesiredImage its release image.
	Desired      string `json:"desired"`
	DesiredImage string `json:"desiredImage,omitempty"`
	// History is status.history, newest first.
	History  []UpdateHistory `json:"history,omitempty"`
	Channel  string          `json:"channel,omitempty"`
	Upstream string          `json:"upstream,omitempty"`
}

// UpdateHistory is one entry of ClusterVersion status.history.
type UpdateHistory struct {
	// State is "Completed" or "Partial".
	State    string `json:"state"`
	Version  string `json:"version"`
	Image    string `json:"image"`
	Verified bool   `json:"verified"`
}

// Completed is the version of the newest update that completed, the one
// every node runs; Desired while none has (a cluster still installing).
func (v *ClusterVersion) Completed() string {
	for _, h := range v.History {
		if h.State == "Completed" && h.Version != "" {
			return h.Version
		}
	}
	return v.Desired
}

// MirrorRule is one source of a mirror object and its mirrors, as the
// cluster has it: host/path names, the source a repository, a namespace,
// a host or "*.domain".
type MirrorRule struct {
	// Kind and Name name the object the rule is in.
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	Source  string   `json:"source"`
	Mirrors []string `json:"mirrors"`
	// MirrorSourcePolicy is the rule's mirrorSourcePolicy
	// (NeverContactSource, or AllowContactingSource when empty).
	MirrorSourcePolicy string `json:"mirrorSourcePolicy,omitempty"`
}

// TagOnly reports whether nodes use the rule's mirrors only for pulls by
// tag (an ImageTagMirrorSet's).
func (r MirrorRule) TagOnly() bool { return r.Kind == KindImageTagMirrorSet }

// ReadCluster reads the ClusterVersion, the mirror configuration and the
// admin-ack ConfigMaps of the cluster.
func (a *Applier) ReadCluster(ctx context.Context) (*ClusterState, error) {
	s := &ClusterState{}
	var err error
	if s.Version, err = a.ReadClusterVersion(ctx); err != nil {
		return nil, err
	}
	if s.Mirrors, err = a.ReadMirrorRules(ctx); err != nil {
		return nil, err
	}
	if s.AdminAcks, err = a.ReadConfigMapData(ctx, AdminAcksNamespace, AdminAcksConfigMap); err != nil {
		return nil, err
	}
	if s.AdminGates, err = a.ReadConfigMapData(ctx, AdminGatesNamespace, AdminGatesConfigMap); err != nil {
		return nil, err
	}
	return s, nil
}

// ReadClusterVersion reads ClusterVersion "version"; nil when the cluster
// has none or does not serve the kind.
func (a *Applier) ReadClusterVersion(ctx context.Context) (*ClusterVersion, error) {
	ref := "ClusterVersion " + ClusterVersionName
	obj, err := a.dynamic.Resource(clusterVersionResource).Get(ctx, ClusterVersionName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, a.explain(err, "reading "+ref)
	}
	var cv struct {
		Spec struct {
			Channel  string `json:"channel"`
			Upstream string `json:"upstream"`
		} `json:"spec"`
		Status struct {
			Desired struct {
				Version string `json:"version"`
				Image   string `json:"image"`
			} `json:"desired"`
			History []UpdateHistory `json:"history"`
		} `json:"status"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &cv); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", ref, a.host, err)
	}
	return &ClusterVersion{Desired: cv.Status.Desired.Version, DesiredImage: cv.Status.Desired.Image,
		History: cv.Status.History, Channel: cv.Spec.Channel, Upstream: cv.Spec.Upstream}, nil
}

// ReadMirrorRules reads the rules of every ImageDigestMirrorSet,
// ImageTagMirrorSet and ImageContentSourcePolicy; a kind the cluster does
// not serve has none.
func (a *Applier) ReadMirrorRules(ctx context.Context) ([]MirrorRule, error) {
	var rules []MirrorRule
	for _, k := range mirrorKinds {
		objs, err := a.listAll(ctx, k.kind, k.resource)
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			r, err := mirrorRules(k.kind, obj)
			if err != nil {
				return nil, fmt.Errorf("%s %s on %s: %w", k.kind, obj.GetName(), a.host, err)
			}
			rules = append(rules, r...)
		}
	}
	return rules, nil
}

// listAll lists every object of a resource (of every namespace, for a
// namespaced one), page by page, up to MaxMirrorObjects; none when the
// resource is not served.
func (a *Applier) listAll(ctx context.Context, kind string, res schema.GroupVersionResource) ([]unstructured.Unstructured, error) {
	return a.listBounded(ctx, kind, res, MaxMirrorObjects, "manifests.MaxMirrorObjects")
}

func (a *Applier) listBounded(ctx context.Context, kind string, res schema.GroupVersionResource, limit int, bound string) ([]unstructured.Unstructured, error) {
	var (
		out   []unstructured.Unstructured
		token string
	)
	for {
		list, err := a.dynamic.Resource(res).List(ctx, metav1.ListOptions{Limit: mirrorListPage, Continue: token})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, a.explain(err, "listing "+kind+"s")
		}
		out = append(out, list.Items...)
		if len(out) > limit {
			return nil, fmt.Errorf("the cluster at %s has more than %d %ss (%s)", a.host, limit, kind, bound)
		}
		if token = list.GetContinue(); token == "" {
			return out, nil
		}
	}
}

// mirrorRules reads the rules of one mirror object.
func mirrorRules(kind string, obj unstructured.Unstructured) ([]MirrorRule, error) {
	type rule struct {
		Source             string   `json:"source"`
		Mirrors            []string `json:"mirrors"`
		MirrorSourcePolicy string   `json:"mirrorSourcePolicy"`
	}
	var o struct {
		Spec struct {
			ImageDigestMirrors      []rule `json:"imageDigestMirrors"`
			ImageTagMirrors         []rule `json:"imageTagMirrors"`
			RepositoryDigestMirrors []rule `json:"repositoryDigestMirrors"`
		} `json:"spec"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &o); err != nil {
		return nil, err
	}
	var in []rule
	switch kind {
	case KindImageDigestMirrorSet:
		in = o.Spec.ImageDigestMirrors
	case KindImageTagMirrorSet:
		in = o.Spec.ImageTagMirrors
	default:
		in = o.Spec.RepositoryDigestMirrors
	}
	out := make([]MirrorRule, 0, len(in))
	for _, r := range in {
		if strings.TrimSpace(r.Source) == "" {
			return nil, fmt.Errorf("a rule without source")
		}
		out = append(out, MirrorRule{Kind: kind, Name: obj.GetName(), Source: r.Source, Mirrors: r.Mirrors, MirrorSourcePolicy: r.MirrorSourcePolicy})
	}
	return out, nil
}

// ReadConfigMapData returns the data of ConfigMap namespace/name; nil when
// it does not exist.
func (a *Applier) ReadConfigMapData(ctx context.Context, namespace, name string) (map[string]string, error) {
	ref := "ConfigMap " + namespace + "/" + name
	cm, err := a.dynamic.Resource(configMaps).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, a.explain(err, "reading "+ref)
	}
	data, _, err := unstructured.NestedStringMap(cm.Object, "data")
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", ref, a.host, err)
	}
	if data == nil {
		data = map[string]string{}
	}
	return data, nil
}
