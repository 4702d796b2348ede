package signature

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxSignatureSize caps a signature file. Real ones are under 1 KiB.
const MaxSignatureSize = 64 << 10

// maxMessageSize caps the decompressed packets of a message: the payload
// plus room for the one-pass signature and signature packets. It stops a
// small compressed packet from inflating without bound.
const maxMessageSize = MaxPayloadSize + 64<<10

// OpenPGP packet tags (RFC 4880 §4.3) this file looks at.
const (
	tagSignature        = 2
	tagOnePassSignature = 4
	tagSecretKey        = 5
	tagPublicKey        = 6
	tagCompressed       = 8
	tagLiteralData      = 11
)

func tagName(tag uint8) string {
	switch tag {
	case 1:
		return "public-key encrypted session key"
	case tagSignature:
		return "signature"
	case 3:
		return "symmetric-key encrypted session key"
	case tagOnePassSignature:
		return "one-pass signature"
	case tagSecretKey:
		return "secret key"
	case tagPublicKey:
		return "public key"
	case 7:
		return "secret subkey"
	case tagCompressed:
		return "compressed data"
	case 9, 18, 20:
		return "encrypted data"
	case 10:
		return "marker"
	case tagLiteralData:
		return "literal data"
	case 12:
		return "trust"
	case 13:
		return "user ID"
	case 14:
		return "public subkey"
	case 17:
		return "user attribute"
	case 21:
		return "padding"
	}
	return fmt.Sprintf("tag %d", tag)
}

// message is the structure of a release signature, read without trusting
// anything in it yet.
type message struct {
	onePass *packet.OnePassSignature
	literal []byte // the literal data's body: the payload
	sig     []byte // the signature packet's body, without its header
}

// readMessage checks that data is an OpenPGP signed message of exactly the
// shape release signatures have, and returns its parts:
//
//	[compressed data (] one-pass signature, literal data, signature [)]
//
// That is what gpg --sign writes and what the cluster's verifier reads.
// Anything else — a detached signature, a key, several signatures, nested
// compression, trailing packets — is refused here, before any
// cryptography, so that the verifier below never sees a message whose
// packets two parsers could read differently.
//
// It walks packets with go-crypto's OpaqueReader, which frames packets
// (old and new headers, partial lengths) and hands back each body unparsed.
// That matters for the signature packet: go-crypto cannot parse version 3
// signature packets, so their bytes must be kept for our own verifier.
func readMessage(data []byte) (*message, error) {
	if len(data) == 0 {
		return nil, &MalformedError{Reason: "empty"}
	}
	if len(data) > MaxSignatureSize {
		return nil, &MalformedError{Reason: fmt.Sprintf("%d bytes, larger than the %d-byte limit for a signature", len(data), MaxSignatureSize)}
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte(armorBegin)) {
		// The cluster reads signatures as binary OpenPGP; an armored one
		// would fail there, so it must fail here.
		return nil, &MalformedError{Reason: "ASCII-armored; release signatures are binary OpenPGP"}
	}
	outer := packet.NewOpaqueReader(bytes.NewReader(data))
	first, err := outer.Next()
	if err != nil {
		return nil, &MalformedError{Reason: "not OpenPGP data", Err: err}
	}
	if first.Tag != tagCompressed {
		return readSigned(outer, first)
	}
	p, err := first.Parse()
	if err != nil {
		return nil, &MalformedError{Reason: "compressed data packet", Err: err}
	}
	compressed, ok := p.(*packet.Compressed)
	if !ok {
		return nil, &MalformedError{Reason: "compressed data packet did not parse as one"}
	}
	inner := packet.NewOpaqueReader(&cappedReader{r: compressed.Body, n: maxMessageSize})
	head, err := inner.Next()
	if err != nil {
		return nil, packetError("compressed data", err)
	}
	if head.Tag == tagCompressed {
		return nil, &MalformedError{Reason: "compressed data inside compressed data"}
	}
	msg, err := readSigned(inner, head)
	if err != nil {
		return nil, err
	}
	if next, err := outer.Next(); err == nil {
		return nil, &MalformedError{Reason: fmt.Sprintf("a %s packet after the compressed data", tagName(next.Tag))}
	} else if !errors.Is(err, io.EOF) {
		return nil, &MalformedError{Reason: "data after the compressed data", Err: err}
	}
	return msg, nil
}

// readSigned reads one-pass signature, literal data, signature and the end
// of r, first being the packet already read.
func readSigned(r *packet.OpaqueReader, first *packet.OpaquePacket) (*message, error) {
	switch first.Tag {
	case tagOnePassSignature:
	case tagSignature:
		return nil, &MalformedError{Reason: "starts with a signature packet: a detached signature (or a PGP 2 message), not a signed message that carries its payload"}
	case tagPublicKey, tagSecretKey:
		return nil, &MalformedError{Reason: fmt.Sprintf("an OpenPGP %s, not a signature", tagName(first.Tag))}
	case tagLiteralData:
		return nil, &MalformedError{Reason: "literal data without a signature"}
	default:
		return nil, &MalformedError{Reason: fmt.Sprintf("starts with a %s packet, want a one-pass signature", tagName(first.Tag))}
	}
	msg := &message{}
	ops, err := parseOnePass(first)
	if err != nil {
		return nil, err
	}
	msg.onePass = ops

	lit, err := r.Next()
	if err != nil {
		return nil, packetError("one-pass signature", err)
	}
	if lit.Tag != tagLiteralData {
		// A second one-pass signature lands here too: the cluster
		// verifies one signature per message, and so do we.
		return nil, &MalformedError{Reason: fmt.Sprintf("a %s packet after the one-pass signature, want literal data", tagName(lit.Tag))}
	}
	if msg.literal, err = literalBody(lit); err != nil {
		return nil, err
	}

	sig, err := r.Next()
	if err != nil {
		return nil, packetError("literal data", err)
	}
	if sig.Tag != tagSignature {
		return nil, &MalformedError{Reason: fmt.Sprintf("a %s packet after the literal data, want a signature", tagName(sig.Tag))}
	}
	msg.sig = sig.Contents

	if next, err := r.Next(); err == nil {
		return nil, &MalformedError{Reason: fmt.Sprintf("a %s packet after the signature", tagName(next.Tag))}
	} else if !errors.Is(err, io.EOF) {
		return nil, packetError("signature", err)
	}
	return msg, nil
}

// packetError describes a failure to read the packet after the named one.
func packetError(after string, err error) error {
	switch {
	case errors.Is(err, errMessageTooLarge):
		return &MalformedError{Reason: fmt.Sprintf("decompressed message larger than %d bytes", maxMessageSize)}
	case errors.Is(err, io.EOF):
		return &MalformedError{Reason: "message ends after the " + after + " packet"}
	}
	return &MalformedError{Reason: "after the " + after + " packet", Err: err}
}

// parseOnePass parses a one-pass signature packet. Its hash algorithm is
// checked first so that MD5 gets a precise error rather than go-crypto's
// generic "unsupported".
func parseOnePass(op *packet.OpaquePacket) (*packet.OnePassSignature, error) {
	if len(op.Contents) < 4 {
		return nil, &MalformedError{Reason: "one-pass signature packet truncated"}
	}
	if op.Contents[0] != 3 {
		return nil, &UnsupportedError{What: fmt.Sprintf("one-pass signature packet version %d", op.Contents[0])}
	}
	if _, err := hashByID(op.Contents[2]); err != nil {
		return nil, err
	}
	p, err := op.Parse()
	if err != nil {
		return nil, &MalformedError{Reason: "one-pass signature packet", Err: err}
	}
	ops, ok := p.(*packet.OnePassSignature)
	if !ok {
		return nil, &MalformedError{Reason: "one-pass signature packet did not parse as one"}
	}
	if !ops.IsLast {
		return nil, &MalformedError{Reason: "one-pass signature announces nested signatures; want one signature"}
	}
	return ops, nil
}

// literalBody returns the body of a literal data packet, capped.
func literalBody(op *packet.OpaquePacket) ([]byte, error) {
	p, err := op.Parse()
	if err != nil {
		return nil, &MalformedError{Reason: "literal data packet", Err: err}
	}
	lit, ok := p.(*packet.LiteralData)
	if !ok {
		return nil, &MalformedError{Reason: "literal data packet did not parse as one"}
	}
	body, err := io.ReadAll(io.LimitReader(lit.Body, MaxPayloadSize+1))
	if err != nil {
		return nil, &MalformedError{Reason: "literal data packet", Err: err}
	}
	if len(body) > MaxPayloadSize {
		return nil, &MalformedError{Reason: fmt.Sprintf("payload larger than %d bytes", MaxPayloadSize)}
	}
	return body, nil
}

// hashByID maps an OpenPGP hash algorithm ID (RFC 4880 §9.4) to the hash,
// accepting what the cluster's verifier (Go's old x/crypto/openpgp) can
// check. MD5 is refused outright: it is broken, and nothing signs releases
// with it.
func hashByID(id uint8) (crypto.Hash, error) {
	switch id {
	case 1:
		return 0, &UnsupportedError{What: "hash algorithm MD5 is refused"}
	case 2:
		return crypto.SHA1, nil
	case 3:
		return 0, &UnsupportedError{What: "hash algorithm RIPEMD-160"}
	case 8:
		return crypto.SHA256, nil
	case 9:
		return crypto.SHA384, nil
	case 10:
		return crypto.SHA512, nil
	case 11:
		return crypto.SHA224, nil
	}
	return 0, &UnsupportedError{What: fmt.Sprintf("hash algorithm %d", id)}
}

// acceptedHash tells whether hashByID accepts some ID for h.
func acceptedHash(h crypto.Hash) bool {
	switch h {
	case crypto.SHA1, crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512:
		return true
	}
	return false
}

// errMessageTooLarge is what cappedReader reports past its limit.
var errMessageTooLarge = errors.New("decompressed message too large")

// cappedReader reads at most n bytes from r, and fails with
// errMessageTooLarge if r holds more.
type cappedReader struct {
	r io.Reader
	n int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.n < 0 {
		return 0, errMessageTooLarge
	}
	// Read one byte past the limit so that a body of exactly n bytes
	// is fine and n+1 is detected.
	if int64(len(p)) > c.n+1 {
		p = p[:c.n+1]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	if c.n < 0 {
		return k, errMessageTooLarge
	}
	return k, err
}
