package signature_test

import (
	"slices"
	"testing"

	"github.com/ferryhq/ferry/mirror/signature"
)

// TestRedHatBuiltInKeysArePublishedKeys: the keys built into ferry are the
// keys of Red Hat's published files, with the fingerprints the constants say.
func TestRedHatBuiltInKeysArePublishedKeys(t *testing.T) {
	cases := []struct {
		name        string
		builtIn     func() (*signature.Keyring, error)
		file        string
		fingerprint string
		constant    string
	}{
		{"release key 2", signature.RedHatReleaseKeyring, releaseKeyFile, releaseKeyFingerprint, signature.RedHatReleaseKeyFingerprint},
		{"beta key 2", signature.RedHatBetaKeyring, betaKeyFile, betaKeyFingerprint, signature.RedHatBetaKeyFingerprint},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := tc.builtIn()
			if err != nil {
				t.Fatal(err)
			}
			got, want := kr.Keys(), loadFixtureKeyring(t, tc.file).Keys()
			if len(got) != 1 || len(want) != 1 {
				t.Fatalf("built-in keyring holds %d keys, the fixture %d; want 1 each", len(got), len(want))
			}
			if got[0].Fingerprint != want[0].Fingerprint || got[0].Fingerprint != tc.fingerprint || tc.constant != tc.fingerprint {
				t.Errorf("fingerprints: built-in %s, fixture %s, constant %s; want all %s",
					got[0].Fingerprint, want[0].Fingerprint, tc.constant, tc.fingerprint)
			}
			if !slices.Equal(got[0].SubkeyIDs, want[0].SubkeyIDs) || !slices.Equal(got[0].UserIDs, want[0].UserIDs) {
				t.Errorf("built-in key %+v differs from the fixture's %+v", got[0], want[0])
			}
			if got[0].Source != signature.BuiltInSource {
				t.Errorf("source = %q, want %q", got[0].Source, signature.BuiltInSource)
			}
		})
	}
}

// TestRedHatBuiltInReleaseKeyVerifiesRealSignature: the real 4.15.0
// signature verifies under the built-in release key, and not under the
// built-in beta key alone.
func TestRedHatBuiltInReleaseKeyVerifiesRealSignature(t *testing.T) {
	sig := fixture(t, "ocp-4.15.0-x86_64.signature-1")
	release, err := signature.RedHatReleaseKeyring()
	if err != nil {
		t.Fatal(err)
	}
	v, err := signature.Verify(sig, release, ocpDigest)
	if err != nil {
		t.Fatalf("verify under the built-in release key: %v", err)
	}
	if v.Fingerprint != releaseKeyFingerprint || v.Identity != "quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64" {
		t.Errorf("verified = %+v", v)
	}
	beta, err := signature.RedHatBetaKeyring()
	if err != nil {
		t.Fatal(err)
	}
	_, err = signature.Verify(sig, beta, ocpDigest)
	if e := wantErr[*signature.UnknownKeyError](t, err); e.KeyID != releaseKeyID {
		t.Errorf("unknown key %s, want %s", e.KeyID, releaseKeyID)
	}
}
