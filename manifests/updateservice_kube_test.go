package manifests_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
)

// TestKubeApplyUpdateService applies a rendered UpdateService to a real
// kube-apiserver with the kind installed as a namespaced CRD, as the
// update service operator installs it.
func TestKubeApplyUpdateService(t *testing.T) {
	k := testbed.StartKube(t)
	k.CreateNamespace(t, manifests.UpdateServiceNamespace)
	k.InstallOpenShiftCRDs(t)
	ctx := context.Background()
	a, err := manifests.NewApplier(k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	const (
		releases = "registry.example:5000/ocp4/openshift4"
		image    = "registry.example:5000/ocp4/graph-image@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	us, err := manifests.UpdateService("service", manifests.UpdateServiceNamespace, releases, image, 2)
	if err != nil {
		t.Fatal(err)
	}

	results, err := a.Apply(ctx, [][]byte{us})
	if err != nil {
		t.Fatal(err)
	}
	want := manifests.Result{Kind: "UpdateService", Namespace: manifests.UpdateServiceNamespace, Name: "service", Action: manifests.ActionCreated}
	if len(results) != 1 || results[0] != want {
		t.Fatalf("results %v, want %v", results, want)
	}

	dyn, err := dynamic.NewForConfig(k.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "updateservice.operator.openshift.io", Version: "v1", Resource: "updateservices"}
	obj, err := dyn.Resource(gvr).Namespace(manifests.UpdateServiceNamespace).Get(ctx, "service", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := obj.Object["spec"].(map[string]any)
	if spec["releases"] != releases || spec["graphDataImage"] != image || spec["replicas"] != int64(2) {
		t.Errorf("stored spec %v", spec)
	}

	// Applied again, nothing changes; with another image, the object does.
	results, err = a.Apply(ctx, [][]byte{us})
	if err != nil || len(results) != 1 || results[0].Action != manifests.ActionUnchanged {
		t.Errorf("applied again: %v %v", results, err)
	}
	newer, err := manifests.UpdateService("service", manifests.UpdateServiceNamespace, releases,
		"registry.example:5000/ocp4/graph-image@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", 2)
	if err != nil {
		t.Fatal(err)
	}
	results, err = a.Apply(ctx, [][]byte{newer})
	if err != nil || len(results) != 1 || results[0].Action != manifests.ActionConfigured {
		t.Errorf("applied with a new graph-data image: %v %v", results, err)
	}
}
