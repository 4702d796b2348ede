package sigstore_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ferryhq/ferry/mirror/sigstore"
)

// redHatPolicyKeyPEM is the key of Red Hat's real ClusterImagePolicy in
// shared/fixtures/redhat beside the checkout, decoded from its keyData.
func redHatPolicyKeyPEM(t *testing.T) []byte {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file to find the fixtures")
	}
	path := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "fixtures", "redhat", "cluster-image-policy.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("Red Hat fixture missing (shared/fixtures must sit beside the checkout): %v", err)
	}
	var policy struct {
		Spec struct {
			Policy struct {
				RootOfTrust struct {
					PolicyType string `yaml:"policyType"`
					PublicKey  struct {
						KeyData string `yaml:"keyData"`
					} `yaml:"publicKey"`
				} `yaml:"rootOfTrust"`
			} `yaml:"policy"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &policy); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	trust := policy.Spec.Policy.RootOfTrust
	if trust.PolicyType != "PublicKey" {
		t.Fatalf("%s: policyType %q, want PublicKey", path, trust.PolicyType)
	}
	key, err := base64.StdEncoding.DecodeString(trust.PublicKey.KeyData)
	if err != nil {
		t.Fatalf("%s: keyData: %v", path, err)
	}
	return key
}

func TestRedHatKeyIsTheRealPolicyKey(t *testing.T) {
	policyKey := redHatPolicyKeyPEM(t)
	if !sigstore.IsRedHatKey(policyKey) {
		t.Fatal("the key of Red Hat's real ClusterImagePolicy is not recognised as Red Hat's")
	}
	if !sigstore.IsRedHatKey(sigstore.RedHatPublicKeyPEM()) {
		t.Error("the built-in key is not Red Hat's")
	}
	block, _ := pem.Decode(sigstore.RedHatPublicKeyPEM())
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("built-in key: %v", err)
	}
	if rsaKey, ok := key.(*rsa.PublicKey); !ok || rsaKey.N.BitLen() != 4096 {
		t.Errorf("built-in key is a %T, want RSA-4096", key)
	}
	// The same key written another way (a PEM header, white space
	// before it) is still Red Hat's: keys are compared, not bytes.
	rewritten := append([]byte("\n  "), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Comment": "re-encoded"}, Bytes: block.Bytes})...)
	if !sigstore.IsRedHatKey(rewritten) {
		t.Error("Red Hat's key re-encoded is not recognised")
	}
	// The caller owns the returned PEM: changing it changes nothing.
	spoilt := sigstore.RedHatPublicKeyPEM()
	clear(spoilt)
	if !sigstore.IsRedHatKey(policyKey) {
		t.Error("clearing the returned PEM changed the built-in key")
	}
}

func TestOtherKeysAreNotRedHats(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	redHat := sigstore.RedHatPublicKeyPEM()
	block, _ := pem.Decode(redHat)
	cases := map[string][]byte{
		"a fresh RSA key":                  publicKeyPEM(t, &rsaKey.PublicKey),
		"a fresh ECDSA key":                publicKeyPEM(t, &ecKey.PublicKey),
		"nothing":                          nil,
		"garbage":                          []byte("not a key \x00\xff"),
		"a PEM block of garbage":           pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")}),
		"Red Hat's key as a certificate":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}),
		"Red Hat's key then another key":   append(append([]byte{}, redHat...), publicKeyPEM(t, &rsaKey.PublicKey)...),
		"Red Hat's key after text":         append([]byte("key:\n"), redHat...),
		"Red Hat's key cut short":          redHat[:len(redHat)/2],
		"Red Hat's key with a flipped bit": flipLastKeyByte(t, block.Bytes),
	}
	for name, data := range cases {
		if sigstore.IsRedHatKey(data) {
			t.Errorf("%s is taken for Red Hat's key", name)
		}
	}
}

func publicKeyPEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// flipLastKeyByte changes the key's exponent's last byte, leaving a
// well-formed key that is not Red Hat's.
func flipLastKeyByte(t *testing.T, der []byte) []byte {
	t.Helper()
	changed := append([]byte{}, der...)
	changed[len(changed)-1] ^= 0x02
	if _, err := x509.ParsePKIXPublicKey(changed); err != nil {
		t.Fatalf("the changed key should still parse: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: changed})
}
