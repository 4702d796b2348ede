package manifests_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
)

// TestReadCluster reads a real kube-apiserver: first without the OpenShift
// kinds and objects (every part is none, no error), then with a
// ClusterVersion, mirror sets of the three kinds and the admin-ack
// ConfigMaps.
func TestReadCluster(t *testing.T) {
	k := testbed.StartKube(t)
	ctx := context.Background()
	a, err := manifests.NewApplier(k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("none", func(t *testing.T) {
		s, err := a.ReadCluster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Version != nil || s.Mirrors != nil || s.AdminAcks != nil || s.AdminGates != nil {
			t.Errorf("a bare API server: %+v", s)
		}
	})

	k.InstallOpenShiftCRDs(t)
	k.CreateNamespace(t, manifests.AdminAcksNamespace)
	k.CreateNamespace(t, manifests.AdminGatesNamespace)
	t.Run("kinds but no objects", func(t *testing.T) {
		s, err := a.ReadCluster(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Version != nil || len(s.Mirrors) != 0 || s.AdminAcks != nil || s.AdminGates != nil {
			t.Errorf("no objects: %+v", s)
		}
	})

	objects := []string{clusterVersionYAML,
		mirrorYAML("config.openshift.io/v1", "ImageDigestMirrorSet", "b-idms", "imageDigestMirrors",
			"quay.io/openshift-release-dev/ocp-release", "NeverContactSource", "m1.example/ocp4", "m2.example/ocp4"),
		mirrorYAML("config.openshift.io/v1", "ImageDigestMirrorSet", "a-idms", "imageDigestMirrors",
			"quay.io/openshift-release-dev", "", "m3.example/ns"),
		mirrorYAML("config.openshift.io/v1", "ImageTagMirrorSet", "itms", "imageTagMirrors",
			"quay.io/openshift-release-dev/ocp-release", "", "tags.example/ocp4"),
		mirrorYAML("operator.openshift.io/v1alpha1", "ImageContentSourcePolicy", "icsp", "repositoryDigestMirrors",
			"registry.redhat.io", "", "m4.example/rh"),
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: admin-acks, namespace: openshift-config}\ndata: {ack-4.19-kube-1.33-api-removals-in-4.20: \"true\"}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: admin-gates, namespace: openshift-config-managed}\n" +
			"data: {ack-4.20-sigstore-in-4.21: \"ensure that any registries configured as mirrors contain the Sigstore signature images\"}\n",
	}
	data := make([][]byte, len(objects))
	for i, o := range objects {
		data[i] = []byte(o)
	}
	if _, err := a.Apply(ctx, data); err != nil {
		t.Fatal(err)
	}

	s, err := a.ReadCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantVersion := &manifests.ClusterVersion{Desired: "4.20.8", DesiredImage: "quay.io/openshift-release-dev/ocp-release@sha256:" + strings.Repeat("8", 64),
		Channel: "stable-4.20", Upstream: "https://updates.example/graph",
		History: []manifests.UpdateHistory{
			{State: "Partial", Version: "4.20.8", Image: "quay.io/openshift-release-dev/ocp-release@sha256:" + strings.Repeat("8", 64)},
			{State: "Completed", Version: "4.20.5", Image: "quay.io/openshift-release-dev/ocp-release@sha256:" + strings.Repeat("5", 64), Verified: true},
		}}
	if !reflect.DeepEqual(s.Version, wantVersion) {
		t.Errorf("version\n got %+v\nwant %+v", s.Version, wantVersion)
	}
	if got := s.Version.Completed(); got != "4.20.5" {
		t.Errorf("completed %q, want the newest Completed entry 4.20.5", got)
	}
	wantMirrors := []manifests.MirrorRule{
		{Kind: "ImageDigestMirrorSet", Name: "a-idms", Source: "quay.io/openshift-release-dev", Mirrors: []string{"m3.example/ns"}},
		{Kind: "ImageDigestMirrorSet", Name: "b-idms", Source: "quay.io/openshift-release-dev/ocp-release",
			Mirrors: []string{"m1.example/ocp4", "m2.example/ocp4"}, MirrorSourcePolicy: "NeverContactSource"},
		{Kind: "ImageTagMirrorSet", Name: "itms", Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"tags.example/ocp4"}},
		{Kind: "ImageContentSourcePolicy", Name: "icsp", Source: "registry.redhat.io", Mirrors: []string{"m4.example/rh"}},
	}
	if !reflect.DeepEqual(s.Mirrors, wantMirrors) {
		t.Errorf("mirrors\n got %+v\nwant %+v", s.Mirrors, wantMirrors)
	}
	if !s.Mirrors[2].TagOnly() || s.Mirrors[1].TagOnly() || s.Mirrors[3].TagOnly() {
		t.Error("only the ImageTagMirrorSet's rules are tag-only")
	}
	if s.AdminAcks["ack-4.19-kube-1.33-api-removals-in-4.20"] != "true" || len(s.AdminAcks) != 1 {
		t.Errorf("admin-acks %v", s.AdminAcks)
	}
	if !strings.Contains(s.AdminGates["ack-4.20-sigstore-in-4.21"], "Sigstore") || len(s.AdminGates) != 1 {
		t.Errorf("admin-gates %v", s.AdminGates)
	}

	// A rule the cluster would refuse to use is an error, naming the object.
	bad := mirrorYAML("config.openshift.io/v1", "ImageDigestMirrorSet", "c-bad", "imageDigestMirrors", " ", "", "m.example/x")
	if _, err := a.Apply(ctx, [][]byte{[]byte(bad)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadCluster(ctx); err == nil || !strings.Contains(err.Error(), "ImageDigestMirrorSet c-bad") {
		t.Errorf("a rule without source: %v", err)
	}
}

const clusterVersionYAML = `apiVersion: config.openshift.io/v1
kind: ClusterVersion
metadata: {name: version}
spec:
  channel: stable-4.20
  upstream: https://updates.example/graph
  clusterID: 3f1c0e4a-0000-4000-8000-000000000000
status:
  desired:
    version: 4.20.8
    image: quay.io/openshift-release-dev/ocp-release@sha256:8888888888888888888888888888888888888888888888888888888888888888
  history:
  - {state: Partial, version: 4.20.8, verified: false, image: "quay.io/openshift-release-dev/ocp-release@sha256:8888888888888888888888888888888888888888888888888888888888888888"}
  - {state: Completed, version: 4.20.5, verified: true, image: "quay.io/openshift-release-dev/ocp-release@sha256:5555555555555555555555555555555555555555555555555555555555555555"}
`

// mirrorYAML is one mirror object of one rule.
func mirrorYAML(apiVersion, kind, name, field, source, policy string, mirrors ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: %s\nkind: %s\nmetadata: {name: %s}\nspec:\n  %s:\n  - source: %q\n", apiVersion, kind, name, field, source)
	if policy != "" {
		fmt.Fprintf(&b, "    mirrorSourcePolicy: %s\n", policy)
	}
	b.WriteString("    mirrors:\n")
	for _, m := range mirrors {
		fmt.Fprintf(&b, "    - %s\n", m)
	}
	return b.String()
}
