package signature_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ferryhq/ferry/mirror/signature"
)

// FuzzParsePayload checks that ParsePayload never panics, fails only with
// its typed errors, and accepts only payloads that encoding/json reads the
// same way: no duplicate or case-folded key may make two parsers disagree.
// The seed corpus in testdata/fuzz/FuzzParsePayload holds the payloads of
// the real Red Hat signatures and edge cases.
func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(`{"critical": {"type": "atomic container signature", "image": {"docker-manifest-digest": "` + testDigest + `"}, "identity": {"docker-reference": "r"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := signature.ParsePayload(data)
		if err != nil {
			var (
				pe *signature.PayloadError
				ue *signature.UnknownFieldError
				we *signature.WrongTypeError
			)
			if !errors.As(err, &pe) && !errors.As(err, &ue) && !errors.As(err, &we) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if p.Identity == "" || p.Digest.Validate() != nil {
			t.Fatalf("accepted %+v: empty identity or invalid digest", p)
		}
		var std struct {
			Critical struct {
				Type  string `json:"type"`
				Image struct {
					Digest string `json:"docker-manifest-digest"`
				} `json:"image"`
				Identity struct {
					Reference string `json:"docker-reference"`
				} `json:"identity"`
			} `json:"critical"`
			Optional struct {
				Creator   string `json:"creator"`
				Timestamp int64  `json:"timestamp"`
			} `json:"optional"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("ParsePayload accepted what encoding/json refuses: %v", err)
		}
		if std.Critical.Type != signature.PayloadType || string(p.Digest) != std.Critical.Image.Digest ||
			p.Identity != std.Critical.Identity.Reference || p.Creator != std.Optional.Creator || p.Timestamp != std.Optional.Timestamp {
			t.Fatalf("ParsePayload read %+v, encoding/json %+v", p, std)
		}
	})
}

// FuzzVerify checks that Verify never panics on arbitrary bytes, fails
// only with its typed errors, and never accepts a signature of another
// digest. Seeds: the real Red Hat signatures (read from the fixtures, v3
// and v4) as published and decompressed, so that mutations reach the
// packets inside, and the hand-made packet sequences in
// testdata/fuzz/FuzzVerify. Setup makes no key: fuzz workers restart
// often, and RSA key generation would dominate.
func FuzzVerify(f *testing.F) {
	kr := loadFixtureKeyring(f, releaseKeyFile)
	for _, name := range []string{"ocp-4.15.0-x86_64.signature-1", "rhel7-7.6.signature-1", "noo-bundle.signature-1"} {
		sig := fixture(f, name)
		f.Add(sig)
		f.Add(decompress(f, sig))
	}
	const want = rhel7Digest // the rhel7 seeds verify: the accepting path is fuzzed too
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := signature.Verify(data, kr, want)
		if err == nil {
			if v.Digest != want || v.Identity == "" || v.KeyID != releaseKeyID {
				t.Fatalf("accepted %+v for %s", v, want)
			}
			return
		}
		if !typedVerifyError(err) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
	})
}

func typedVerifyError(err error) bool {
	var (
		e1  *signature.MalformedError
		e2  *signature.UnsupportedError
		e3  *signature.UnknownKeyError
		e4  *signature.KeyUsageError
		e5  *signature.BadSignatureError
		e6  *signature.ExpiredError
		e7  *signature.RevokedError
		e8  *signature.PayloadError
		e9  *signature.UnknownFieldError
		e10 *signature.WrongTypeError
		e11 *signature.DigestMismatchError
	)
	return errors.As(err, &e1) || errors.As(err, &e2) || errors.As(err, &e3) || errors.As(err, &e4) ||
		errors.As(err, &e5) || errors.As(err, &e6) || errors.As(err, &e7) || errors.As(err, &e8) ||
		errors.As(err, &e9) || errors.As(err, &e10) || errors.As(err, &e11)
}
