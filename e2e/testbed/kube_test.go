package testbed

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestKubeServesAndStops(t *testing.T) {
	var k *Kube // nil if the subtest skipped
	t.Run("serve", func(t *testing.T) {
		k = StartKube(t)
		ctx := context.Background()

		// The written kubeconfig works as kubectl would load it.
		cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kube-apiserver %s at %s", v.GitVersion, k.Host)

		k.CreateNamespace(t, "openshift-config-managed")
		k.CreateNamespace(t, "openshift-config-managed") // again: fine
		if _, err := c.CoreV1().Namespaces().Get(ctx, "openshift-config-managed", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}

		k.InstallOpenShiftCRDs(t)
		k.InstallOpenShiftCRDs(t) // again: fine
		for gv, kind := range map[string]string{
			"config.openshift.io/v1":         "ImageDigestMirrorSet",
			"operator.openshift.io/v1alpha1": "ImageContentSourcePolicy",
		} {
			list, err := c.Discovery().ServerResourcesForGroupVersion(gv)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range list.APIResources {
				found = found || r.Kind == kind
			}
			if !found {
				t.Errorf("%s does not serve %s", gv, kind)
			}
		}

		bad, err := clientcmd.BuildConfigFromFlags("", k.BadTokenKubeconfig(t))
		if err != nil {
			t.Fatal(err)
		}
		bc, err := kubernetes.NewForConfig(bad)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bc.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Fatalf("bad token: got %v, want 401 Unauthorized", err)
		}
	})
	if k == nil {
		t.Skip("no API server started")
	}
	if len(k.procs) != 2 {
		t.Fatalf("want etcd and kube-apiserver recorded, got %d processes", len(k.procs))
	}
	for _, p := range k.procs {
		select {
		case <-p.exited:
		default:
			t.Errorf("%s (pid %d) still running after its test ended", p.name, p.cmd.Process.Pid)
		}
	}
}
