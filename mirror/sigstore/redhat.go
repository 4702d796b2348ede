package sigstore

import (
	"bytes"
	"crypto"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
)

// redHatPublicKey is the Sigstore public key of Red Hat's ClusterImagePolicy
// "openshift" (openshift/cluster-update-keys,
// manifests.rhel/0000_90_openshift-cluster-image-policy.yaml), the
// base64-decoded spec.policy.rootOfTrust.publicKey.keyData: a PEM RSA-4096
// key in PKIX form.
//
//go:embed redhat-sigstore.pub
var redHatPublicKey []byte

// RedHatPublicKeyPEM returns the PEM of Red Hat's Sigstore public key, the
// key its OpenShift payloads' ClusterImagePolicy names. The caller owns the
// returned slice. A payload's own policy decides what the cluster checks;
// this key is what ferry compares that policy's key with.
func RedHatPublicKeyPEM() []byte { return bytes.Clone(redHatPublicKey) }

// IsRedHatKey reports whether pemData is Red Hat's Sigstore public key: one
// "PUBLIC KEY" PEM block, nothing else but white space, holding the same key
// (compared as parsed keys, so line wrapping and PEM headers do not matter).
// Anything that does not parse is not Red Hat's key.
func IsRedHatKey(pemData []byte) bool {
	theirs, ok := parsePublicKeyPEM(pemData)
	if !ok {
		return false
	}
	ours, ok := parsePublicKeyPEM(redHatPublicKey)
	if !ok {
		// The embedded key is proven to parse by the package's tests.
		return false
	}
	comparable, ok := ours.(interface{ Equal(crypto.PublicKey) bool })
	return ok && comparable.Equal(theirs)
}

// parsePublicKeyPEM parses data holding exactly one PKIX public key PEM
// block and nothing else but white space around it.
func parsePublicKeyPEM(data []byte) (crypto.PublicKey, bool) {
	data = bytes.TrimSpace(data)
	if !bytes.HasPrefix(data, []byte("-----BEGIN ")) {
		// pem.Decode skips text before a block; a key file is the block.
		return nil, false
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" || len(rest) > 0 {
		return nil, false
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, false
	}
	return key, true
}
