package signature

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxDetachedSignatureSize caps a detached signature read into memory: an
// armored OpenPGP signature is well under 2 KiB, even with a 4096-bit key.
const MaxDetachedSignatureSize = 64 << 10

// SigningKey is an OpenPGP private key, decrypted, ready to sign bundles.
type SigningKey struct {
	entity *openpgp.Entity
	// Fingerprint is the primary key's fingerprint, upper-case hex.
	Fingerprint string
	// UserID is the key's primary user ID, if any.
	UserID string
}

// ParseSigningKey reads one OpenPGP private key (armored or binary) named
// name and decrypts it with passphrase when it is encrypted. A file with
// several private keys is refused, so that which key signs is never a guess.
func ParseSigningKey(name string, data, passphrase []byte) (*SigningKey, error) {
	var list openpgp.EntityList
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte(armorBegin)) {
		list, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		list, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", name, err)
	}
	var keys []*openpgp.Entity
	for _, e := range list {
		if e.PrivateKey != nil {
			keys = append(keys, e)
		}
	}
	switch len(keys) {
	case 0:
		return nil, fmt.Errorf("signing key %s: holds no private key (export it with gpg --export-secret-keys --armor)", name)
	case 1:
	default:
		return nil, fmt.Errorf("signing key %s: holds %d private keys; give a file with exactly one", name, len(keys))
	}
	e := keys[0]
	if e.PrivateKey.Encrypted {
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("signing key %s is protected by a passphrase, and none was given", name)
		}
		if err := e.DecryptPrivateKeys(passphrase); err != nil {
			return nil, fmt.Errorf("signing key %s: wrong passphrase or damaged key: %w", name, err)
		}
	}
	if _, ok := e.SigningKey(time.Now()); !ok {
		return nil, fmt.Errorf("signing key %s: no key in it may sign now (expired, revoked or without the signing flag)", name)
	}
	k := &SigningKey{entity: e, Fingerprint: fingerprint(e.PrimaryKey.Fingerprint)}
	if id := e.PrimaryIdentity(); id != nil {
		k.UserID = id.Name
	}
	return k, nil
}

// PublicKey returns the armored public half of k, for the bastion's keyring.
func (k *SigningKey) PublicKey() ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := k.entity.Serialize(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SignDetached writes an armored detached signature of everything read from
// data, as `gpg --detach-sign --armor` does, so `gpg --verify` checks it.
func (k *SigningKey) SignDetached(w io.Writer, data io.Reader) error {
	if err := openpgp.ArmoredDetachSign(w, k.entity, data, nil); err != nil {
		return fmt.Errorf("sign with key %s: %w", k.Fingerprint, err)
	}
	return nil
}

// Signer describes who made a detached signature that verified.
type Signer struct {
	Fingerprint string    `json:"fingerprint"`
	UserID      string    `json:"userID,omitempty"`
	SignedAt    time.Time `json:"signedAt"`
}

func (s *Signer) String() string {
	if s.UserID == "" {
		return fmt.Sprintf("key %s at %s", s.Fingerprint, s.SignedAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s (key %s) at %s", s.UserID, s.Fingerprint, s.SignedAt.UTC().Format(time.RFC3339))
}

// VerifyDetached checks sig, an armored or binary detached OpenPGP signature,
// over everything read from data, against the keys of kr, at the current
// time. The error is an *UnknownKeyError, *ExpiredError, *RevokedError,
// *BadSignatureError or *MalformedError.
func VerifyDetached(kr *Keyring, data io.Reader, sig []byte) (*Signer, error) {
	if len(sig) > MaxDetachedSignatureSize {
		return nil, &MalformedError{Reason: fmt.Sprintf("detached signature of %d bytes, more than the %d allowed", len(sig), MaxDetachedSignatureSize)}
	}
	raw, err := dearmorSignature(sig)
	if err != nil {
		return nil, err
	}
	packetSig, signer, err := openpgp.VerifyDetachedSignature(kr.entityList(), data, raw, nil)
	if err != nil {
		if packetSig == nil {
			packetSig = firstSignaturePacket(sig)
		}
		return nil, classifyDetached(err, packetSig)
	}
	s := &Signer{Fingerprint: fingerprint(signer.PrimaryKey.Fingerprint), SignedAt: packetSig.CreationTime}
	if id := signer.PrimaryIdentity(); id != nil {
		s.UserID = id.Name
	}
	return s, nil
}

// dearmorSignature returns the packets of sig, armored or not.
func dearmorSignature(sig []byte) (io.Reader, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(sig), []byte(armorBegin)) {
		return bytes.NewReader(sig), nil
	}
	block, err := armor.Decode(bytes.NewReader(sig))
	if err != nil {
		return nil, &MalformedError{Reason: "armor: " + err.Error()}
	}
	if block.Type != openpgp.SignatureType {
		return nil, &MalformedError{Reason: fmt.Sprintf("armored block %q, not a signature", block.Type)}
	}
	return block.Body, nil
}

// firstSignaturePacket parses sig's first packet, to name its issuer when
// go-crypto found no key for it; nil when it is not a signature.
func firstSignaturePacket(sig []byte) *packet.Signature {
	raw, err := dearmorSignature(sig)
	if err != nil {
		return nil
	}
	p, err := packet.NewReader(raw).Next()
	if err != nil {
		return nil
	}
	s, _ := p.(*packet.Signature)
	return s
}

func classifyDetached(err error, sig *packet.Signature) error {
	id := "unknown"
	if sig != nil && sig.IssuerKeyId != nil {
		id = keyID(*sig.IssuerKeyId)
	}
	var structural pgperrors.StructuralError
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return &UnknownKeyError{KeyID: id}
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return &ExpiredError{What: "signature", KeyID: id}
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return &ExpiredError{What: "key", KeyID: id}
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return &RevokedError{KeyID: id}
	case errors.As(err, &structural), errors.Is(err, io.ErrUnexpectedEOF):
		return &MalformedError{Reason: err.Error()}
	}
	return &BadSignatureError{KeyID: id, Err: err}
}
