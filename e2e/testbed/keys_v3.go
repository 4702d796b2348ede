package testbed

import (
	"bytes"
	"crypto"
	_ "crypto/md5" // V3Options.Hash may be MD5, to test that verifiers refuse it
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// NewKeyAt generates a 2048-bit RSA signing key, as NewKey does, created at
// created and expiring lifetime later (0: never). With a date in the past
// it can make signatures that have already expired, or be expired itself.
func NewKeyAt(t testing.TB, name string, created time.Time, lifetime time.Duration) *Key {
	t.Helper()
	e, err := openpgp.NewEntity(name, "ferry test key", name+"@ferry.test", &packet.Config{
		Algorithm:       packet.PubKeyAlgoRSA,
		RSABits:         2048,
		Time:            func() time.Time { return created },
		KeyLifetimeSecs: uint32(lifetime / time.Second),
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

// Revoke adds a key revocation to k: PublicBinary and PublicArmored then
// carry it, and verifiers must refuse k's signatures.
func (k *Key) Revoke(t testing.TB) {
	t.Helper()
	if err := k.entity.RevokeKey(packet.KeyRetired, "ferry test", nil); err != nil {
		t.Fatalf("revoke key %s: %v", k.KeyID, err)
	}
}

// SignBytesAt is SignBytes with the signature dated created and expiring
// lifetime later (0: never). created must fall within the key's validity.
func (k *Key) SignBytesAt(t testing.TB, payload []byte, created time.Time, lifetime time.Duration) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := openpgp.Sign(&buf, k.entity, nil, &packet.Config{
		Time:            func() time.Time { return created },
		SigLifetimeSecs: uint32(lifetime / time.Second),
	})
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

// V3Options shape a version 3 signature made by SignBytesV3.
type V3Options struct {
	// Text makes a text signature (type 0x01): the data is hashed with
	// CRLF line endings. Otherwise it is a binary signature (type 0x00).
	Text bool
	// Hash is the hash algorithm; 0 means SHA-256. MD5 is allowed so
	// that tests can check it is refused.
	Hash crypto.Hash
	// Created dates the signature; zero means now.
	Created time.Time
	// Compress wraps the message in a ZIP-compressed data packet, as
	// Red Hat's signatures are.
	Compress bool
}

// SignBytesV3 wraps payload in a signed OpenPGP message whose signature
// packet is version 3 (RFC 4880 §5.2.2), the format of older Red Hat
// release signatures, which go-crypto can no longer produce: one-pass
// signature, literal data, signature, optionally compressed.
func (k *Key) SignBytesV3(t testing.TB, payload []byte, o V3Options) []byte {
	t.Helper()
	priv, ok := k.entity.PrivateKey.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("key %s is not RSA", k.KeyID)
	}
	h := o.Hash
	if h == 0 {
		h = crypto.SHA256
	}
	hashID, ok := map[crypto.Hash]byte{
		crypto.MD5: 1, crypto.SHA1: 2, crypto.SHA256: 8, crypto.SHA384: 9, crypto.SHA512: 10, crypto.SHA224: 11,
	}[h]
	if !ok {
		t.Fatalf("no OpenPGP ID for hash %v", h)
	}
	created := o.Created
	if created.IsZero() {
		created = time.Now()
	}
	sigType := byte(0x00)
	if o.Text {
		sigType = 0x01
	}

	// The hashed trailer of a version 3 signature: type and time.
	trailer := make([]byte, 5)
	trailer[0] = sigType
	binary.BigEndian.PutUint32(trailer[1:], uint32(created.Unix()))
	hh := h.New()
	var data io.Writer = hh
	if o.Text {
		data = openpgp.NewCanonicalTextHash(hh)
	}
	data.Write(payload)
	hh.Write(trailer)
	sum := hh.Sum(nil)
	value, err := rsa.SignPKCS1v15(rand.Reader, priv, h, sum)
	if err != nil {
		t.Fatalf("sign v3: %v", err)
	}
	value = bytes.TrimLeft(value, "\x00") // an MPI has no leading zero bytes

	var body bytes.Buffer
	body.Write([]byte{3, 5})
	body.Write(trailer)
	binary.Write(&body, binary.BigEndian, k.entity.PrimaryKey.KeyId)
	body.Write([]byte{byte(packet.PubKeyAlgoRSA), hashID, sum[0], sum[1]})
	bits := uint16(len(value)*8 - leadingZeroBits(value[0]))
	binary.Write(&body, binary.BigEndian, bits)
	body.Write(value)

	var out bytes.Buffer
	var w io.WriteCloser = nopWriteCloser{&out}
	if o.Compress {
		if w, err = packet.SerializeCompressed(w, packet.CompressionZIP, nil); err != nil {
			t.Fatalf("compress: %v", err)
		}
	}
	ops := []byte{3, sigType, hashID, byte(packet.PubKeyAlgoRSA), 0, 0, 0, 0, 0, 0, 0, 0, 1}
	binary.BigEndian.PutUint64(ops[4:12], k.entity.PrimaryKey.KeyId)
	format := byte('b')
	if o.Text {
		format = 't'
	}
	lit := append([]byte{format, 0}, 0, 0, 0, 0) // no file name, no date
	for _, p := range []struct {
		tag  byte
		body []byte
	}{{4, ops}, {11, append(lit, payload...)}, {2, body.Bytes()}} {
		if err := writePacket(w, p.tag, p.body); err != nil {
			t.Fatalf("write packet %d: %v", p.tag, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("compress: %v", err)
	}
	return out.Bytes()
}

// writePacket writes a new-format packet (RFC 4880 §4.2.2).
func writePacket(w io.Writer, tag byte, body []byte) error {
	hdr := []byte{0xC0 | tag}
	switch n := len(body); {
	case n < 192:
		hdr = append(hdr, byte(n))
	case n < 8384:
		n -= 192
		hdr = append(hdr, byte(n>>8)+192, byte(n))
	default:
		hdr = append(hdr, 255, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

func leadingZeroBits(b byte) int {
	n := 0
	for mask := byte(0x80); mask != 0 && b&mask == 0; mask >>= 1 {
		n++
	}
	return n
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
