package manifests_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
)

// TestKubeApplier runs the Applier against a real kube-apiserver with the
// OpenShift mirror-set kinds installed as CRDs.
func TestKubeApplier(t *testing.T) {
	k := testbed.StartKube(t)
	k.CreateNamespace(t, manifests.SignatureNamespace)
	k.InstallOpenShiftCRDs(t)
	ctx := context.Background()
	client := k.Client(t)

	a, err := manifests.NewApplier(k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}

	d1, d2 := digest.FromString("release one"), digest.FromString("release two")
	sigs1 := [][]byte{[]byte("signature one\x00\xff"), bytes.Repeat([]byte{0x89, 0x02}, 700), []byte("three")}
	sigs2 := [][]byte{[]byte("only one")}
	cm1 := render(t, d1, sigs1)
	cm2 := render(t, d2, sigs2)
	// Both sources routed by tag too, so that the real CRD takes an
	// ImageTagMirrorSet as ferry renders it.
	m, err := manifests.RoutedMirrorSets("4.15.0-x86_64", []manifests.Route{
		{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"registry.example:5000/ocp4/openshift4"}, ByTag: true},
		{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", Mirrors: []string{"registry.example:5000/ocp4/openshift4"}, ByTag: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	all := [][]byte{cm1, cm2, m.ImageDigestMirrorSet, m.ImageTagMirrorSet}

	t.Run("create", func(t *testing.T) {
		results, err := a.Apply(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		want := []manifests.Result{
			{Kind: "ConfigMap", Namespace: manifests.SignatureNamespace, Name: manifests.SignatureConfigMapName(d1), Action: "created"},
			{Kind: "ConfigMap", Namespace: manifests.SignatureNamespace, Name: manifests.SignatureConfigMapName(d2), Action: "created"},
			{Kind: "ImageDigestMirrorSet", Name: "ferry-4-15-0-x86-64", Action: "created"},
			{Kind: "ImageTagMirrorSet", Name: "ferry-4-15-0-x86-64", Action: "created"},
		}
		checkResults(t, results, want)
		checkSignatureConfigMap(t, client.CoreV1().ConfigMaps(manifests.SignatureNamespace), d1, sigs1)
		checkSignatureConfigMap(t, client.CoreV1().ConfigMaps(manifests.SignatureNamespace), d2, sigs2)

		dyn, err := dynamic.NewForConfig(k.RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ resource, field string }{
			{"imagedigestmirrorsets", "imageDigestMirrors"},
			{"imagetagmirrorsets", "imageTagMirrors"},
		} {
			obj, err := dyn.Resource(schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: c.resource}).
				Get(ctx, "ferry-4-15-0-x86-64", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			list := obj.Object["spec"].(map[string]any)[c.field].([]any)
			first := list[0].(map[string]any)
			if len(list) != 2 || first["source"] != "quay.io/openshift-release-dev/ocp-release" ||
				first["mirrors"].([]any)[0] != "registry.example:5000/ocp4/openshift4" {
				t.Errorf("%s spec: %v", c.resource, obj.Object["spec"])
			}
		}
	})

	t.Run("unchanged", func(t *testing.T) {
		results, err := a.Apply(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		if len(results) != len(all) {
			t.Fatalf("%d results for %d objects", len(results), len(all))
		}
		for _, r := range results {
			if r.Action != manifests.ActionUnchanged {
				t.Errorf("%s: want unchanged", r)
			}
		}
	})

	t.Run("configured", func(t *testing.T) {
		// Fewer signatures than before: the dropped key must go, not linger.
		results, err := a.Apply(ctx, [][]byte{render(t, d1, sigs1[:1])})
		if err != nil {
			t.Fatal(err)
		}
		checkResults(t, results, []manifests.Result{
			{Kind: "ConfigMap", Namespace: manifests.SignatureNamespace, Name: manifests.SignatureConfigMapName(d1), Action: "configured"},
		})
		checkSignatureConfigMap(t, client.CoreV1().ConfigMaps(manifests.SignatureNamespace), d1, sigs1[:1])
	})

	t.Run("several documents in one", func(t *testing.T) {
		d3 := digest.FromString("release three")
		joined := bytes.Join([][]byte{render(t, d3, sigs2), cm2}, []byte("---\n"))
		results, err := a.Apply(ctx, [][]byte{joined})
		if err != nil {
			t.Fatal(err)
		}
		checkResults(t, results, []manifests.Result{
			{Kind: "ConfigMap", Namespace: manifests.SignatureNamespace, Name: manifests.SignatureConfigMapName(d3), Action: "created"},
			{Kind: "ConfigMap", Namespace: manifests.SignatureNamespace, Name: manifests.SignatureConfigMapName(d2), Action: "unchanged"},
		})
	})

	t.Run("legacy ImageContentSourcePolicy", func(t *testing.T) {
		results, err := a.Apply(ctx, [][]byte{m.ImageContentSourcePolicy})
		if err != nil {
			t.Fatal(err)
		}
		checkResults(t, results, []manifests.Result{{Kind: "ImageContentSourcePolicy", Name: "ferry-4-15-0-x86-64", Action: "created"}})
	})

	t.Run("missing kind applies nothing", func(t *testing.T) {
		d4 := digest.FromString("release four")
		// Infrastructure is an OpenShift kind the test bed does not install.
		cv := []byte("apiVersion: config.openshift.io/v1\nkind: Infrastructure\nmetadata:\n  name: cluster\n")
		results, err := a.Apply(ctx, [][]byte{render(t, d4, sigs2), cv})
		if err == nil {
			t.Fatalf("applied %v", results)
		}
		t.Log(err)
		if !errors.Is(err, manifests.ErrNotOpenShift) || !strings.Contains(err.Error(), "Infrastructure") {
			t.Errorf("error %q: want ErrNotOpenShift naming Infrastructure", err)
		}
		_, err = client.CoreV1().ConfigMaps(manifests.SignatureNamespace).Get(ctx, manifests.SignatureConfigMapName(d4), metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("ConfigMap applied before the error: %v", err)
		}
	})

	t.Run("missing namespace", func(t *testing.T) {
		doc := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: nowhere\n")
		_, err := a.Apply(ctx, [][]byte{doc})
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), `"nowhere" not found`) {
			t.Errorf("got %v", err)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		path := k.BadTokenKubeconfig(t)
		bad, err := manifests.NewApplier(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Apply(ctx, [][]byte{cm1})
		t.Log(err)
		if err == nil || !strings.Contains(err.Error(), "refused the credentials in "+path) || !apierrors.IsUnauthorized(err) {
			t.Errorf("got %v", err)
		}
		_, err = bad.ReadVerificationKeyrings(ctx)
		if err == nil || !strings.Contains(err.Error(), "refused the credentials in "+path) {
			t.Errorf("keyrings: got %v", err)
		}
	})

	t.Run("verification keyrings", func(t *testing.T) {
		_, err := a.ReadVerificationKeyrings(ctx)
		if !errors.Is(err, manifests.ErrNotOpenShift) {
			t.Fatalf("without the ConfigMap: got %v, want ErrNotOpenShift", err)
		}
		key := testbed.NewKey(t, "cluster release key")
		armored := key.PublicArmored(t)
		_, err = client.CoreV1().ConfigMaps(manifests.VerificationNamespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: manifests.VerificationConfigMap},
			Data: map[string]string{
				"verifier-public-key-redhat": string(armored),
				"store-openshift-official":   "https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release\n",
				"store-gcs":                  "https://storage.googleapis.com/openshift-release/official/signatures/openshift/release",
				"unrelated":                  "x",
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := a.ReadVerificationKeyrings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || !bytes.Equal(keys["verifier-public-key-redhat"], armored) {
			t.Errorf("keyrings %v", keys)
		}
		v, err := a.ReadVerification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"https://storage.googleapis.com/openshift-release/official/signatures/openshift/release",
			"https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release",
		}
		if strings.Join(v.Stores, " ") != strings.Join(want, " ") {
			t.Errorf("stores %v", v.Stores)
		}
	})

	t.Run("kubeconfig from KUBECONFIG", func(t *testing.T) {
		t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing")+":"+k.Kubeconfig)
		env, err := manifests.NewApplier("")
		if err != nil {
			t.Fatal(err)
		}
		results, err := env.Apply(ctx, [][]byte{cm2})
		if err != nil || len(results) != 1 || results[0].Action != manifests.ActionUnchanged {
			t.Errorf("got %v, %v", results, err)
		}
	})
}

func TestKubeconfigMissing(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := manifests.NewApplier("")
	if err == nil || !strings.Contains(err.Error(), "KUBECONFIG") {
		t.Errorf("no kubeconfig anywhere: got %v", err)
	}
	missing := filepath.Join(t.TempDir(), "kubeconfig")
	_, err = manifests.NewApplier(missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("--kubeconfig %s: got %v", missing, err)
	}
}

func render(t *testing.T, d digest.Digest, sigs [][]byte) []byte {
	t.Helper()
	b, err := manifests.SignatureConfigMap(d, sigs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkResults(t *testing.T, got, want []manifests.Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("result %d: %v, want %v", i, got[i], want[i])
		}
	}
}

type configMapGetter interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ConfigMap, error)
}

// checkSignatureConfigMap reads the ConfigMap for d from the cluster and
// compares everything the cluster-version-operator reads.
func checkSignatureConfigMap(t *testing.T, cms configMapGetter, d digest.Digest, sigs [][]byte) {
	t.Helper()
	name := manifests.SignatureConfigMapName(d)
	cm, err := cms.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := cm.Labels[manifests.SignatureLabel]; !ok || v != "" || len(cm.Labels) != 1 {
		t.Errorf("%s labels %v", name, cm.Labels)
	}
	if len(cm.Data) != 0 || len(cm.BinaryData) != len(sigs) {
		t.Errorf("%s: %d data keys, %d binaryData keys, want 0 and %d", name, len(cm.Data), len(cm.BinaryData), len(sigs))
	}
	for i, s := range sigs {
		key := name + "-" + string(rune('1'+i))
		if !bytes.Equal(cm.BinaryData[key], s) {
			t.Errorf("%s: %s differs", name, key)
		}
	}
	managers := map[string]bool{}
	for _, f := range cm.ManagedFields {
		managers[f.Manager+"/"+string(f.Operation)] = true
	}
	if !managers["ferry/Apply"] {
		t.Errorf("%s managed by %v, want ferry/Apply", name, managers)
	}
}
