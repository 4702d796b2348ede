package sigstore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzParsePolicies feeds release-manifests files: whatever the bytes,
// ParsePolicies returns policies a Verifier accepts, or an error.
func FuzzParsePolicies(f *testing.F) {
	if data, err := os.ReadFile(filepath.FromSlash(redHatPolicyFixture)); err == nil {
		f.Add(data)
	}
	f.Add([]byte("kind: ClusterImagePolicy\napiVersion: config.openshift.io/v1\nmetadata: {name: a}\nspec: {scopes: ['*.x.y']}\n"))
	f.Add([]byte("{\"kind\":\"ImagePolicy\"}\n---\n[1,2]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		policies, err := ParsePolicies("f.yaml", data)
		if err != nil {
			return
		}
		v, err := NewVerifier(policies)
		if err != nil {
			t.Fatalf("ParsePolicies accepted a policy NewVerifier refuses: %v", err)
		}
		for _, p := range policies {
			for _, s := range p.Scopes {
				_ = v.Check(s, digest.FromString(s), nil)
			}
		}
	})
}

// FuzzCheck feeds signature payloads and annotations to a Verifier: no
// input but a real signature by the key is accepted, and none panics.
func FuzzCheck(f *testing.F) {
	const repo = "quay.example/ocp/release"
	key := newTestKey(f, "ecdsa")
	d := digest.FromString("release")
	good := key.sign(f, repo+":4.21.0", d)
	f.Add(good.Payload, good.Base64)
	f.Add([]byte(`{"critical":{}}`), "AAAA")
	policies, err := ParsePolicies("p.yaml", policyYAML("ClusterImagePolicy", "p", []string{repo}, key.pem, ""))
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewVerifier(policies)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte, sig string) {
		err := v.Check(repo, d, []Signature{{Payload: payload, Base64: sig}})
		if err == nil && string(payload) != string(good.Payload) {
			// Only the bytes the key signed may pass (an ECDSA signature
			// has a second valid encoding, so sig itself may differ).
			t.Fatalf("accepted payload %q with signature %q", payload, sig)
		}
	})
}
