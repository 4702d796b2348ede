package signature_test

import (
	"bytes"
	"crypto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/signature"
)

// TestVerifyRedHatFixtures checks real Red Hat signatures, v4 and v3, as
// the cluster would: good with release key 2, refused for another digest,
// refused with only the beta key.
func TestVerifyRedHatFixtures(t *testing.T) {
	release := loadFixtureKeyring(t, releaseKeyFile)
	beta := loadFixtureKeyring(t, betaKeyFile)
	both := loadFixtureKeyring(t, betaKeyFile, releaseKeyFile)

	const nooRef = "registry.access.redhat.com/albo/aws-load-balancer-operator-bundle:0.0.1"
	const nooRedHat = "registry.redhat.io/albo/aws-load-balancer-operator-bundle:0.0.1"
	tests := []struct {
		file     string
		digest   digest.Digest
		identity string
		creator  string
		version  int
		signedAt int64
	}{
		{"ocp-4.15.0-x86_64.signature-1", ocpDigest, "quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64", "Red Hat OpenShift Signing Authority 0.0.1", 4, 1708963212},
		{"rhel7-7.6.signature-1", rhel7Digest, "registry.access.redhat.com/rhel7:7.6", "Red Hat RCM Pub 0.35.0-final ", 3, 1554833664},
		{"noo-bundle.signature-1", nooDigest, nooRef, "Red Hat RCM Pub 0.79.0-final ", 3, 1659345427},
		{"noo-bundle.signature-2", nooDigest, nooRef + "-20", "Red Hat RCM Pub 0.79.0-final ", 3, 0},
		{"noo-bundle.signature-3", nooDigest, nooRedHat, "Red Hat RCM Pub 0.79.0-final ", 3, 0},
		{"noo-bundle.signature-4", nooDigest, nooRedHat + "-20", "Red Hat RCM Pub 0.79.0-final ", 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sig := fixture(t, tt.file)

			for name, kr := range map[string]*signature.Keyring{"release key": release, "release and beta keys": both} {
				v, err := signature.Verify(sig, kr, tt.digest)
				if err != nil {
					t.Fatalf("with %s: Verify: %v", name, err)
				}
				want := signature.Verified{
					KeyID: releaseKeyID, Fingerprint: releaseKeyFingerprint,
					Identity: tt.identity, Creator: tt.creator, Digest: tt.digest,
					PacketVersion: tt.version, SignedAt: v.SignedAt,
				}
				if *v != want {
					t.Errorf("with %s: Verify = %+v, want %+v", name, *v, want)
				}
				if tt.signedAt != 0 && v.SignedAt.Unix() != tt.signedAt {
					t.Errorf("SignedAt = %d, want %d", v.SignedAt.Unix(), tt.signedAt)
				}
			}

			_, err := signature.Verify(sig, release, otherDigest)
			mm := wantErr[*signature.DigestMismatchError](t, err)
			if mm.Want != otherDigest || mm.Got != tt.digest {
				t.Errorf("DigestMismatchError = %+v, want Want %s Got %s", mm, otherDigest, tt.digest)
			}
			wantContains(t, err.Error(), string(tt.digest), otherDigest)

			_, err = signature.Verify(sig, beta, tt.digest)
			if unknown := wantErr[*signature.UnknownKeyError](t, err); unknown.KeyID != releaseKeyID {
				t.Errorf("UnknownKeyError.KeyID = %s, want %s", unknown.KeyID, releaseKeyID)
			}
			wantContains(t, err.Error(), releaseKeyID)

			_, err = signature.Verify(sig, nil, tt.digest)
			wantErr[*signature.UnknownKeyError](t, err)
		})
	}
}

// TestVerifyTamperedFixture flips one byte of the real v3 signature's RSA
// value: the hash still matches its left 16 bits, so only the RSA check can
// catch it.
func TestVerifyTamperedFixture(t *testing.T) {
	kr := loadFixtureKeyring(t, releaseKeyFile)
	for _, file := range []string{"rhel7-7.6.signature-1", "ocp-4.15.0-x86_64.signature-1"} {
		t.Run(file, func(t *testing.T) {
			sig := fixture(t, file)
			// The fixtures are compressed; decompress, flip the last byte
			// (inside the signature value) and verify the plain message.
			plain := decompress(t, sig)
			if _, err := signature.Verify(plain, kr, map[string]digest.Digest{
				"rhel7-7.6.signature-1": rhel7Digest, "ocp-4.15.0-x86_64.signature-1": ocpDigest,
			}[file]); err != nil {
				t.Fatalf("decompressed fixture does not verify: %v", err)
			}
			plain[len(plain)-1] ^= 0x01
			_, err := signature.Verify(plain, kr, rhel7Digest)
			wantErr[*signature.BadSignatureError](t, err)
		})
	}
}

// decompress returns the packets inside a message's compressed data packet,
// which are a valid uncompressed message.
func decompress(t testing.TB, sig []byte) []byte {
	t.Helper()
	p, err := packet.Read(bytes.NewReader(sig))
	if err != nil {
		t.Fatalf("read compressed packet: %v", err)
	}
	c, ok := p.(*packet.Compressed)
	if !ok {
		t.Fatalf("first packet is %T, want compressed data", p)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(c.Body); err != nil {
		t.Fatalf("decompress: %v", err)
	}
	return out.Bytes()
}

const testDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"

func TestVerifyGeneratedSignatures(t *testing.T) {
	key := testbed.NewKey(t, "release")
	kr := parseKeyring(t, "test", key.PublicArmored(t))
	payload := mustJSON(t, testbed.ReleasePayload(testDigest, "example.com/ocp/release:4.15.0-x86_64"))

	tests := []struct {
		name    string
		sig     []byte
		version int
	}{
		{"v4", key.SignBytes(t, payload), 4},
		{"v3 binary", key.SignBytesV3(t, payload, testbed.V3Options{}), 3},
		{"v3 compressed", key.SignBytesV3(t, payload, testbed.V3Options{Compress: true}), 3},
		{"v3 text", key.SignBytesV3(t, payload, testbed.V3Options{Text: true}), 3},
		{"v3 text with newlines", key.SignBytesV3(t, indentJSON(t, payload), testbed.V3Options{Text: true}), 3},
		{"v3 SHA-1", key.SignBytesV3(t, payload, testbed.V3Options{Hash: crypto.SHA1}), 3},
		{"v3 SHA-512", key.SignBytesV3(t, payload, testbed.V3Options{Hash: crypto.SHA512}), 3},
		{"v3 SHA-224", key.SignBytesV3(t, payload, testbed.V3Options{Hash: crypto.SHA224}), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := signature.Verify(tt.sig, kr, testDigest)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if v.KeyID != key.KeyID || v.Fingerprint != key.Fingerprint || v.PacketVersion != tt.version ||
				v.Identity != "example.com/ocp/release:4.15.0-x86_64" || v.Creator != "ferry testbed" || v.Timestamp == 0 {
				t.Errorf("Verify = %+v; want key %s (%s), version %d, testbed identity, creator and timestamp", v, key.KeyID, key.Fingerprint, tt.version)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	key := testbed.NewKey(t, "release")
	other := testbed.NewKey(t, "stranger")
	kr := parseKeyring(t, "test", key.PublicBinary(t))
	good := mustJSON(t, testbed.ReleasePayload(testDigest, "example.com/ocp/release:4.15.0-x86_64"))

	v4 := key.SignBytes(t, good)
	v3 := key.SignBytesV3(t, good, testbed.V3Options{})

	tests := []struct {
		name  string
		sig   []byte
		check func(t *testing.T, err error)
	}{
		{"v4 flipped payload byte", flipIn(t, v4, good), isErr[*signature.BadSignatureError]},
		{"v3 flipped payload byte", flipIn(t, v3, good), isErr[*signature.BadSignatureError]},
		{"v3 flipped signature byte", flipLast(v3), isErr[*signature.BadSignatureError]},
		{"v4 unknown key", other.SignBytes(t, good), unknownKey(other.KeyID)},
		{"v3 unknown key", other.SignBytesV3(t, good, testbed.V3Options{}), unknownKey(other.KeyID)},
		{"v3 MD5", key.SignBytesV3(t, good, testbed.V3Options{Hash: crypto.MD5}), func(t *testing.T, err error) {
			wantContains(t, wantErr[*signature.UnsupportedError](t, err).Error(), "MD5")
		}},
		{"v3 dated in the future", key.SignBytesV3(t, good, testbed.V3Options{Created: time.Now().Add(time.Hour)}), expired("signature")},
		{"empty", nil, isErr[*signature.MalformedError]},
		{"garbage", []byte("this is not a signature at all\n"), isErr[*signature.MalformedError]},
		{"binary garbage", bytes.Repeat([]byte{0xff, 0x00, 0xa3}, 50), isErr[*signature.MalformedError]},
		{"truncated", v4[:len(v4)/2], isErr[*signature.MalformedError]},
		{"detached signature", detachSign(t, good), func(t *testing.T, err error) {
			wantContains(t, wantErr[*signature.MalformedError](t, err).Error(), "detached")
		}},
		{"public key", key.PublicBinary(t), func(t *testing.T, err error) {
			wantContains(t, wantErr[*signature.MalformedError](t, err).Error(), "public key")
		}},
		{"armored public key", key.PublicArmored(t), func(t *testing.T, err error) {
			wantContains(t, wantErr[*signature.MalformedError](t, err).Error(), "armored")
		}},
		{"packet after the signature", append(append([]byte{}, v4...), key.PublicBinary(t)...), func(t *testing.T, err error) {
			wantContains(t, wantErr[*signature.MalformedError](t, err).Error(), "after the signature")
		}},
		{"too large", append(append([]byte{}, v4...), make([]byte, signature.MaxSignatureSize)...), isErr[*signature.MalformedError]},
		{"wrong type", key.SignBytes(t, []byte(`{"critical":{"type":"atomic container signature v2","image":{"docker-manifest-digest":"`+testDigest+`"},"identity":{"docker-reference":"r"}},"optional":{}}`)),
			func(t *testing.T, err error) {
				if e := wantErr[*signature.WrongTypeError](t, err); e.Type != "atomic container signature v2" {
					t.Errorf("WrongTypeError.Type = %q", e.Type)
				}
			}},
		{"unknown top-level field", key.SignBytes(t, []byte(`{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"`+testDigest+`"},"identity":{"docker-reference":"r"}},"optional":{},"extra":1}`)), unknownField("extra")},
		{"unknown critical field", key.SignBytes(t, []byte(`{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"`+testDigest+`"},"identity":{"docker-reference":"r"},"extra":1}}`)), unknownField("critical.extra")},
		{"unknown optional field", key.SignBytes(t, []byte(`{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"`+testDigest+`"},"identity":{"docker-reference":"r"}},"optional":{"creator":"c","extra":1}}`)), unknownField("optional.extra")},
		{"empty reference", key.SignBytes(t, []byte(`{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"`+testDigest+`"},"identity":{"docker-reference":""}}}`)),
			func(t *testing.T, err error) {
				if e := wantErr[*signature.PayloadError](t, err); e.Field != "critical.identity.docker-reference" {
					t.Errorf("PayloadError.Field = %q", e.Field)
				}
			}},
		{"other digest", key.SignRelease(t, otherDigest, "r"), func(t *testing.T, err error) {
			if e := wantErr[*signature.DigestMismatchError](t, err); e.Got != otherDigest || e.Want != testDigest {
				t.Errorf("DigestMismatchError = %+v", e)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := signature.Verify(tt.sig, kr, testDigest)
			if err == nil {
				t.Fatalf("Verify = %+v, want an error", v)
			}
			t.Logf("error: %v", err)
			tt.check(t, err)
		})
	}
}

func TestVerifyExpiredAndRevoked(t *testing.T) {
	now := time.Now()
	payload := mustJSON(t, testbed.ReleasePayload(testDigest, "r"))

	old := testbed.NewKeyAt(t, "old", now.Add(-48*time.Hour), 0)
	oldRing := parseKeyring(t, "old", old.PublicBinary(t))
	_, err := signature.Verify(old.SignBytesAt(t, payload, now.Add(-24*time.Hour), time.Hour), oldRing, testDigest)
	expired("signature")(t, err)
	if _, err := signature.Verify(old.SignBytesAt(t, payload, now.Add(-24*time.Hour), 0), oldRing, testDigest); err != nil {
		t.Errorf("an old signature without expiry: %v", err)
	}

	lapsed := testbed.NewKeyAt(t, "lapsed", now.Add(-48*time.Hour), 24*time.Hour)
	lapsedRing := parseKeyring(t, "lapsed", lapsed.PublicBinary(t))
	_, err = signature.Verify(lapsed.SignBytesAt(t, payload, now.Add(-47*time.Hour), 0), lapsedRing, testDigest)
	expired("key")(t, err)
	_, err = signature.Verify(lapsed.SignBytesV3(t, payload, testbed.V3Options{Created: now.Add(-47 * time.Hour)}), lapsedRing, testDigest)
	expired("key")(t, err)

	revoked := testbed.NewKey(t, "revoked")
	v4, v3 := revoked.SignBytes(t, payload), revoked.SignBytesV3(t, payload, testbed.V3Options{})
	revoked.Revoke(t)
	revokedRing := parseKeyring(t, "revoked", revoked.PublicBinary(t))
	for name, sig := range map[string][]byte{"v4": v4, "v3": v3} {
		_, err := signature.Verify(sig, revokedRing, testDigest)
		if e := wantErr[*signature.RevokedError](t, err); e.KeyID != revoked.KeyID {
			t.Errorf("%s: RevokedError.KeyID = %s, want %s", name, e.KeyID, revoked.KeyID)
		}
	}
}

func TestVerifyAll(t *testing.T) {
	key := testbed.NewKey(t, "release")
	kr := parseKeyring(t, "test", key.PublicBinary(t))
	fetched := []signature.Fetched{
		{N: 1, URL: "u1", Data: []byte("garbage")},
		{N: 2, URL: "u2", Data: key.SignRelease(t, testDigest, "a")},
		{N: 3, URL: "u3", Data: key.SignRelease(t, otherDigest, "b")},
		{N: 4, URL: "u4", Data: key.SignBytesV3(t, mustJSON(t, testbed.ReleasePayload(testDigest, "c")), testbed.V3Options{})},
	}
	accepted, rejected := signature.VerifyAll(fetched, kr, testDigest)
	if len(accepted) != 2 || len(rejected) != 2 {
		t.Fatalf("VerifyAll: %d accepted, %d rejected; want 2 and 2", len(accepted), len(rejected))
	}
	for i, want := range []struct {
		n, number int
		identity  string
	}{{2, 1, "a"}, {4, 2, "c"}} {
		a := accepted[i]
		if a.N != want.n || a.Number != want.number || a.Verified.Identity != want.identity || !bytes.Equal(a.Data, fetched[want.n-1].Data) {
			t.Errorf("accepted[%d] = N %d Number %d identity %q; want N %d Number %d identity %q",
				i, a.N, a.Number, a.Verified.Identity, want.n, want.number, want.identity)
		}
	}
	if rejected[0].URL != "u1" || rejected[1].URL != "u3" {
		t.Errorf("rejected URLs = %s, %s; want u1, u3", rejected[0].URL, rejected[1].URL)
	}
	wantErr[*signature.MalformedError](t, rejected[0].Err)
	wantErr[*signature.DigestMismatchError](t, rejected[1].Err)
}

func TestVerifyRefusesInvalidWant(t *testing.T) {
	key := testbed.NewKey(t, "release")
	kr := parseKeyring(t, "test", key.PublicBinary(t))
	if _, err := signature.Verify(key.SignRelease(t, testDigest, "r"), kr, "sha256:abc"); err == nil {
		t.Fatal("Verify with a malformed want digest succeeded")
	}
}

func isErr[T error](t *testing.T, err error) { t.Helper(); wantErr[T](t, err) }

func unknownKey(id string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if e := wantErr[*signature.UnknownKeyError](t, err); e.KeyID != id {
			t.Errorf("UnknownKeyError.KeyID = %s, want %s", e.KeyID, id)
		}
		wantContains(t, err.Error(), id)
	}
}

func unknownField(field string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if e := wantErr[*signature.UnknownFieldError](t, err); e.Field != field {
			t.Errorf("UnknownFieldError.Field = %q, want %q", e.Field, field)
		}
	}
}

func expired(what string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if e := wantErr[*signature.ExpiredError](t, err); e.What != what {
			t.Errorf("ExpiredError.What = %q, want %q", e.What, what)
		}
	}
}

// flipIn changes one hex digit of the digest inside payload, as it appears
// in the uncompressed message sig: the JSON stays valid and names another
// digest, so only the signature check can refuse it.
func flipIn(t *testing.T, sig, payload []byte) []byte {
	t.Helper()
	i := bytes.Index(sig, payload)
	if i < 0 {
		t.Fatal("payload not found in the message; is it compressed?")
	}
	j := bytes.Index(payload, []byte(testDigest[len("sha256:"):]))
	if j < 0 {
		t.Fatal("digest not found in the payload")
	}
	out := append([]byte{}, sig...)
	out[i+j] = '3' // '2' -> '3'
	return out
}

func flipLast(sig []byte) []byte {
	out := append([]byte{}, sig...)
	out[len(out)-1] ^= 0x01
	return out
}

// detachSign makes a detached signature of data with a fresh key.
func detachSign(t *testing.T, data []byte) []byte {
	t.Helper()
	e, err := openpgp.NewEntity("detached", "", "detached@ferry.test", &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := openpgp.DetachSign(&buf, e, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func indentJSON(t *testing.T, compact []byte) []byte {
	t.Helper()
	out := strings.ReplaceAll(string(compact), ",", ",\n  ")
	return []byte(out + "\n")
}

// TestVerifyConcurrently shares one keyring between goroutines, as the CLI
// does when it verifies several releases; run with -race.
func TestVerifyConcurrently(t *testing.T) {
	kr := loadFixtureKeyring(t, releaseKeyFile)
	sigs := map[string]digest.Digest{"ocp-4.15.0-x86_64.signature-1": ocpDigest, "rhel7-7.6.signature-1": rhel7Digest}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(sigs))
	for range 8 {
		for file, d := range sigs {
			sig := fixture(t, file)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := signature.Verify(sig, kr, d); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestVerifyRefusesCompressionBomb: a small compressed packet that inflates
// past the message cap is refused before it is read whole.
func TestVerifyRefusesCompressionBomb(t *testing.T) {
	var buf bytes.Buffer
	cw, err := packet.SerializeCompressed(nopCloser{&buf}, packet.CompressionZLIB, nil)
	if err != nil {
		t.Fatal(err)
	}
	ops := []byte{0xc4, 13, 3, 0, 8, 1, 0x19, 0x9e, 0x2f, 0x91, 0xfd, 0x43, 0x1d, 0x51, 1}
	if _, err := cw.Write(ops); err != nil {
		t.Fatal(err)
	}
	lit, err := packet.SerializeLiteral(cw, true, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lit.Write(make([]byte, 10<<20)); err != nil {
		t.Fatal(err)
	}
	if err := lit.Close(); err != nil { // closes cw too
		t.Fatal(err)
	}
	if buf.Len() > 64<<10 {
		t.Fatalf("the bomb is %d bytes; it must fit the signature size cap to test the inflation cap", buf.Len())
	}
	_, err = signature.Verify(buf.Bytes(), loadFixtureKeyring(t, releaseKeyFile), rhel7Digest)
	wantContains(t, wantErr[*signature.MalformedError](t, err).Error(), "larger than")
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }
