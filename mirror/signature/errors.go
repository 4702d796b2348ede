package signature

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror/internal/httpget"
)

// UnknownKeyError means the signature was made by a key that is not in the
// keyring. KeyID is the 16-hex-digit key ID the signature names.
type UnknownKeyError struct {
	KeyID string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("signed by key %s, which is not in the keyring", e.KeyID)
}

// KeyUsageError means the signing key is in the keyring but its
// self-signature does not allow it to sign data.
type KeyUsageError struct {
	KeyID string
}

func (e *KeyUsageError) Error() string {
	return fmt.Sprintf("signed by key %s, which the keyring holds but not as a signing key", e.KeyID)
}

// DigestMismatchError means the signature is good but signs another image:
// Got is the digest in the payload, Want the one asked for.
type DigestMismatchError struct {
	Want, Got digest.Digest
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("signature is for digest %s, want %s", e.Got, e.Want)
}

// WrongTypeError means the payload's critical.type is not
// "atomic container signature".
type WrongTypeError struct {
	Type string
}

func (e *WrongTypeError) Error() string {
	return fmt.Sprintf("payload critical.type is %q, want %q", e.Type, PayloadType)
}

// UnknownFieldError means the payload has a field the format does not
// define. Field is its dotted path, e.g. "critical.image.extra". The CVO
// rejects such payloads, so ferry does too.
type UnknownFieldError struct {
	Field string
}

func (e *UnknownFieldError) Error() string {
	return fmt.Sprintf("payload has unknown field %q", e.Field)
}

// PayloadError means the payload is not well-formed: not JSON, too large, a
// required field missing or of the wrong JSON type, a field twice, a
// malformed digest, an empty reference. Field is the dotted path of the
// offending field, empty for the payload as a whole.
type PayloadError struct {
	Field  string
	Reason string
}

func (e *PayloadError) Error() string {
	if e.Field == "" {
		return "payload: " + e.Reason
	}
	return fmt.Sprintf("payload field %q: %s", e.Field, e.Reason)
}

// MalformedError means the bytes are not an OpenPGP signed message of the
// shape release signatures have: garbage, an empty or oversized file, a
// detached signature, a key, an armored block, extra packets.
type MalformedError struct {
	Reason string
	Err    error
}

func (e *MalformedError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("not a signed message: %s: %v", e.Reason, e.Err)
	}
	return "not a signed message: " + e.Reason
}

func (e *MalformedError) Unwrap() error { return e.Err }

// BadSignatureError means the cryptographic check failed: the signed data or
// the signature was altered, or the signature was not made by the key it
// names.
type BadSignatureError struct {
	KeyID string
	Err   error
}

func (e *BadSignatureError) Error() string {
	return fmt.Sprintf("bad signature by key %s: %v", e.KeyID, e.Err)
}

func (e *BadSignatureError) Unwrap() error { return e.Err }

// ExpiredError means the signature (What is "signature") or the key that
// made it (What is "key") has expired. A signature or key dated in the
// future counts as expired, as OpenPGP implementations treat it.
type ExpiredError struct {
	What  string
	KeyID string
}

func (e *ExpiredError) Error() string {
	if e.What == "key" {
		return fmt.Sprintf("signing key %s has expired (or is not valid yet)", e.KeyID)
	}
	return fmt.Sprintf("signature by key %s has expired (or is dated in the future)", e.KeyID)
}

// RevokedError means the key that made the signature has been revoked.
type RevokedError struct {
	KeyID string
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("signing key %s has been revoked", e.KeyID)
}

// UnsupportedError means the signature uses something the
// cluster-version-operator would not accept either: a packet version other
// than 3 or 4, a public-key or hash algorithm outside what it verifies, MD5.
type UnsupportedError struct {
	What string
}

func (e *UnsupportedError) Error() string {
	return "unsupported signature: " + e.What
}

// FetchError means no store gave a usable signature. Tried lists every URL
// asked, in order, with its answer; Unwrap returns the errors among them so
// that errors.As finds, e.g., a [*TooLargeError].
type FetchError struct {
	Digest digest.Digest
	Tried  []Attempt
}

func (e *FetchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no signature store served the signatures of %s", e.Digest)
	for i, a := range e.Tried {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", a.URL, a.Answer)
	}
	return b.String()
}

func (e *FetchError) Unwrap() []error {
	var errs []error
	for _, a := range e.Tried {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	return errs
}

// TooLargeError means a store answered with a body larger than the limit.
// Its fields are URL, the signature's, and Limit, the cap in bytes.
type TooLargeError httpget.TooLargeError

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: body larger than the %d-byte limit for a signature", e.URL, e.Limit)
}

// StatusError is an HTTP answer that is neither a signature nor a 404:
// URL, Status (e.g. "503 Service Unavailable") and Code. Its message is
// "GET <URL>: <Status>". Package graph's StatusError is the same type.
type StatusError = httpget.StatusError
