package signature_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/signature"
)

func TestLoadRedHatKeyrings(t *testing.T) {
	dir := fixtureDir(t)
	release := filepath.Join(dir, releaseKeyFile)
	beta := filepath.Join(dir, betaKeyFile)

	kr, err := signature.LoadKeyring(release, beta, release)
	if err != nil {
		t.Fatalf("LoadKeyring: %v", err)
	}
	keys := kr.Keys()
	if len(keys) != 2 || kr.Len() != 2 {
		t.Fatalf("Keys() = %+v, want the release and beta keys once each", keys)
	}
	want := signature.Key{
		Fingerprint: releaseKeyFingerprint,
		KeyID:       releaseKeyID,
		UserIDs:     []string{"Red Hat, Inc. (release key 2) <security@redhat.com>"},
		Source:      release,
	}
	if got := keys[0]; got.Fingerprint != want.Fingerprint || got.KeyID != want.KeyID ||
		!slices.Equal(got.UserIDs, want.UserIDs) || got.Source != want.Source || len(got.SubkeyIDs) != 0 {
		t.Errorf("Keys()[0] = %+v, want %+v", got, want)
	}
	if got := keys[1]; got.Fingerprint != betaKeyFingerprint || got.KeyID != "938A80CAF21541EB" || got.Source != beta {
		t.Errorf("Keys()[1] = %+v, want the beta key from %s", got, beta)
	}
}

func TestParseKeyringForms(t *testing.T) {
	a := testbed.NewKey(t, "a")
	b := testbed.NewKey(t, "b")
	tests := []struct {
		name string
		data []byte
		want []string // fingerprints
	}{
		{"binary", a.PublicBinary(t), []string{a.Fingerprint}},
		{"armored", a.PublicArmored(t), []string{a.Fingerprint}},
		{"armored after text lines", append([]byte("pub   2048R/XXXX 2024-01-01\nuid   a\n\n"), a.PublicArmored(t)...), []string{a.Fingerprint}},
		{"two armored blocks", append(a.PublicArmored(t), b.PublicArmored(t)...), []string{a.Fingerprint, b.Fingerprint}},
		{"binary keyring of two", append(a.PublicBinary(t), b.PublicBinary(t)...), []string{a.Fingerprint, b.Fingerprint}},
		{"same key twice", append(a.PublicArmored(t), a.PublicArmored(t)...), []string{a.Fingerprint}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr := parseKeyring(t, "k.asc", tt.data)
			var got []string
			for _, k := range kr.Keys() {
				got = append(got, k.Fingerprint)
				if k.Source != "k.asc" || len(k.UserIDs) != 1 || len(k.SubkeyIDs) != 1 {
					t.Errorf("key %+v: want source k.asc, one user ID, one (encryption) subkey", k)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fingerprints = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseKeyringErrors(t *testing.T) {
	key := testbed.NewKey(t, "a")
	priv, err := openpgp.NewEntity("secret", "", "secret@ferry.test", &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	var privBinary bytes.Buffer
	if err := priv.SerializePrivate(&privBinary, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"blank", []byte(" \n\t\n"), "empty"},
		{"text without a key", []byte("pub   4096R/FD431D51 2009-10-22\n"), "no OpenPGP public key found"},
		{"binary garbage", bytes.Repeat([]byte{0xff}, 64), "keyring"},
		{"truncated binary", key.PublicBinary(t)[:100], "keyring"},
		{"truncated armor", key.PublicArmored(t)[:200], "armor block 1"},
		{"armored signature", armorBlock(t, "PGP SIGNATURE", []byte{1, 2, 3}), `"PGP SIGNATURE"`},
		{"armored private key", armorBlock(t, openpgp.PrivateKeyType, privBinary.Bytes()), "PRIVATE KEY"},
		{"binary private key", privBinary.Bytes(), "private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := signature.ParseKeyring("bad.key", tt.data)
			if err == nil {
				t.Fatalf("ParseKeyring = %d keys, want an error", kr.Len())
			}
			t.Logf("error: %v", err)
			wantContains(t, err.Error(), "bad.key", tt.want)
		})
	}
}

func TestLoadKeyringErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.asc")
	huge := filepath.Join(dir, "huge.asc")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(huge, make([]byte, signature.MaxKeyringSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.asc")
	for _, tt := range []struct {
		paths []string
		want  []string
	}{
		{nil, []string{"no keyring files"}},
		{[]string{empty}, []string{empty, "empty"}},
		{[]string{missing}, []string{missing}},
		{[]string{huge}, []string{huge, "larger than"}},
		{[]string{filepath.Join(fixtureDir(t), releaseKeyFile), empty}, []string{empty, "empty"}},
	} {
		if _, err := signature.LoadKeyring(tt.paths...); err == nil {
			t.Errorf("LoadKeyring(%v) succeeded, want an error", tt.paths)
		} else {
			wantContains(t, err.Error(), tt.want...)
		}
	}
}

func TestKeyringMerge(t *testing.T) {
	a := parseKeyring(t, "a", testbed.NewKey(t, "a").PublicBinary(t))
	b := parseKeyring(t, "b", testbed.NewKey(t, "b").PublicBinary(t))
	m := a.Merge(b, nil, a)
	if m.Len() != 2 || a.Len() != 1 || b.Len() != 1 {
		t.Fatalf("merged %d keys (a %d, b %d), want 2 (1, 1): Merge must not change its inputs", m.Len(), a.Len(), b.Len())
	}
	if ks := m.Keys(); ks[0].Source != "a" || ks[1].Source != "b" {
		t.Errorf("sources = %s, %s; want a, b", ks[0].Source, ks[1].Source)
	}
	var zero signature.Keyring
	var nilRing *signature.Keyring
	if zero.Len() != 0 || nilRing.Len() != 0 || nilRing.Keys() != nil || nilRing.Merge(a).Len() != 1 {
		t.Error("the zero and nil keyrings must be empty and mergeable")
	}
}

func armorBlock(t *testing.T, typ string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
