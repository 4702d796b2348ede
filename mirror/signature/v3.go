package signature

import (
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Version 3 signature packets (RFC 4880 §5.2.2) are what older Red Hat
// signatures carry, and what the cluster's verifier (Go's old
// x/crypto/openpgp) still accepts. go-crypto no longer parses them, so
// this file verifies them: the format is small and fixed, and only RSA is
// needed (Red Hat's keys are RSA).
//
//	offset  size  field
//	0       1     version: 3 (2 is laid out the same)
//	1       1     length of the hashed material: always 5
//	2       1     signature type   \ the 5 hashed bytes, hashed
//	3       4     creation time    / after the signed data
//	7       8     key ID of the signer
//	15      1     public-key algorithm
//	16      1     hash algorithm
//	17      2     left 16 bits of the hash (a quick check, not security)
//	19      ...   algorithm-specific MPIs: for RSA one MPI, m^d mod n
const v3HeaderLen = 19

type v3Signature struct {
	sigType packet.SignatureType
	hashed  []byte // the 5 bytes hashed after the data: type and creation time
	created time.Time
	keyID   uint64
	algo    packet.PublicKeyAlgorithm
	hash    crypto.Hash
	left16  []byte
	value   []byte // the RSA signature value, big-endian, without the MPI header
}

// parseV3 parses the body of a version 2 or 3 signature packet.
func parseV3(b []byte) (*v3Signature, error) {
	if len(b) < v3HeaderLen {
		return nil, &MalformedError{Reason: fmt.Sprintf("version 3 signature packet truncated (%d bytes)", len(b))}
	}
	if b[1] != 5 {
		return nil, &MalformedError{Reason: fmt.Sprintf("version 3 signature packet hashes %d bytes, want 5", b[1])}
	}
	s := &v3Signature{
		sigType: packet.SignatureType(b[2]),
		hashed:  b[2:7],
		created: time.Unix(int64(binary.BigEndian.Uint32(b[3:7])), 0),
		keyID:   binary.BigEndian.Uint64(b[7:15]),
		algo:    packet.PublicKeyAlgorithm(b[15]),
		left16:  b[17:19],
	}
	// A release signature signs data: a binary document (0x00) or a text
	// one (0x01, hashed with canonical CRLF line endings). Key
	// certifications and other types must never pass as one.
	if s.sigType != packet.SigTypeBinary && s.sigType != packet.SigTypeText {
		return nil, &MalformedError{Reason: fmt.Sprintf("signature type 0x%02x is not a signature of data", b[2])}
	}
	switch s.algo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
	default:
		return nil, &UnsupportedError{What: fmt.Sprintf("version 3 signature with public-key algorithm %d; only RSA is supported", s.algo)}
	}
	h, err := hashByID(b[16])
	if err != nil {
		return nil, err
	}
	s.hash = h

	mpi := b[v3HeaderLen:]
	if len(mpi) < 2 {
		return nil, &MalformedError{Reason: "version 3 signature packet has no signature value"}
	}
	bits := int(binary.BigEndian.Uint16(mpi))
	value := mpi[2:]
	// The MPI must fill the rest of the packet exactly: trailing bytes
	// would be unsigned data a second parser might read differently.
	if bits == 0 || len(value) != (bits+7)/8 {
		return nil, &MalformedError{Reason: fmt.Sprintf("version 3 signature value: header says %d bits, packet holds %d bytes", bits, len(value))}
	}
	s.value = value
	return s, nil
}

// verifyV3 checks a message whose signature packet is version 3.
func verifyV3(msg *message, kr *Keyring, now time.Time) (*signed, error) {
	s, err := parseV3(msg.sig)
	if err != nil {
		return nil, err
	}
	if err := checkOnePass(msg.onePass, s.sigType, s.hash, s.algo, s.keyID); err != nil {
		return nil, err
	}
	keys, err := signingKeys(kr, s.keyID)
	if err != nil {
		return nil, err
	}

	// The signed hash is over the data, then the five hashed bytes of
	// the packet (RFC 4880 §5.2.4). Text signatures hash the data with
	// line endings made CRLF; the trailer is hashed as is.
	if !s.hash.Available() {
		return nil, &UnsupportedError{What: fmt.Sprintf("hash algorithm %s is not available", s.hash)}
	}
	h := s.hash.New()
	var data io.Writer = h
	if s.sigType == packet.SigTypeText {
		data = openpgp.NewCanonicalTextHash(h)
	}
	if _, err := data.Write(msg.literal); err != nil {
		return nil, &MalformedError{Reason: "hashing the payload", Err: err}
	}
	h.Write(s.hashed)
	sum := h.Sum(nil)
	id := keyID(s.keyID)
	// The left 16 bits are a cheap early reject for altered data; they
	// prove nothing on their own, the RSA check below does.
	if subtle.ConstantTimeCompare(sum[:2], s.left16) != 1 {
		return nil, &BadSignatureError{KeyID: id, Err: errors.New("hash does not match the signature's left 16 bits: the signed data was altered")}
	}

	// A 64-bit key ID may name more than one key of the keyring; the
	// signature is good if any of them verifies it.
	var badErr error
	for _, key := range keys {
		if err := verifyRSA(key.PublicKey, s, sum); err != nil {
			badErr = err
			continue
		}
		// Cryptographically good: now the key must also be usable, as
		// go-crypto requires for version 4 signatures.
		if err := checkKey(key, now); err != nil {
			return nil, err
		}
		// Version 3 signatures carry no expiry; like go-crypto for
		// version 4, one dated in the future is not valid yet.
		if s.created.Unix() > now.Unix() {
			return nil, &ExpiredError{What: "signature", KeyID: id}
		}
		return &signed{payload: msg.literal, key: key, at: s.created, version: 3}, nil
	}
	return nil, &BadSignatureError{KeyID: id, Err: badErr}
}

// verifyRSA checks the PKCS#1 v1.5 signature of s over the hash sum with
// pub.
func verifyRSA(pub *packet.PublicKey, s *v3Signature, sum []byte) error {
	switch pub.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
	default:
		return fmt.Errorf("key %s is not an RSA key (algorithm %d)", keyID(pub.KeyId), pub.PubKeyAlgo)
	}
	rsaPub, ok := pub.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("key %s is not an RSA key", keyID(pub.KeyId))
	}
	// An MPI drops leading zero bytes; RSA wants the value as wide as
	// the modulus.
	size := rsaPub.Size()
	if len(s.value) > size {
		return fmt.Errorf("signature value of %d bytes is wider than the %d-byte key", len(s.value), size)
	}
	padded := make([]byte, size)
	copy(padded[size-len(s.value):], s.value)
	if err := rsa.VerifyPKCS1v15(rsaPub, s.hash, sum, padded); err != nil {
		return fmt.Errorf("RSA verification failed: %w", err)
	}
	return nil
}
