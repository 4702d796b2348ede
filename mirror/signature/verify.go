package signature

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/opencontainers/go-digest"
)

// Verified is what a good signature says, and who said it.
type Verified struct {
	// KeyID is the 16-hex-digit ID of the key that made the signature (a
	// subkey's ID when a subkey signed).
	KeyID string
	// Fingerprint is the fingerprint of that key's primary key, the key a
	// user trusts: upper-case hex without spaces.
	Fingerprint string
	// Identity is the payload's docker-reference (informative only).
	Identity string
	// Creator is the payload's optional creator, empty when absent.
	Creator string
	// Timestamp is the payload's optional timestamp, 0 when absent.
	Timestamp int64
	// Digest is the signed manifest digest, equal to the one asked for.
	Digest digest.Digest
	// SignedAt is the signature packet's creation time.
	SignedAt time.Time
	// PacketVersion is the signature packet's version: 3 or 4.
	PacketVersion int
}

// Verify checks sig, a release signature as served by a signature store,
// against the keys of kr and the release digest want, by the
// cluster-version-operator's rules (see the package documentation), at the
// current time. kr may be nil or empty, in which case every signature fails
// with an *UnknownKeyError. The docker-reference is returned, not checked.
//
// The error, when not nil, is one of the typed errors of this package:
// *MalformedError, *UnsupportedError, *UnknownKeyError, *KeyUsageError,
// *BadSignatureError, *ExpiredError, *RevokedError, *PayloadError,
// *UnknownFieldError, *WrongTypeError or *DigestMismatchError; an invalid
// want is a plain error.
func Verify(sig []byte, kr *Keyring, want digest.Digest) (*Verified, error) {
	return verifyAt(sig, kr, want, time.Now())
}

// signed is the outcome of the cryptographic check: the payload bytes now
// known to be signed, and by whom.
type signed struct {
	payload []byte
	key     openpgp.Key
	at      time.Time
	version int
}

func verifyAt(sig []byte, kr *Keyring, want digest.Digest, now time.Time) (*Verified, error) {
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("verify signature: digest %q to check against: %w", want, err)
	}
	msg, err := readMessage(sig)
	if err != nil {
		return nil, err
	}
	if len(msg.sig) == 0 {
		return nil, &MalformedError{Reason: "empty signature packet"}
	}
	var s *signed
	switch v := msg.sig[0]; v {
	case 2, 3: // version 2 is laid out as version 3 (RFC 4880 §5.2.2)
		s, err = verifyV3(msg, kr, now)
	case 4:
		s, err = verifyV4(sig, msg, kr, now)
	default:
		err = &UnsupportedError{What: fmt.Sprintf("signature packet version %d; the cluster verifies versions 3 and 4", v)}
	}
	if err != nil {
		return nil, err
	}
	// Only now, with the signature good, is the payload worth reading.
	p, err := ParsePayload(s.payload)
	if err != nil {
		return nil, err
	}
	if p.Digest != want {
		return nil, &DigestMismatchError{Want: want, Got: p.Digest}
	}
	return &Verified{
		KeyID:         keyID(s.key.PublicKey.KeyId),
		Fingerprint:   fingerprint(s.key.Entity.PrimaryKey.Fingerprint),
		Identity:      p.Identity,
		Creator:       p.Creator,
		Timestamp:     p.Timestamp,
		Digest:        p.Digest,
		SignedAt:      s.at,
		PacketVersion: s.version,
	}, nil
}

// signingKeys returns the keys of kr with key ID id whose self-signature
// lets them sign, as go-crypto looks them up.
func signingKeys(kr *Keyring, id uint64) ([]openpgp.Key, error) {
	el := kr.entityList()
	if keys := el.KeysByIdUsage(id, packet.KeyFlagSign); len(keys) > 0 {
		return keys, nil
	}
	if len(el.KeysById(id)) > 0 {
		return nil, &KeyUsageError{KeyID: keyID(id)}
	}
	return nil, &UnknownKeyError{KeyID: keyID(id)}
}

// checkOnePass requires the one-pass signature packet to announce what the
// signature packet holds. The one-pass packet is not signed; go-crypto
// hashes the data with its algorithm and finds the key by its key ID, so a
// message whose two packets disagree is refused rather than interpreted.
func checkOnePass(ops *packet.OnePassSignature, sigType packet.SignatureType, h crypto.Hash, algo packet.PublicKeyAlgorithm, id uint64) error {
	switch {
	case ops.KeyId != id:
		return &MalformedError{Reason: fmt.Sprintf("one-pass signature names key %s, the signature key %s", keyID(ops.KeyId), keyID(id))}
	case ops.SigType != sigType:
		return &MalformedError{Reason: fmt.Sprintf("one-pass signature type 0x%02x differs from the signature's 0x%02x", uint8(ops.SigType), uint8(sigType))}
	case ops.Hash != h:
		return &MalformedError{Reason: fmt.Sprintf("one-pass signature hash %s differs from the signature's %s", ops.Hash, h)}
	case ops.PubKeyAlgo != algo:
		return &MalformedError{Reason: fmt.Sprintf("one-pass signature algorithm %d differs from the signature's %d", ops.PubKeyAlgo, algo)}
	}
	return nil
}

// verifyV4 checks a message with a version 4 signature packet with
// go-crypto, after checking the packet against the cluster's limits.
func verifyV4(data []byte, msg *message, kr *Keyring, now time.Time) (*signed, error) {
	p, err := (&packet.OpaquePacket{Tag: tagSignature, Contents: msg.sig}).Parse()
	if err != nil {
		var unsupported pgperrors.UnsupportedError
		if errors.As(err, &unsupported) {
			return nil, &UnsupportedError{What: string(unsupported)}
		}
		return nil, &MalformedError{Reason: "signature packet", Err: err}
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return nil, &MalformedError{Reason: "signature packet did not parse as one"}
	}
	if sig.SigType != packet.SigTypeBinary && sig.SigType != packet.SigTypeText {
		return nil, &MalformedError{Reason: fmt.Sprintf("signature type 0x%02x is not a signature of data", uint8(sig.SigType))}
	}
	switch sig.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoDSA, packet.PubKeyAlgoECDSA:
		// What the cluster's x/crypto/openpgp verifies.
	default:
		return nil, &UnsupportedError{What: fmt.Sprintf("public-key algorithm %d, which the cluster cannot verify", sig.PubKeyAlgo)}
	}
	if !acceptedHash(sig.Hash) {
		return nil, &UnsupportedError{What: fmt.Sprintf("hash algorithm %s", sig.Hash)}
	}
	if sig.IssuerKeyId == nil {
		return nil, &MalformedError{Reason: "signature names no issuer key"}
	}
	id := *sig.IssuerKeyId
	if err := checkOnePass(msg.onePass, sig.SigType, sig.Hash, sig.PubKeyAlgo, id); err != nil {
		return nil, err
	}
	if _, err := signingKeys(kr, id); err != nil {
		return nil, err
	}

	limit := int64(maxMessageSize)
	cfg := &packet.Config{
		Time:                       func() time.Time { return now },
		MaxDecompressedMessageSize: &limit,
	}
	md, err := openpgp.ReadMessage(bytes.NewReader(data), kr.entityList(), nil, cfg)
	if err != nil {
		return nil, &MalformedError{Reason: "reading the message", Err: err}
	}
	if !md.IsSigned || md.SignedBy == nil {
		// signingKeys found the key, so this cannot happen unless the
		// two readers disagree; refuse rather than trust either.
		return nil, &UnknownKeyError{KeyID: keyID(md.SignedByKeyId)}
	}
	// The signature is checked when the body has been read to EOF.
	body, err := io.ReadAll(io.LimitReader(md.UnverifiedBody, MaxPayloadSize+1))
	if err != nil {
		return nil, &MalformedError{Reason: "reading the payload", Err: err}
	}
	if len(body) > MaxPayloadSize {
		return nil, &MalformedError{Reason: fmt.Sprintf("payload larger than %d bytes", MaxPayloadSize)}
	}
	signer := keyID(md.SignedBy.PublicKey.KeyId)
	if err := md.SignatureError; err != nil {
		switch {
		case errors.Is(err, pgperrors.ErrSignatureExpired):
			return nil, &ExpiredError{What: "signature", KeyID: signer}
		case errors.Is(err, pgperrors.ErrKeyExpired):
			return nil, &ExpiredError{What: "key", KeyID: signer}
		case errors.Is(err, pgperrors.ErrKeyRevoked):
			return nil, &RevokedError{KeyID: signer}
		}
		return nil, &BadSignatureError{KeyID: signer, Err: err}
	}
	if md.Signature == nil {
		return nil, &BadSignatureError{KeyID: signer, Err: errors.New("no signature checked")}
	}
	if !bytes.Equal(body, msg.literal) {
		// Both readers parsed the same bytes; if they disagree on the
		// payload, trust neither.
		return nil, &MalformedError{Reason: "the payload read while verifying differs from the message's literal data"}
	}
	return &signed{payload: body, key: *md.SignedBy, at: md.Signature.CreationTime, version: 4}, nil
}

// checkKey tells whether key may have made a signature at now: neither it,
// its primary key nor its binding self-signatures expired or revoked. It is
// what go-crypto checks for version 4 signatures, applied to version 3 ones.
func checkKey(key openpgp.Key, now time.Time) error {
	id := keyID(key.PublicKey.KeyId)
	primarySelf, primaryIdentity := key.Entity.PrimarySelfSignature()
	if primarySelf == nil {
		return &KeyUsageError{KeyID: id}
	}
	bySubkey := key.PublicKey != key.Entity.PrimaryKey
	if key.Entity.Revoked(now) ||
		(bySubkey && key.Revoked(now)) ||
		(primaryIdentity != nil && primaryIdentity.Revoked(now)) {
		return &RevokedError{KeyID: id}
	}
	if key.Entity.PrimaryKey.KeyExpired(primarySelf, now) {
		return &ExpiredError{What: "key", KeyID: id}
	}
	sigs := []*packet.Signature{primarySelf}
	if bySubkey {
		if key.SelfSignature == nil || key.PublicKey.KeyExpired(key.SelfSignature, now) {
			return &ExpiredError{What: "key", KeyID: id}
		}
		sigs = append(sigs, key.SelfSignature, key.SelfSignature.EmbeddedSignature)
	}
	for _, s := range sigs {
		if s != nil && s.SigExpired(now) {
			return &ExpiredError{What: "key", KeyID: id}
		}
	}
	return nil
}
