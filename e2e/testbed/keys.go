package testbed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Key is an OpenPGP signing key generated for one test. RSA, like Red Hat's
// release keys, so the cluster-version-operator's verifier accepts it too.
type Key struct {
	entity *openpgp.Entity
	// Fingerprint is the upper-case hex fingerprint of the primary key.
	Fingerprint string
	// KeyID is the upper-case 16-hex-digit long key ID.
	KeyID string
}

// NewKey generates a fresh 2048-bit RSA signing key named name.
func NewKey(t testing.TB, name string) *Key {
	t.Helper()
	e, err := openpgp.NewEntity(name, "ferry test key", name+"@ferry.test", &packet.Config{
		Algorithm: packet.PubKeyAlgoRSA,
		RSABits:   2048,
	})
	if err != nil {
		t.Fatalf("generate key %s: %v", name, err)
	}
	return &Key{
		entity:      e,
		Fingerprint: strings.ToUpper(fmt.Sprintf("%x", e.PrimaryKey.Fingerprint)),
		KeyID:       fmt.Sprintf("%016X", e.PrimaryKey.KeyId),
	}
}

// PublicBinary is the public key as a binary OpenPGP keyring.
func (k *Key) PublicBinary(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := k.entity.Serialize(&buf); err != nil {
		t.Fatalf("serialize public key: %v", err)
	}
	return buf.Bytes()
}

// PublicArmored is the public key ASCII-armored, as Red Hat publishes its keys.
func (k *Key) PublicArmored(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatalf("armor public key: %v", err)
	}
	if err := k.entity.Serialize(w); err != nil {
		t.Fatalf("serialize public key: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("armor public key: %v", err)
	}
	return buf.Bytes()
}

// PrivateArmored is the private key, unprotected and ASCII-armored, as
// `gpg --export-secret-keys --armor` writes it: for ferry pack --sign-key.
func (k *Key) PrivateArmored(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatalf("armor private key: %v", err)
	}
	if err := k.entity.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatalf("serialize private key: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("armor private key: %v", err)
	}
	return buf.Bytes()
}

// SignBytes wraps payload in a signed OpenPGP message (not detached), the
// way `gpg --sign` and Red Hat's signing service do.
func (k *Key) SignBytes(t testing.TB, payload []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := openpgp.Sign(&buf, k.entity, nil, nil)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	if _, err := w.Write(payload); err != nil {
		t.Fatalf("sign: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("sign: %v", err)
	}
	return buf.Bytes()
}

// Payload is the JSON a release signature carries (SPEC §2).
type Payload struct {
	Critical struct {
		Type  string `json:"type"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
	} `json:"critical"`
	Optional struct {
		Creator   string `json:"creator,omitempty"`
		Timestamp int64  `json:"timestamp,omitempty"`
	} `json:"optional"`
}

// ReleasePayload is a well-formed payload for digest and identity.
func ReleasePayload(digest, identity string) Payload {
	var p Payload
	p.Critical.Type = "atomic container signature"
	p.Critical.Image.DockerManifestDigest = digest
	p.Critical.Identity.DockerReference = identity
	p.Optional.Creator = "ferry testbed"
	p.Optional.Timestamp = time.Now().Unix()
	return p
}

// SignRelease signs a well-formed payload for digest and identity.
func (k *Key) SignRelease(t testing.TB, digest, identity string) []byte {
	t.Helper()
	return k.SignPayload(t, ReleasePayload(digest, identity))
}

// SignPayload signs the JSON encoding of p.
func (k *Key) SignPayload(t testing.TB, p Payload) []byte {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("marshal payload: %v", err)
	}
	return k.SignBytes(t, b)
}
