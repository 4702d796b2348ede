package signature

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// newSigningKeyFile makes a private key file as `gpg --export-secret-keys
// --armor` writes one, protected by passphrase when it is not empty.
func newSigningKeyFile(t *testing.T, name string, passphrase []byte) []byte {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", &packet.Config{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if len(passphrase) > 0 {
		if err := e.EncryptPrivateKeys(passphrase, nil); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDetachedSignatures(t *testing.T) {
	pass := []byte("correct horse")
	file := newSigningKeyFile(t, "packer", pass)
	if _, err := ParseSigningKey("packer.key", file, nil); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("no passphrase: %v", err)
	}
	if _, err := ParseSigningKey("packer.key", file, []byte("wrong")); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	key, err := ParseSigningKey("packer.key", file, pass)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSigningKey("packer.pub", pub, nil); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Fatalf("public key as signing key: %v", err)
	}
	kr, err := ParseKeyring("packer.pub", pub)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"formatVersion":1}`)
	var sig bytes.Buffer
	if err := key.SignDetached(&sig, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	signer, err := VerifyDetached(kr, bytes.NewReader(data), sig.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if signer.Fingerprint != key.Fingerprint || !strings.Contains(signer.UserID, "packer") || signer.SignedAt.IsZero() {
		t.Fatalf("signer %+v, key %s", signer, key.Fingerprint)
	}

	var bad *BadSignatureError
	if _, err := VerifyDetached(kr, bytes.NewReader([]byte(`{"formatVersion":2}`)), sig.Bytes()); !errors.As(err, &bad) {
		t.Fatalf("other data: %v", err)
	}
	other, err := ParseSigningKey("other.key", newSigningKeyFile(t, "other", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	var otherSig bytes.Buffer
	if err := other.SignDetached(&otherSig, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var unknown *UnknownKeyError
	if _, err := VerifyDetached(kr, bytes.NewReader(data), otherSig.Bytes()); !errors.As(err, &unknown) {
		t.Fatalf("stranger's signature: %v", err)
	}
	var malformed *MalformedError
	for _, junk := range [][]byte{nil, []byte("not a signature"), pub, bytes.Repeat([]byte("A"), MaxDetachedSignatureSize+1)} {
		if _, err := VerifyDetached(kr, bytes.NewReader(data), junk); err == nil {
			t.Fatalf("junk %q verified", junk[:min(len(junk), 20)])
		} else if !errors.As(err, &malformed) && !errors.As(err, &unknown) && !errors.As(err, &bad) {
			t.Fatalf("junk: untyped error %T %v", err, err)
		}
	}
}
