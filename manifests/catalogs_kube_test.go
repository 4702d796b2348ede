package manifests_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
)

var (
	catalogSources  = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "catalogsources"}
	clusterCatalogs = schema.GroupVersionResource{Group: "olm.operatorframework.io", Version: "v1", Resource: "clustercatalogs"}
	operatorHubs    = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "operatorhubs"}
)

// TestKubeCatalogs applies the catalog objects with the Applier to a real
// kube-apiserver whose CatalogSource, ClusterCatalog and OperatorHub CRDs
// carry the real field names and rules (e2e/testbed/kube_olm.go), so a
// misspelled or mistyped field is refused as on a cluster.
func TestKubeCatalogs(t *testing.T) {
	k := testbed.StartKube(t)
	k.CreateNamespace(t, manifests.MarketplaceNamespace)
	k.InstallOpenShiftCRDs(t)
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(k.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	a, err := manifests.NewApplier(k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}

	const pullSpec = "registry.redhat.io/redhat/redhat-operator-index:v4.20"
	image := "registry.example:5000/ocp4/openshift4@sha256:" + strings.Repeat("5e", 32)
	name, err := manifests.CatalogSourceName(pullSpec)
	if err != nil {
		t.Fatal(err)
	}
	extracted := catalogSource(t, manifests.CatalogSourceOptions{
		Name: name, Image: image, DisplayName: "Red Hat Operators", Publisher: "Red Hat",
		ExtractContent: true, ConfigsDir: "/configs",
	})
	cc, err := manifests.ClusterCatalog(name, image)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := manifests.OperatorHubDisableDefaults()
	if err != nil {
		t.Fatal(err)
	}

	// An administrator's OperatorHub entries, which ferry's apply must keep.
	_, err = dyn.Resource(operatorHubs).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "config.openshift.io/v1", "kind": "OperatorHub",
		"metadata": map[string]any{"name": "cluster"},
		"spec":     map[string]any{"sources": []any{map[string]any{"name": "community-operators", "disabled": false}}},
	}}, metav1.CreateOptions{FieldManager: "admin"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("create", func(t *testing.T) {
		results, err := a.Apply(ctx, [][]byte{extracted, cc, hub})
		if err != nil {
			t.Fatal(err)
		}
		checkResults(t, results, []manifests.Result{
			{Kind: "CatalogSource", Namespace: "openshift-marketplace", Name: "redhat-operator-index-v4-20", Action: "created"},
			{Kind: "ClusterCatalog", Name: "redhat-operator-index-v4-20", Action: "created"},
			{Kind: "OperatorHub", Name: "cluster", Action: "configured"},
		})
		if w := a.Warnings(); len(w) > 0 {
			t.Errorf("warnings: %q", w)
		}

		cs := get(t, dyn.Resource(catalogSources).Namespace("openshift-marketplace"), name)
		checkField(t, cs, "grpc", "spec", "sourceType")
		checkField(t, cs, image, "spec", "image")
		checkField(t, cs, "Red Hat Operators", "spec", "displayName")
		checkField(t, cs, "Red Hat", "spec", "publisher")
		checkField(t, cs, "restricted", "spec", "grpcPodConfig", "securityContextConfig")
		checkField(t, cs, map[string]any{"catalogDir": "/configs"}, "spec", "grpcPodConfig", "extractContent")

		got := get(t, dyn.Resource(clusterCatalogs), name)
		checkField(t, got, map[string]any{"type": "Image", "image": map[string]any{"ref": image}}, "spec", "source")

		h := get(t, dyn.Resource(operatorHubs), "cluster")
		checkField(t, h, true, "spec", "disableAllDefaultSources")
		sources, _, _ := unstructured.NestedSlice(h.Object, "spec", "sources")
		if len(sources) != 1 {
			t.Errorf("OperatorHub sources %v: the administrator's entry is gone", sources)
		}
	})

	t.Run("unchanged", func(t *testing.T) {
		results, err := a.Apply(ctx, [][]byte{extracted, cc, hub})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if r.Action != manifests.ActionUnchanged {
				t.Errorf("%s: want unchanged", r)
			}
		}
	})

	t.Run("without extractContent", func(t *testing.T) {
		// As for a cluster older than 4.20: the field ferry set before goes.
		plain := catalogSource(t, manifests.CatalogSourceOptions{Name: name, Image: image})
		results, err := a.Apply(ctx, [][]byte{plain})
		if err != nil {
			t.Fatal(err)
		}
		checkResults(t, results, []manifests.Result{
			{Kind: "CatalogSource", Namespace: "openshift-marketplace", Name: name, Action: "configured"},
		})
		cs := get(t, dyn.Resource(catalogSources).Namespace("openshift-marketplace"), name)
		checkField(t, cs, map[string]any{"securityContextConfig": "restricted"}, "spec", "grpcPodConfig")
		checkField(t, cs, name, "spec", "displayName")
	})

	// The test bed refuses what a cluster refuses, so the acceptance above
	// means the field names and types are right.
	t.Run("test bed refuses mistakes", func(t *testing.T) {
		for what, c := range map[string]struct{ doc, want string }{
			"misspelled catalogDir": {strings.Replace(string(extracted), "catalogDir:", "catalogdir:", 1), "catalogdir: field not declared in schema"},
			"catalogDir missing":    {strings.Replace(string(extracted), "extractContent:\n      catalogDir: /configs", "extractContent: {}", 1), "catalogDir: Required value"},
			"unknown sourceType":    {strings.Replace(string(extracted), "sourceType: grpc", "sourceType: gRPC", 1), `Unsupported value: "gRPC"`},
			"unknown security mode": {strings.Replace(string(extracted), "securityContextConfig: restricted", "securityContextConfig: strict", 1), `Unsupported value: "strict"`},
			"poll interval with a digest": {strings.Replace(string(cc), "ref: ", "pollIntervalMinutes: 10\n      ref: ", 1),
				"cannot specify pollIntervalMinutes while using digest-based image"},
			"image missing":        {strings.Replace(string(cc), "    image:\n      ref: "+image+"\n", "", 1), "image is required when source type is Image"},
			"string for a boolean": {strings.Replace(string(hub), "disableAllDefaultSources: true", `disableAllDefaultSources: "true"`, 1), "expected boolean"},
		} {
			_, err := a.Apply(ctx, [][]byte{[]byte(c.doc)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: got %v, want an error with %q\n%s", what, err, c.want, c.doc)
			}
		}
	})
}

func catalogSource(t *testing.T, o manifests.CatalogSourceOptions) []byte {
	t.Helper()
	b, err := manifests.CatalogSource(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func get(t *testing.T, r dynamic.ResourceInterface, name string) *unstructured.Unstructured {
	t.Helper()
	obj, err := r.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// checkField compares the value at fields in obj with want (a string, bool
// or a map of them).
func checkField(t *testing.T, obj *unstructured.Unstructured, want any, fields ...string) {
	t.Helper()
	got, found, err := unstructured.NestedFieldNoCopy(obj.Object, fields...)
	if err != nil || !found {
		t.Errorf("%s %s: %s not found (%v)", obj.GetKind(), obj.GetName(), strings.Join(fields, "."), err)
		return
	}
	if !equalJSON(got, want) {
		t.Errorf("%s %s: %s is %#v, want %#v", obj.GetKind(), obj.GetName(), strings.Join(fields, "."), got, want)
	}
}

func equalJSON(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if !equalJSON(g[k], v) {
				return false
			}
		}
		return true
	default:
		return got == want
	}
}
