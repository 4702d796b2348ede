package release

import (
	"os"
	"strings"
	"testing"
)

func TestReadFilesKeepsImagePolicies(t *testing.T) {
	fixture, err := os.ReadFile("../../../shared/fixtures/redhat/cluster-image-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const policyFile = ReleaseManifestsDir + "0000_90_openshift-cluster-image-policy.yaml"
	top := layer(t, gzipped,
		entry{name: "release-manifests/", typ: '5'},
		entry{name: policyFile, body: string(fixture)},
		entry{name: ReleaseManifestsDir + "0000_50_configmap.yaml", body: "kind: ConfigMap\n"},
		entry{name: ImageReferencesPath, body: refsV1},
		entry{name: MetadataPath, body: metaV1},
		entry{name: ReleaseManifestsDir + "zz_after.json", body: `{"kind":"ImagePolicy"}`},
		entry{name: "usr/share/elsewhere.yaml", body: "kind: ImagePolicy\n"},
	)
	// A lower layer is not read: the scan stops with the layer that held
	// both files, as it did before policies were read.
	lower := layer(t, plain, entry{name: ReleaseManifestsDir + "old-policy.yaml", body: string(fixture)})
	ls, _ := openers(lower, top)
	files, err := ReadFiles(t.Context(), ls)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files.PolicyFiles {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != policyFile+","+ReleaseManifestsDir+"zz_after.json" {
		t.Fatalf("policy files = %s", got)
	}
	// zz_after.json names the kind but is no policy object: refused, not
	// skipped.
	if _, err := files.Policies(); err == nil || !strings.Contains(err.Error(), "zz_after.json") {
		t.Fatalf("Policies() err = %v, want the broken file named", err)
	}
	files.PolicyFiles = files.PolicyFiles[:1]
	policies, err := files.Policies()
	if err != nil || len(policies) != 1 || policies[0].Name != "openshift" {
		t.Fatalf("Policies() = %+v, %v", policies, err)
	}
}

func TestReadFilesRefusesAPolicyTooLargeToRead(t *testing.T) {
	big := strings.Repeat("# filler\n", MaxPolicyFileSize/9+1) + "kind: ClusterImagePolicy\n"
	ls, _ := openers(layer(t, plain,
		entry{name: ImageReferencesPath, body: refsV1},
		entry{name: MetadataPath, body: metaV1},
		entry{name: ReleaseManifestsDir + "big.yaml", body: big},
	))
	_, err := ReadFiles(t.Context(), ls)
	if err == nil || !strings.Contains(err.Error(), "MaxPolicyFileSize") {
		t.Fatalf("err = %v", err)
	}
}
