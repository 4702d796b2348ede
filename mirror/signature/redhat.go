package signature

import (
	_ "embed"
	"fmt"
)

// Fingerprints of Red Hat's public keys built into ferry.
const (
	// RedHatReleaseKeyFingerprint is Red Hat's release key 2, the key the
	// cluster-version-operator trusts for OpenShift releases.
	RedHatReleaseKeyFingerprint = "567E347AD0044ADE55BA8A5F199E2F91FD431D51"
	// RedHatBetaKeyFingerprint is Red Hat's beta key 2, which signs
	// pre-release payloads (candidate channels, fast before GA) and
	// nothing a cluster should trust by default.
	RedHatBetaKeyFingerprint = "B08B659EE86AF623BC90E8DB938A80CAF21541EB"
)

// BuiltInSource is the Source of the keys of RedHatReleaseKeyring and
// RedHatBetaKeyring.
const BuiltInSource = "built-in"

// The key files as Red Hat publishes them (openshift/cluster-update-keys):
// a plain-text description, then the armored key, which ParseKeyring reads.
var (
	//go:embed redhatkeys/verifier-public-key-redhat-release
	redHatReleaseKey []byte
	//go:embed redhatkeys/verifier-public-key-redhat-beta-2
	redHatBetaKey []byte
)

// RedHatReleaseKeyring is Red Hat's release key 2 as built into ferry: the
// keyring to use when no other is given on a host that is not RHEL (where
// the same key is at DefaultKeyPath).
func RedHatReleaseKeyring() (*Keyring, error) {
	return builtInKeyring(redHatReleaseKey, RedHatReleaseKeyFingerprint)
}

// RedHatBetaKeyring is Red Hat's beta key 2 as built into ferry. Trust it
// only when asked to: it signs pre-release payloads.
func RedHatBetaKeyring() (*Keyring, error) {
	return builtInKeyring(redHatBetaKey, RedHatBetaKeyFingerprint)
}

// builtInKeyring parses an embedded key file and checks that it holds
// exactly the key it is meant to, so that a wrong file fails loudly.
func builtInKeyring(data []byte, want string) (*Keyring, error) {
	kr, err := ParseKeyring(BuiltInSource, data)
	if err != nil {
		return nil, fmt.Errorf("built-in key %s: %w", want, err)
	}
	if keys := kr.Keys(); len(keys) != 1 || keys[0].Fingerprint != want {
		return nil, fmt.Errorf("built-in key %s: the embedded file holds %d key(s), not exactly this one", want, len(keys))
	}
	return kr, nil
}
