package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
)

// newOpenShiftAPI starts a real kube-apiserver with the OpenShift mirror-set
// CRDs and the release-verification ConfigMap holding keyFile's key.
func newOpenShiftAPI(t *testing.T, keyFile string) *testbed.Kube {
	t.Helper()
	k := testbed.StartKube(t)
	k.InstallOpenShiftCRDs(t)
	k.CreateNamespace(t, "openshift-config-managed")
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cm := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "release-verification", "namespace": "openshift-config-managed"},
		"data":     map[string]any{"verifier-public-key-test": string(key)},
	}
	cms := dynamicClient(t, k).Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("openshift-config-managed")
	if _, err := cms.Create(context.Background(), &unstructured.Unstructured{Object: cm}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestApplyToCluster: apply verifies with the cluster's own keys, creates
// the ConfigMap and mirror sets, and a second apply changes nothing.
func TestApplyToCluster(t *testing.T) {
	p := newPacked(t, testbed.ReleaseOptions{Components: 3})
	k := newOpenShiftAPI(t, p.keyFile)
	target := testbed.NewMemoryRegistry(t)
	outDir := t.TempDir()
	// No --keyring: the key comes from release-verification.
	args := []string{"apply", p.bundle, "--to", target.Host + "/" + targetRepo, "--dest-tls-verify=false",
		"--kubeconfig", k.Kubeconfig, "--output-dir", outDir, "--quiet", "--json"}
	code, stdout, stderr := ferry(t, args...)
	if code != exitOK || !strings.Contains(stderr, "source="+clusterKeySource) {
		t.Fatalf("apply with the cluster's keys: exit %d; the log should name source=%s\n%s\n%s", code, clusterKeySource, stdout, stderr)
	}
	sum := applySummaryOf(t, stdout)
	if !containsAll(sum.Applied, "ConfigMap openshift-config-managed/sha256-"+p.rel.Digest.Encoded()+" created",
		"ImageDigestMirrorSet") || containsAll(sum.Applied, "ImageTagMirrorSet") {
		t.Errorf("applied: %q (a release is pulled by digest: no tag mirror set)", sum.Applied)
	}

	dyn := dynamicClient(t, k)
	cm, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("openshift-config-managed").
		Get(context.Background(), "sha256-"+p.rel.Digest.Encoded(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.GetLabels()["release.openshift.io/verification-signatures"]; !ok {
		t.Errorf("labels %v", cm.GetLabels())
	}
	binary, _, _ := unstructured.NestedStringMap(cm.Object, "binaryData")
	want := bundleSignature(t, p.bundle)
	got, err := base64.StdEncoding.DecodeString(binary["sha256-"+p.rel.Digest.Encoded()+"-1"])
	if len(binary) != 1 || err != nil || !bytes.Equal(got, want) {
		t.Errorf("binaryData does not hold exactly the bundle's signature: %d keys, %v", len(binary), err)
	}
	idms, err := dyn.Resource(schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "imagedigestmirrorsets"}).
		List(context.Background(), metav1.ListOptions{})
	if err != nil || len(idms.Items) != 1 {
		t.Fatalf("ImageDigestMirrorSets: %v, %v", idms, err)
	}
	if !strings.Contains(mustJSON(t, idms.Items[0].Object), target.Host+"/"+targetRepo) {
		t.Errorf("the mirror set does not name the target: %v", idms.Items[0].Object)
	}

	again := applySummaryOf(t, mustFerry(t, args...))
	for _, a := range again.Applied {
		if !strings.HasSuffix(a, " unchanged") {
			t.Errorf("second apply changed %s", a)
		}
	}
}

// TestApplyWrongTokenAfterPush: a refused kubeconfig fails clearly, after
// the push, with the manifests written for oc apply.
func TestApplyWrongTokenAfterPush(t *testing.T) {
	p := newPacked(t, testbed.ReleaseOptions{Components: 2})
	k := newOpenShiftAPI(t, p.keyFile)
	target := testbed.NewMemoryRegistry(t)
	outDir := t.TempDir()
	code, stdout, errOut := ferry(t, "apply", p.bundle, "--to", target.Host+"/"+targetRepo, "--dest-tls-verify=false",
		"--keyring", p.keyFile, "--kubeconfig", k.BadTokenKubeconfig(t), "--output-dir", outDir, "--quiet")
	if code != exitFailure || !strings.Contains(errOut, "credentials") {
		t.Errorf("exit %d (want %d); stderr should say the credentials were refused:\n%s\n%s", code, exitFailure, stdout, errOut)
	}
	if _, err := os.Stat(filepath.Join(outDir, "signature-sha256-"+p.rel.Digest.Encoded()[:16]+".yaml")); err != nil {
		t.Errorf("rendered ConfigMap missing after the cluster failure: %v", err)
	}
	if tags, err := target.Client().Tags(context.Background(), targetRepo); err != nil || len(tags) == 0 {
		t.Errorf("the push should have completed before the cluster failed: %v %v", tags, err)
	}
}

func dynamicClient(t *testing.T, k *testbed.Kube) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(k.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bundleSignature is the first signature file of the bundle's release.
func bundleSignature(t *testing.T, path string) []byte {
	t.Helper()
	r, err := bundle.Open(path, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := r.ReadFile(r.Index().Releases[0].Signatures[0].File, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func containsAll(list []string, subs ...string) bool {
	joined := strings.Join(list, "\n")
	for _, s := range subs {
		if !strings.Contains(joined, s) {
			return false
		}
	}
	return true
}
