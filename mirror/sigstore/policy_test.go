package sigstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const redHatPolicyFixture = "../../../shared/fixtures/redhat/cluster-image-policy.yaml"

func TestParseRealPolicy(t *testing.T) {
	data, err := os.ReadFile(filepath.FromSlash(redHatPolicyFixture))
	if err != nil {
		t.Fatal(err)
	}
	policies, err := ParsePolicies("release-manifests/0000_90_openshift-cluster-image-policy.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(policies) != 1 {
		t.Fatalf("got %d policies, want 1", len(policies))
	}
	p := policies[0]
	if p.ID() != "ClusterImagePolicy openshift" || p.RootOfTrust != RootPublicKey || p.MatchPolicy != MatchRepoDigestOrExact {
		t.Errorf("policy = %s %s %s", p.ID(), p.RootOfTrust, p.MatchPolicy)
	}
	want := []string{"quay.io/openshift-release-dev/ocp-release", "quay.io/openshift-release-dev/ocp-v4.0-art-dev", "quay.io/openshift-release-dev/ocp-v5.0-art-dev"}
	if strings.Join(p.Scopes, ",") != strings.Join(want, ",") {
		t.Errorf("scopes = %v, want %v", p.Scopes, want)
	}
	key, err := loadPublicKey(p.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if n := keyBits(key); n != 4096 {
		t.Errorf("key is %d bits, want RSA-4096", n)
	}
	d := digest.FromString("x")
	if !(&Verifier{policies: policies}).InScope("quay.io/openshift-release-dev/ocp-v4.0-art-dev", d) {
		t.Error("component repository out of scope")
	}
	if (&Verifier{policies: policies}).InScope("quay.io/openshift-release-dev/ocp-release-nightly", d) {
		t.Error("a repository that only shares a prefix is in scope")
	}
}

func TestParsePoliciesIgnoresOtherObjects(t *testing.T) {
	key := newTestKey(t, "ecdsa")
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" +
		string(policyYAML("ClusterImagePolicy", "a", []string{"r.example/ns"}, key.pem, "")) +
		"---\n" + string(policyYAML("ImagePolicy", "b", []string{"*.example.com"}, key.pem, "signedIdentity: {matchPolicy: MatchRepository}"))
	policies, err := ParsePolicies("f.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(policies) != 2 || policies[1].Namespace != "ns" || policies[1].MatchPolicy != MatchRepository {
		t.Fatalf("policies = %+v", policies)
	}
}

func TestParsePoliciesRefusesWhatItCannotEnforce(t *testing.T) {
	key := newTestKey(t, "ecdsa")
	cases := map[string]string{
		"unknown spec field": strings.Replace(string(policyYAML("ClusterImagePolicy", "a", []string{"r.example/x"}, key.pem, "")), "  policy:", "  extra: 1\n  policy:", 1),
		"unknown match":      string(policyYAML("ClusterImagePolicy", "a", []string{"r.example/x"}, key.pem, "signedIdentity: {matchPolicy: Anything}")),
		"bad scope":          string(policyYAML("ClusterImagePolicy", "a", []string{"no-host"}, key.pem, "")),
		"bad key":            string(policyYAML("ClusterImagePolicy", "a", []string{"r.example/x"}, []byte("not a key"), "")),
		"no scopes":          string(policyYAML("ClusterImagePolicy", "a", nil, key.pem, "")),
		"exact without repo": string(policyYAML("ClusterImagePolicy", "a", []string{"r.example/x"}, key.pem, "signedIdentity: {matchPolicy: ExactRepository}")),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePolicies("f.yaml", []byte(doc))
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a PolicyError", err)
			}
		})
	}
}

func TestApplicableTakesTheMostSpecificScope(t *testing.T) {
	key := newTestKey(t, "ed25519")
	d := digest.FromString("img")
	broad := Policy{Kind: KindClusterImagePolicy, Name: "broad", Scopes: []string{"r.example.com"}, RootOfTrust: RootPublicKey, PublicKey: key.pem}
	narrow := Policy{Kind: KindClusterImagePolicy, Name: "narrow", Scopes: []string{"r.example.com/ns/app"}, RootOfTrust: RootPublicKey, PublicKey: key.pem}
	wild := Policy{Kind: KindClusterImagePolicy, Name: "wild", Scopes: []string{"*.example.com"}, RootOfTrust: RootPublicKey, PublicKey: key.pem}
	image := Policy{Kind: KindClusterImagePolicy, Name: "image", Scopes: []string{"r.example.com/ns/app@" + d.String()}, RootOfTrust: RootPublicKey, PublicKey: key.pem}
	all := []Policy{broad, narrow, wild, image}
	for _, c := range []struct {
		repo string
		d    digest.Digest
		want string
	}{
		{"r.example.com/ns/app", d, "image"},
		{"r.example.com/ns/app", digest.FromString("other"), "narrow"},
		{"r.example.com/ns/app2", d, "broad"},
		{"s.example.com/ns/app", d, "wild"},
		{"example.com/ns/app", d, ""},
	} {
		var names []string
		for _, p := range Applicable(all, c.repo, c.d) {
			names = append(names, p.Name)
		}
		if got := strings.Join(names, ","); got != c.want {
			t.Errorf("Applicable(%s@%s) = %q, want %q", c.repo, c.d.Encoded()[:6], got, c.want)
		}
	}
}
