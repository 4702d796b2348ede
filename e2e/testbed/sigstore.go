package testbed

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Values of ReleaseOptions.SigstorePolicy: the OpenShift version whose
// ClusterImagePolicy the release ships.
const (
	// SigstorePolicy421 scopes the release repository only.
	SigstorePolicy421 = "4.21"
	// SigstorePolicy422 scopes the release repository and every component
	// repository.
	SigstorePolicy422 = "4.22"
)

const (
	// ImagePolicyFile is where a release carries its ClusterImagePolicy, in
	// the layer that holds image-references.
	ImagePolicyFile = "release-manifests/0000_90_openshift-cluster-image-policy.yaml"
	// ImagePolicyName is the ClusterImagePolicy's name, as OpenShift's.
	ImagePolicyName = "openshift"
)

// Names of the faults of SigstoreFaults, as Release.SigstoreFaulty gives
// them: the field that asked for each.
const (
	SigstoreFaultUnsigned             = "Unsigned"
	SigstoreFaultOtherKey             = "OtherKey"
	SigstoreFaultOtherDigest          = "OtherDigest"
	SigstoreFaultOtherIdentity        = "OtherIdentity"
	SigstoreFaultNameOnlyIdentity     = "NameOnlyIdentity"
	SigstoreFaultUnsignedReleaseChild = "UnsignedReleaseChild"
)

// SigstoreFaults name components whose signatures are broken on purpose,
// each self-consistent (a well-formed image, a signature that verifies
// where one is given) so that only a verifier of the policy catches it. A
// fault applies to every manifest of the component: the list and each
// child when Multi. A component may be named once, and not one that a
// ShareWith release lends unchanged.
type SigstoreFaults struct {
	// Unsigned components get no .sig at all.
	Unsigned []string
	// OtherKey components are signed, correctly, by another key of the
	// same kind (Release.SigstoreOtherKey), which the policy does not name.
	OtherKey []string
	// OtherDigest components' payloads name another digest (the sha256 of
	// the manifest with a newline appended), validly signed.
	OtherDigest []string
	// OtherIdentity components are signed as host/<repo>-other@<digest>:
	// another repository, whose name starts with the right one.
	OtherIdentity []string
	// NameOnlyIdentity components are signed as host/<repo>, no digest or
	// tag: a valid signature the node's MatchRepoDigestOrExact refuses.
	NameOnlyIdentity []string
	// UnsignedReleaseChild leaves the second child of a Multi release
	// without a .sig.
	UnsignedReleaseChild bool
}

// byComponent maps each component named to its fault.
func (f SigstoreFaults) byComponent() map[string]string {
	out := map[string]string{}
	for fault, names := range map[string][]string{
		SigstoreFaultUnsigned: f.Unsigned, SigstoreFaultOtherKey: f.OtherKey,
		SigstoreFaultOtherDigest: f.OtherDigest, SigstoreFaultOtherIdentity: f.OtherIdentity,
		SigstoreFaultNameOnlyIdentity: f.NameOnlyIdentity,
	} {
		for _, n := range names {
			out[n] = fault
		}
	}
	return out
}

// check refuses a fault on a component that does not exist or a component
// named twice.
func (f SigstoreFaults) check(components int) error {
	known := map[string]bool{}
	for i := range components {
		known[componentName(i)] = true
	}
	seen := map[string]bool{}
	for _, names := range [][]string{f.Unsigned, f.OtherKey, f.OtherDigest, f.OtherIdentity, f.NameOnlyIdentity} {
		for _, n := range names {
			if !known[n] {
				return fmt.Errorf("SigstoreFaults: no component %q among the first %d", n, components)
			}
			if seen[n] {
				return fmt.Errorf("SigstoreFaults: component %q named twice", n)
			}
			seen[n] = true
		}
	}
	return nil
}

// normalizeSigstore checks and fills the Sigstore options.
func (o *ReleaseOptions) normalizeSigstore() error {
	switch o.SigstoreKey {
	case "":
		o.SigstoreKey = SigstoreKeyEd25519
	case SigstoreKeyEd25519, SigstoreKeyRSA, SigstoreKeyECDSA:
	default:
		return fmt.Errorf("SigstoreKey %q: want %s, %s or %s", o.SigstoreKey, SigstoreKeyEd25519, SigstoreKeyRSA, SigstoreKeyECDSA)
	}
	switch o.SigstorePolicy {
	case "":
	case SigstorePolicy421, SigstorePolicy422:
		o.Sigstore = true
	default:
		return fmt.Errorf("SigstorePolicy %q: want %s or %s", o.SigstorePolicy, SigstorePolicy421, SigstorePolicy422)
	}
	f := o.SigstoreFaults
	if len(f.byComponent()) > 0 || f.UnsignedReleaseChild {
		if !o.Sigstore {
			return fmt.Errorf("SigstoreFaults need Sigstore or SigstorePolicy")
		}
	}
	if f.UnsignedReleaseChild && (!o.Multi || len(o.Arches) < 2) {
		return fmt.Errorf("SigstoreFaults.UnsignedReleaseChild needs a Multi release of two arches or more")
	}
	return f.check(o.Components)
}

// ClusterImagePolicyYAML renders an OpenShift ClusterImagePolicy (SPEC §9)
// like Red Hat's: the public key (PEM) as the root of trust, no Rekor, the
// default MatchRepoDigestOrExact identity rule, for images in scopes.
func ClusterImagePolicyYAML(name string, scopes []string, publicKeyPEM []byte) []byte {
	var b strings.Builder
	// Quoted with strconv.Quote: its escapes are a subset of YAML's
	// double-quoted ones, so any name or scope stays one string.
	fmt.Fprintf(&b, `apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata:
  name: %s
  annotations:
    kubernetes.io/description: Require signatures for the test bed's release images.
    exclude.release.openshift.io/internal-openshift-hosted: "true"
    include.release.openshift.io/self-managed-high-availability: "true"
spec:
  scopes:
`, strconv.Quote(name))
	for _, s := range scopes {
		fmt.Fprintf(&b, "  - %s\n", strconv.Quote(s))
	}
	fmt.Fprintf(&b, `  policy:
    rootOfTrust:
      policyType: PublicKey
      publicKey:
        keyData: %s
`, base64.StdEncoding.EncodeToString(publicKeyPEM))
	return []byte(b.String())
}

// imagePolicyScopes are the scopes of the policy opts ask for: the release
// repository, and from 4.22 each component repository, on host.
func imagePolicyScopes(host string, o ReleaseOptions) []string {
	scopes := []string{host + "/" + o.ReleaseRepo}
	if o.SigstorePolicy == SigstorePolicy422 {
		for _, r := range o.Repos {
			s := host + "/" + r
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	return scopes
}

// sigstoreKeys picks the signing key (and, for OtherKey faults, another):
// the ShareWith release's when it signed with the same kind, so unchanged
// components keep valid signatures; else made from Seed (Ed25519) or fresh.
func (b *builder) sigstoreKeys() error {
	kind := b.opts.SigstoreKey
	if s := b.share; s != nil && s.sigKey != nil && s.sigKey.kind == kind {
		b.sigKey, b.otherKey = s.sigKey, s.otherKey
	}
	var err error
	if b.sigKey == nil {
		if b.sigKey, err = b.newKey("sigstore-key"); err != nil {
			return err
		}
	}
	if b.otherKey == nil && len(b.opts.SigstoreFaults.OtherKey) > 0 {
		if b.otherKey, err = b.newKey("sigstore-other-key"); err != nil {
			return err
		}
	}
	return nil
}

// newKey makes a key of the options' kind: from Seed and label for
// Ed25519, so a seeded build is reproducible; fresh otherwise.
func (b *builder) newKey(label string) (*SigstoreKey, error) {
	if b.opts.SigstoreKey == SigstoreKeyEd25519 {
		return seededSigstoreKey(b.opts.Seed, label)
	}
	return NewSigstoreKey(b.opts.SigstoreKey)
}

// componentSigSpecs says how each manifest of the component name (top,
// then its children) is signed, as repo@digest: every manifest under a
// policy or a fault, half the components otherwise (the list and, one in
// two, its first child). Nothing when the release is unsigned.
func (b *builder) componentSigSpecs(name, repo string, i int, top *image) []sigSpec {
	if b.sigKey == nil {
		return nil
	}
	fault := b.faults[name]
	manifests := []*image{top}
	switch {
	case b.opts.SigstorePolicy != "" || fault != "":
		manifests = append(manifests, top.children...)
	case b.opts.Shape != nil:
		if !b.opts.Shape.Components[i].Signed {
			return nil
		}
	case (i/2)%2 == 0: // half, in both repositories and formats
		if len(top.children) > 0 && i%4 == 0 {
			manifests = append(manifests, top.children[0])
		}
	default:
		return nil
	}
	specs := make([]sigSpec, 0, len(manifests))
	for _, m := range manifests {
		d := m.info.Digest
		s := sigSpec{signs: d, named: d, identity: b.host + "/" + repo + "@" + d.String(), key: b.sigKey, fault: fault}
		switch fault {
		case SigstoreFaultOtherKey:
			s.key = b.otherKey
		case SigstoreFaultOtherDigest:
			s.named = digest.FromBytes(append(bytes.Clone(m.info.Manifest), '\n'))
		case SigstoreFaultOtherIdentity:
			s.identity = b.host + "/" + repo + "-other@" + d.String()
		case SigstoreFaultNameOnlyIdentity:
			s.identity = b.host + "/" + repo
		}
		specs = append(specs, s)
	}
	return specs
}

// releaseSigSpecs says how the release's manifests are signed, all as
// host/repo:tag: the top one, and its children (all under a policy, the
// first otherwise); the second is left unsigned for UnsignedReleaseChild.
func (b *builder) releaseSigSpecs(repo, tag string, top *image) []sigSpec {
	if b.sigKey == nil {
		return nil
	}
	identity := b.host + "/" + repo + ":" + tag
	var specs []sigSpec
	for i, m := range append([]*image{top}, top.children...) {
		s := sigSpec{signs: m.info.Digest, named: m.info.Digest, identity: identity, key: b.sigKey}
		switch {
		case i == 2 && b.opts.SigstoreFaults.UnsignedReleaseChild: // children[1]
			s.fault = SigstoreFaultUnsignedReleaseChild
		case i > 1 && b.opts.SigstorePolicy == "":
			continue
		}
		specs = append(specs, s)
	}
	return specs
}

// signAll pushes the signatures specs ask for into repo, records the
// faulty ones, and returns the component's signature images: one of prev
// (a ShareWith release's) where it is exactly what a spec asks for, a new
// one otherwise, then the rest of prev, which no spec replaces.
func (b *builder) signAll(ctx context.Context, repo string, specs []sigSpec, prev []*image) ([]*image, error) {
	planned := map[digest.Digest]bool{}
	var out []*image
	for _, s := range specs {
		planned[s.signs] = true
		if s.fault != "" {
			b.mu.Lock()
			b.faulty[s.signs] = s.fault
			b.mu.Unlock()
		}
		if s.fault == SigstoreFaultUnsigned || s.fault == SigstoreFaultUnsignedReleaseChild {
			continue
		}
		if old := findSig(prev, s); old != nil {
			if err := b.ensureImage(ctx, old); err != nil {
				return nil, err
			}
			out = append(out, old)
			continue
		}
		im, err := b.sign(ctx, repo, s)
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	for _, old := range prev {
		if planned[old.info.Signs] {
			continue
		}
		if err := b.ensureImage(ctx, old); err != nil {
			return nil, err
		}
		out = append(out, old)
	}
	return out, nil
}

// findSig returns the signature image of sigs made exactly as s says.
func findSig(sigs []*image, s sigSpec) *image {
	for _, im := range sigs {
		if im.sig != nil && *im.sig == s {
			return im
		}
	}
	return nil
}
