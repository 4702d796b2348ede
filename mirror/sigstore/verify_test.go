package sigstore

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// testKey is the test bed's cosign key: signatures made as cosign makes
// them, by the code the end-to-end tests sign releases with.
type testKey struct {
	*testbed.SigstoreKey
	pem []byte
}

func newTestKey(t testing.TB, kind string) *testKey {
	t.Helper()
	k, err := testbed.NewSigstoreKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{SigstoreKey: k, pem: k.PublicKeyPEM()}
}

// sign makes a cosign signature of d claiming identity.
func (k *testKey) sign(t testing.TB, identity string, d digest.Digest) Signature {
	t.Helper()
	payload, err := testbed.CosignPayload(identity, d)
	if err != nil {
		t.Fatal(err)
	}
	return k.signPayload(t, payload)
}

func (k *testKey) signPayload(t testing.TB, payload []byte) Signature {
	t.Helper()
	sig, err := testbed.SignCosignPayload(k.SigstoreKey, payload)
	if err != nil {
		t.Fatal(err)
	}
	return Signature{Payload: payload, Base64: base64.StdEncoding.EncodeToString(sig)}
}

func policyYAML(kind, name string, scopes []string, keyPEM []byte, identity string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: config.openshift.io/v1\nkind: %s\nmetadata:\n  name: %s\n  namespace: ns\nspec:\n  scopes:\n", kind, name)
	for _, s := range scopes {
		fmt.Fprintf(&b, "  - %q\n", s)
	}
	fmt.Fprintf(&b, "  policy:\n    rootOfTrust:\n      policyType: PublicKey\n      publicKey:\n        keyData: %s\n", base64.StdEncoding.EncodeToString(keyPEM))
	if identity != "" {
		fmt.Fprintf(&b, "    %s\n", identity)
	}
	return []byte(b.String())
}

func keyBits(k crypto.PublicKey) int {
	if r, ok := k.(*rsa.PublicKey); ok {
		return r.N.BitLen()
	}
	return 0
}

func verifierFor(t *testing.T, key *testKey, scope, identity string) *Verifier {
	t.Helper()
	policies, err := ParsePolicies("p.yaml", policyYAML("ClusterImagePolicy", "openshift", []string{scope}, key.pem, identity))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(policies)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCheckAcceptsCosignSignaturesOfEveryKeyKind(t *testing.T) {
	const repo = "quay.example/openshift-release-dev/ocp-release"
	d := digest.FromString("release")
	for _, kind := range []string{"rsa", "ecdsa", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			key := newTestKey(t, kind)
			v := verifierFor(t, key, repo, "")
			for _, id := range []string{repo + ":4.21.0-x86_64", repo + "@" + d.String()} {
				if err := v.Check(repo, d, []Signature{key.sign(t, id, d)}); err != nil {
					t.Errorf("identity %s: %v", id, err)
				}
			}
		})
	}
}

func TestCheckRefusesWhatTheNodeRefuses(t *testing.T) {
	const repo = "quay.example/ocp/release"
	d := digest.FromString("release")
	key, other := newTestKey(t, "rsa"), newTestKey(t, "rsa")
	v := verifierFor(t, key, repo, "")
	good := key.sign(t, repo+":4.21.0", d)
	tampered := good
	tampered.Payload = []byte(strings.Replace(string(good.Payload), "4.21.0", "4.21.1", 1))
	cases := []struct {
		name string
		sigs []Signature
		want string
	}{
		{"unsigned", nil, "no signature"},
		{"other key", []Signature{other.sign(t, repo+":4.21.0", d)}, "does not verify"},
		{"payload edited", []Signature{tampered}, "does not verify"},
		{"other digest", []Signature{key.sign(t, repo+":4.21.0", digest.FromString("other"))}, "not this image"},
		{"other repository", []Signature{key.sign(t, "quay.example/ocp/other:4.21.0", d)}, "not of repository"},
		{"name only", []Signature{key.sign(t, repo, d)}, "names no tag or digest"},
		{"not base64", []Signature{{Payload: good.Payload, Base64: "%%%"}}, "not base64"},
		{"payload type", []Signature{key.signPayload(t, []byte(`{"critical":{"identity":{"docker-reference":"`+repo+`:1"},"image":{"docker-manifest-digest":"`+d.String()+`"},"type":"atomic container signature"}}`))}, "payload type"},
		{"payload extra field", []Signature{key.signPayload(t, []byte(`{"critical":{"identity":{"docker-reference":"`+repo+`:1"},"image":{"docker-manifest-digest":"`+d.String()+`"},"type":"`+cosignType+`"},"extra":1}`))}, "payload"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := v.Check(repo, d, c.sigs)
			var refused *RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("err = %v, want a RefusedError", err)
			}
			if !strings.Contains(err.Error(), c.want) || refused.Unsigned != (c.sigs == nil) {
				t.Errorf("err = %v (unsigned %t), want %q", err, refused.Unsigned, c.want)
			}
		})
	}
	if err := v.Check(repo, d, append(cases[1].sigs, good)); err != nil {
		t.Errorf("one good signature among bad ones: %v", err)
	}
	if err := v.Check("quay.example/elsewhere", d, nil); err != nil {
		t.Errorf("out of scope: %v", err)
	}
}

func TestCheckIdentityRules(t *testing.T) {
	const repo = "mirror.example/ocp/release"
	d := digest.FromString("x")
	key := newTestKey(t, "ecdsa")
	cases := []struct {
		rule, identity string
		ok             bool
	}{
		{"signedIdentity: {matchPolicy: MatchRepository}", repo, true},
		{"signedIdentity: {matchPolicy: MatchRepository}", "mirror.example/ocp/other:1", false},
		{"signedIdentity: {matchPolicy: ExactRepository, exactRepository: {repository: quay.example/ocp/release}}", "quay.example/ocp/release", true},
		{"signedIdentity: {matchPolicy: ExactRepository, exactRepository: {repository: quay.example/ocp/release}}", repo + ":1", false},
		{"signedIdentity: {matchPolicy: RemapIdentity, remapIdentity: {prefix: mirror.example/ocp, signedPrefix: quay.example/openshift}}", "quay.example/openshift/release:4.21.0", true},
		{"signedIdentity: {matchPolicy: RemapIdentity, remapIdentity: {prefix: mirror.example/ocp, signedPrefix: quay.example/openshift}}", "quay.example/openshift/release", false},
		{"signedIdentity: {matchPolicy: RemapIdentity, remapIdentity: {prefix: mirror.example/ocp, signedPrefix: quay.example/openshift}}", repo + ":4.21.0", false},
	}
	for _, c := range cases {
		v := verifierFor(t, key, repo, c.rule)
		err := v.Check(repo, d, []Signature{key.sign(t, c.identity, d)})
		if (err == nil) != c.ok {
			t.Errorf("%s, identity %s: err = %v, want ok=%t", c.rule, c.identity, err, c.ok)
		}
	}
}

func TestCheckRefusesPoliciesItCannotProveOffline(t *testing.T) {
	doc := "apiVersion: config.openshift.io/v1\nkind: ClusterImagePolicy\nmetadata: {name: fulcio}\nspec:\n  scopes: [quay.example/x]\n  policy:\n    rootOfTrust:\n      policyType: FulcioCAWithRekor\n      fulcioCAWithRekor: {fulcioCAData: eA==, rekorKeyData: eA==}\n"
	policies, err := ParsePolicies("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(policies)
	if err != nil {
		t.Fatal(err)
	}
	err = v.Check("quay.example/x", digest.FromString("x"), nil)
	if err == nil || !strings.Contains(err.Error(), "FulcioCAWithRekor cannot be proven") {
		t.Fatalf("err = %v", err)
	}
}
