package testbed

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	cimage "go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"sigs.k8s.io/yaml"
)

// cosignSig is a signature image as read back from the registry.
type cosignSig struct {
	Payload, Signature []byte
	// Identity and Digest are what the payload says.
	Identity string
	Digest   digest.Digest
}

// readCosign fetches repo:tag and checks it is a cosign signature image
// whose payload has exactly cosign's shape.
func readCosign(t *testing.T, c *Client, repo, tag string) cosignSig {
	t.Helper()
	data, mt := mustManifest(t, c, repo, tag)
	m := decode[ocispec.Manifest](t, data)
	if mt != ocispec.MediaTypeImageManifest || m.MediaType != mt || m.Config.MediaType != ocispec.MediaTypeImageConfig || len(m.Layers) != 1 {
		t.Fatalf("%s:%s: not a cosign signature image: %s", repo, tag, data)
	}
	l := m.Layers[0]
	sig, err := base64.StdEncoding.DecodeString(l.Annotations[CosignSignatureAnnotation])
	if l.MediaType != MediaTypeCosignPayload || err != nil || len(sig) == 0 {
		t.Fatalf("%s:%s: layer %+v", repo, tag, l)
	}
	payload, err := c.GetBlob(t.Context(), repo, l.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Critical struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				DockerManifestDigest digest.Digest `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
		Optional map[string]any `json:"optional"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s:%s: payload %s: %v", repo, tag, payload, err)
	}
	if p.Critical.Type != "cosign container image signature" || p.Critical.Image.DockerManifestDigest.Validate() != nil ||
		!bytes.Contains(payload, []byte(`"optional":`)) {
		t.Errorf("%s:%s: payload %s", repo, tag, payload)
	}
	return cosignSig{Payload: payload, Signature: sig, Identity: p.Critical.Identity.DockerReference, Digest: p.Critical.Image.DockerManifestDigest}
}

// verifyCosign checks sig over payload with the standard library alone,
// as cosign signs: Ed25519 over the payload, RSA PKCS#1 v1.5 and ECDSA
// ASN.1 over its SHA-256.
func verifyCosign(t *testing.T, pubPEM, payload, sig []byte) bool {
	t.Helper()
	block, _ := pem.Decode(pubPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("public key is not a PEM PUBLIC KEY: %q", pubPEM)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(payload)
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, payload, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, h[:], sig)
	}
	t.Fatalf("unexpected key type %T", pub)
	return false
}

// clusterImagePolicy is the part of a ClusterImagePolicy the test bed
// writes; decoding strictly, it also proves nothing else is there (no
// signedIdentity: the default MatchRepoDigestOrExact).
type clusterImagePolicy struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Scopes []string `json:"scopes"`
		Policy struct {
			RootOfTrust struct {
				PolicyType string `json:"policyType"`
				PublicKey  struct {
					KeyData string `json:"keyData"`
				} `json:"publicKey"`
			} `json:"rootOfTrust"`
		} `json:"policy"`
	} `json:"spec"`
}

func parsePolicy(t *testing.T, data []byte) (clusterImagePolicy, []byte) {
	t.Helper()
	var p clusterImagePolicy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("ClusterImagePolicy: %v\n%s", err, data)
	}
	if p.APIVersion != "config.openshift.io/v1" || p.Kind != "ClusterImagePolicy" || p.Spec.Policy.RootOfTrust.PolicyType != "PublicKey" {
		t.Errorf("ClusterImagePolicy header or root of trust:\n%s", data)
	}
	key, err := base64.StdEncoding.DecodeString(p.Spec.Policy.RootOfTrust.PublicKey.KeyData)
	if err != nil {
		t.Fatalf("keyData: %v", err)
	}
	return p, key
}

func TestClusterImagePolicyYAML(t *testing.T) {
	t.Parallel()
	// Red Hat's has the shape the test bed writes.
	redhat, err := os.ReadFile("../../../shared/fixtures/redhat/cluster-image-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rh, rhKey := parsePolicy(t, redhat)
	if rh.Metadata.Name != "openshift" || len(rh.Spec.Scopes) != 3 || !bytes.HasPrefix(rhKey, []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Errorf("Red Hat's policy read as %+v", rh)
	}

	key, err := NewSigstoreKey(SigstoreKeyECDSA)
	if err != nil {
		t.Fatal(err)
	}
	scopes := []string{"127.0.0.1:5000/a/b", `odd "quoted": scope #1`, "*.example.com"}
	data := ClusterImagePolicyYAML("name: with colon", scopes, key.PublicKeyPEM())
	p, got := parsePolicy(t, data)
	if p.Metadata.Name != "name: with colon" || !slices.Equal(p.Spec.Scopes, scopes) || !bytes.Equal(got, key.PublicKeyPEM()) {
		t.Errorf("policy read back as %+v, key %q", p, got)
	}
	// The annotations that make the cluster-version operator apply it are
	// Red Hat's.
	for _, a := range []string{"include.release.openshift.io/self-managed-high-availability", "exclude.release.openshift.io/internal-openshift-hosted"} {
		if p.Metadata.Annotations[a] != rh.Metadata.Annotations[a] || rh.Metadata.Annotations[a] == "" {
			t.Errorf("annotation %s: %q, Red Hat's %q", a, p.Metadata.Annotations[a], rh.Metadata.Annotations[a])
		}
	}
}

// nodePolicy is containers/image's policy engine set up as a node's is by
// a ClusterImagePolicy: sigstoreSigned with its key and the default
// MatchRepoDigestOrExact for each scope, anything else accepted, and
// registries.d turning sigstore attachments on.
type nodePolicy struct {
	pc  *signature.PolicyContext
	sys *types.SystemContext
}

func newNodePolicy(t *testing.T, policyYAML []byte) *nodePolicy {
	t.Helper()
	p, key := parsePolicy(t, policyYAML)
	req, err := signature.NewPRSigstoreSigned(
		signature.PRSigstoreSignedWithKeyData(key),
		signature.PRSigstoreSignedWithSignedIdentity(signature.NewPRMMatchRepoDigestOrExact()))
	if err != nil {
		t.Fatal(err)
	}
	scopes := signature.PolicyTransportScopes{}
	for _, s := range p.Spec.Scopes {
		scopes[s] = signature.PolicyRequirements{req}
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{
		Default:    signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()},
		Transports: map[string]signature.PolicyTransportScopes{docker.Transport.Name(): scopes},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Destroy() })

	dir := t.TempDir()
	regd := filepath.Join(dir, "registries.d")
	conf := filepath.Join(dir, "registries.conf")
	if err := os.Mkdir(regd, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(regd, "default.yaml"), []byte("default-docker:\n  use-sigstore-attachments: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return &nodePolicy{pc: pc, sys: &types.SystemContext{
		RegistriesDirPath:           regd,
		SystemRegistriesConfPath:    conf,
		SystemRegistriesConfDirPath: filepath.Join(dir, "registries.conf.d"),
		AuthFilePath:                filepath.Join(dir, "auth.json"),
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue, // plain HTTP to the in-process registry
	}}
}

// allowed asks the policy engine whether a node may run ref (host/repo@digest
// or host/repo:tag): it fetches the manifest and its .sig as CRI-O does.
func (n *nodePolicy) allowed(t *testing.T, ref string) (bool, error) {
	t.Helper()
	r, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	src, err := r.NewImageSource(t.Context(), n.sys)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	defer func() { _ = src.Close() }()
	return n.pc.IsRunningImageAllowed(t.Context(), cimage.UnparsedInstance(src, nil))
}

// releaseFile reads one file of the release-manifests layer of the release
// image (each child's, for a list).
func releaseFile(t *testing.T, c *Client, rel *Release, name string) [][]byte {
	t.Helper()
	manifests := [][]byte{rel.Manifest}
	if rel.Arch == "multi" {
		manifests = nil
		for _, child := range decode[ocispec.Index](t, rel.Manifest).Manifests {
			data, _ := mustManifest(t, c, rel.Repository, child.Digest.String())
			manifests = append(manifests, data)
		}
	}
	var out [][]byte
	for _, m := range manifests {
		files := releaseFiles(t, c, rel.Repository, m)
		checkImageReferences(t, rel, files)
		out = append(out, files[name])
	}
	return out
}

func TestSigstorePolicyRelease(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, policy string
		multi       bool
	}{
		{SigstoreKeyEd25519, SigstorePolicy421, false},
		{SigstoreKeyRSA, SigstorePolicy422, true},
		{SigstoreKeyECDSA, SigstorePolicy422, false},
	} {
		t.Run(tc.key+"-"+tc.policy, func(t *testing.T) {
			t.Parallel()
			reg := NewMemoryRegistry(t)
			c := reg.Client()
			rel := BuildRelease(t, reg.Host, ReleaseOptions{Components: 4, Multi: tc.multi, SigstoreKey: tc.key, SigstorePolicy: tc.policy})
			if rel.SigstoreKey == nil || rel.SigstoreKey.Kind() != tc.key || !bytes.Equal(rel.SigstorePublicKey, rel.SigstoreKey.PublicKeyPEM()) {
				t.Fatalf("key %+v", rel.SigstoreKey)
			}
			if len(rel.SigstoreFaulty) != 0 || rel.SigstoreOtherKey != nil {
				t.Errorf("faulty without faults: %v", rel.SigstoreFaulty)
			}

			// The policy is in the release layer and names the key and scopes.
			for _, data := range releaseFile(t, c, rel, ImagePolicyFile) {
				if !bytes.Equal(data, rel.ImagePolicy) {
					t.Fatalf("%s in the layer:\n%s\nRelease.ImagePolicy:\n%s", ImagePolicyFile, data, rel.ImagePolicy)
				}
			}
			p, key := parsePolicy(t, rel.ImagePolicy)
			want := []string{reg.Host + "/" + ReleaseRepository}
			if tc.policy == SigstorePolicy422 {
				want = append(want, reg.Host+"/"+ComponentRepository, reg.Host+"/"+ExtraComponentRepository)
			}
			if p.Metadata.Name != ImagePolicyName || !slices.Equal(p.Spec.Scopes, want) || !slices.Equal(rel.ImagePolicyScopes, want) ||
				!bytes.Equal(key, rel.SigstorePublicKey) {
				t.Errorf("policy %+v, want scopes %v and the release key", p, want)
			}

			// Every manifest is signed, as its identity rule wants, and verifies.
			manifests := 0
			for _, im := range rel.Images {
				if im.Role == RoleSigstore {
					continue
				}
				manifests++
				if !slices.Contains(rel.SigTags, im.Repository+":"+SigstoreTag(im.Digest)) {
					t.Errorf("%s@%s (%s) not signed", im.Repository, im.Digest, im.Role)
				}
			}
			if len(rel.SigTags) != manifests {
				t.Errorf("%d signatures for %d manifests", len(rel.SigTags), manifests)
			}
			for _, st := range rel.SigTags {
				repo, tag, _ := strings.Cut(st, ":")
				checkCosign(t, c, rel, repo, tag)
			}
		})
	}
}

func TestSigstoreReleaseWithoutPolicy(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	rel := BuildRelease(t, reg.Host, ReleaseOptions{Components: 2, Sigstore: true})
	files := releaseFiles(t, reg.Client(), rel.Repository, rel.Manifest)
	if _, ok := files[ImagePolicyFile]; ok || rel.ImagePolicy != nil {
		t.Errorf("a release without SigstorePolicy ships %s", ImagePolicyFile)
	}
	if rel.SigstoreKey.Kind() != SigstoreKeyEd25519 {
		t.Errorf("default key kind %s", rel.SigstoreKey.Kind())
	}
}

// faultedRelease is a multi release under the 4.22 policy with one
// component per fault, and a last one left alone.
var faultedRelease = ReleaseOptions{
	Components: 6, Multi: true, SigstorePolicy: SigstorePolicy422,
	SigstoreFaults: SigstoreFaults{
		Unsigned: []string{componentName(0)}, OtherKey: []string{componentName(1)},
		OtherDigest: []string{componentName(2)}, OtherIdentity: []string{componentName(3)},
		NameOnlyIdentity: []string{componentName(4)}, UnsignedReleaseChild: true,
	},
}

func TestSigstoreFaults(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	c := reg.Client()
	opts := faultedRelease
	opts.SigstoreKey = SigstoreKeyECDSA
	rel := BuildRelease(t, reg.Host, opts)
	if rel.SigstoreOtherKey == nil || rel.SigstoreOtherKey.Kind() != SigstoreKeyECDSA || bytes.Equal(rel.SigstoreOtherKey.PublicKeyPEM(), rel.SigstorePublicKey) {
		t.Fatalf("other key %+v", rel.SigstoreOtherKey)
	}
	tags := map[string][]string{}
	for _, repo := range []string{rel.Repository, ComponentRepository, ExtraComponentRepository} {
		var err error
		if tags[repo], err = c.Tags(t.Context(), repo); err != nil {
			t.Fatal(err)
		}
	}

	wantFaulty := map[digest.Digest]string{}
	faults := map[string]string{
		componentName(0): SigstoreFaultUnsigned, componentName(1): SigstoreFaultOtherKey,
		componentName(2): SigstoreFaultOtherDigest, componentName(3): SigstoreFaultOtherIdentity,
		componentName(4): SigstoreFaultNameOnlyIdentity, componentName(5): "",
	}
	for name, fault := range faults {
		comp, ok := rel.Component(name)
		if !ok {
			t.Fatalf("no component %s", name)
		}
		list, _ := rel.Image(comp.Digest)
		for _, d := range append([]digest.Digest{comp.Digest}, list.Children...) {
			if fault != "" {
				wantFaulty[d] = fault
			}
			tag := SigstoreTag(d)
			if fault == SigstoreFaultUnsigned {
				if slices.Contains(tags[comp.Repository], tag) {
					t.Errorf("%s (Unsigned): %s@%s has a signature", name, comp.Repository, d)
				}
				continue
			}
			sig := readCosign(t, c, comp.Repository, tag)
			good := rel.Host + "/" + comp.Repository + "@" + d.String()
			byKey := verifyCosign(t, rel.SigstorePublicKey, sig.Payload, sig.Signature)
			byOther := verifyCosign(t, rel.SigstoreOtherKey.PublicKeyPEM(), sig.Payload, sig.Signature)
			var ok bool
			switch fault {
			case SigstoreFaultOtherKey:
				ok = !byKey && byOther && sig.Digest == d && sig.Identity == good
			case SigstoreFaultOtherDigest:
				_, _, err := c.GetManifest(t.Context(), comp.Repository, sig.Digest.String())
				ok = byKey && sig.Digest != d && errors.Is(err, ErrNotFound) && sig.Identity == good
			case SigstoreFaultOtherIdentity:
				ok = byKey && sig.Digest == d && sig.Identity == rel.Host+"/"+comp.Repository+"-other@"+d.String()
			case SigstoreFaultNameOnlyIdentity:
				ok = byKey && sig.Digest == d && sig.Identity == rel.Host+"/"+comp.Repository
			case "":
				ok = byKey && sig.Digest == d && sig.Identity == good
			}
			if !ok {
				t.Errorf("%s (%q): %s@%s signed as %s for %s, by the key %t, by the other %t",
					name, fault, comp.Repository, d, sig.Identity, sig.Digest, byKey, byOther)
			}
		}
		if got := comp.Signed; got != (fault != SigstoreFaultUnsigned) {
			t.Errorf("%s: Signed %t", name, got)
		}
	}

	// The release list and first child are signed, the second child not.
	children := decode[ocispec.Index](t, rel.Manifest).Manifests
	wantFaulty[children[1].Digest] = SigstoreFaultUnsignedReleaseChild
	for i, d := range []digest.Digest{rel.Digest, children[0].Digest, children[1].Digest} {
		if got := slices.Contains(tags[rel.Repository], SigstoreTag(d)); got != (i < 2) {
			t.Errorf("release manifest %d (%s): signature present %t", i, d, got)
		}
	}
	if !maps.Equal(rel.SigstoreFaulty, wantFaulty) {
		t.Errorf("SigstoreFaulty %v\nwant %v", rel.SigstoreFaulty, wantFaulty)
	}
}

// nodeRefusals are containers/image's words (v5.42) for refusing each fault.
var nodeRefusals = map[string]string{
	SigstoreFaultUnsigned:             "no signature exists",
	SigstoreFaultUnsignedReleaseChild: "no signature exists",
	SigstoreFaultOtherKey:             "cryptographic signature verification failed",
	SigstoreFaultOtherDigest:          "does not match",
	SigstoreFaultOtherIdentity:        "is not accepted",
	SigstoreFaultNameOnlyIdentity:     "is not accepted",
}

// TestSigstoreNodeOracle shows that what the test bed writes is what a
// node reads: containers/image's own policy engine, set up from the
// release's ClusterImagePolicy, lets every manifest run but exactly those
// SigstoreFaulty names, for each kind of key.
func TestSigstoreNodeOracle(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{SigstoreKeyEd25519, SigstoreKeyRSA, SigstoreKeyECDSA} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			reg := NewMemoryRegistry(t)
			opts := faultedRelease
			opts.SigstoreKey = kind
			rel := BuildRelease(t, reg.Host, opts)
			node := newNodePolicy(t, rel.ImagePolicy)
			refused := map[digest.Digest]string{}
			for _, im := range rel.Images {
				if im.Role == RoleSigstore {
					continue
				}
				ok, err := node.allowed(t, rel.Host+"/"+im.Repository+"@"+im.Digest.String())
				if ok {
					if err != nil {
						t.Errorf("%s allowed with error %v", im.Digest, err)
					}
					continue
				}
				fault := rel.SigstoreFaulty[im.Digest]
				refused[im.Digest] = fault
				// Refused for the reason the fault is about.
				if err == nil || !strings.Contains(err.Error(), nodeRefusals[fault]) {
					t.Errorf("%s (%q) refused with %v, want %q", im.Digest, fault, err, nodeRefusals[fault])
				}
			}
			if !maps.Equal(refused, rel.SigstoreFaulty) {
				t.Errorf("the node refused %v\nSigstoreFaulty %v", refused, rel.SigstoreFaulty)
			}
			// By its tag, the release is allowed too: its identity is the tag.
			if ok, err := node.allowed(t, rel.PullSpec); !ok {
				t.Errorf("%s refused: %v", rel.PullSpec, err)
			}
		})
	}
}

// TestSignCosign signs an unsigned release's images with a key of each
// kind through the exported API; the node accepts them under a policy of
// that key only when the identity has a digest.
func TestSignCosign(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	c := reg.Client()
	rel := BuildRelease(t, reg.Host, ReleaseOptions{Components: 3})
	for i, kind := range []string{SigstoreKeyEd25519, SigstoreKeyRSA, SigstoreKeyECDSA} {
		key, err := NewSigstoreKey(kind)
		if err != nil {
			t.Fatal(err)
		}
		comp := rel.Components[i]
		ref := reg.Host + "/" + comp.Repository + "@" + comp.Digest.String()
		node := newNodePolicy(t, ClusterImagePolicyYAML("test", []string{reg.Host + "/" + comp.Repository}, key.PublicKeyPEM()))
		if ok, _ := node.allowed(t, ref); ok {
			t.Fatalf("%s: an unsigned image is allowed", kind)
		}
		// Name only first: a valid signature the node refuses.
		if _, err := SignCosign(t.Context(), c, comp.Repository, comp.Digest, reg.Host+"/"+comp.Repository, key); err != nil {
			t.Fatal(err)
		}
		if ok, _ := node.allowed(t, ref); ok {
			t.Errorf("%s: a name-only identity is allowed", kind)
		}
		sd, err := SignCosign(t.Context(), c, comp.Repository, comp.Digest, ref, key)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := node.allowed(t, ref); !ok {
			t.Errorf("%s: refused: %v", kind, err)
		}
		sig := readCosign(t, c, comp.Repository, SigstoreTag(comp.Digest))
		if desc, err := c.HeadManifest(t.Context(), comp.Repository, SigstoreTag(comp.Digest)); err != nil || desc.Digest != sd {
			t.Errorf("%s: tag is %s, SignCosign said %s: %v", kind, desc.Digest, sd, err)
		}
		if !verifyCosign(t, key.PublicKeyPEM(), sig.Payload, sig.Signature) || sig.Identity != ref || sig.Digest != comp.Digest {
			t.Errorf("%s: %+v", kind, sig)
		}
	}
}

func TestSigstoreShareWith(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	opts := ReleaseOptions{Components: 4, SigstoreKey: SigstoreKeyECDSA, SigstorePolicy: SigstorePolicy422}
	old := BuildRelease(t, reg.Host, opts)
	next := opts
	next.Version, next.ShareWith = "4.15.1", old
	same := BuildRelease(t, reg.Host, next)
	if same.SigstoreKey != old.SigstoreKey {
		t.Fatal("a release sharing with one signed by the same kind of key has another key")
	}
	oldSigs := map[string]digest.Digest{}
	for _, im := range old.Images {
		if im.Role == RoleSigstore {
			oldSigs[im.Repository+":"+im.Tag] = im.Digest
		}
	}
	kept := 0
	for _, im := range same.Images {
		if d, ok := oldSigs[im.Repository+":"+im.Tag]; ok && im.Role == RoleSigstore {
			// ECDSA signs randomly: an equal digest is the old image, kept.
			if d != im.Digest {
				t.Errorf("%s:%s signed again", im.Repository, im.Tag)
			}
			kept++
		}
	}
	if kept != 3 {
		t.Errorf("%d signatures kept, want the 3 unchanged components'", kept)
	}

	// On another registry the identity names that registry: signed anew.
	other := NewMemoryRegistry(t)
	moved := BuildRelease(t, other.Host, next)
	for _, st := range moved.SigTags {
		repo, tag, _ := strings.Cut(st, ":")
		checkCosign(t, other.Client(), moved, repo, tag)
	}
	if len(moved.SigTags) != len(same.SigTags) {
		t.Errorf("%d signatures on the other registry, %d on the first", len(moved.SigTags), len(same.SigTags))
	}
}

func TestSigstoreOptionsRefused(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	old := BuildRelease(t, reg.Host, ReleaseOptions{Components: 4, SigstorePolicy: SigstorePolicy421})
	for _, tc := range []struct {
		name string
		opts ReleaseOptions
		want string
	}{
		{"key kind", ReleaseOptions{Sigstore: true, SigstoreKey: "dsa"}, "SigstoreKey"},
		{"policy version", ReleaseOptions{SigstorePolicy: "4.20"}, "SigstorePolicy"},
		{"faults unsigned", ReleaseOptions{SigstoreFaults: SigstoreFaults{Unsigned: []string{componentName(0)}}}, "need Sigstore"},
		{"unknown component", ReleaseOptions{Sigstore: true, SigstoreFaults: SigstoreFaults{OtherKey: []string{"nope"}}}, "no component"},
		{"named twice", ReleaseOptions{Sigstore: true, SigstoreFaults: SigstoreFaults{
			OtherKey: []string{componentName(1)}, OtherDigest: []string{componentName(1)}}}, "twice"},
		{"child of single", ReleaseOptions{Sigstore: true, SigstoreFaults: SigstoreFaults{UnsignedReleaseChild: true}}, "Multi"},
		{"shared component", ReleaseOptions{Components: 4, Version: "4.15.1", ShareWith: old, SigstorePolicy: SigstorePolicy421,
			SigstoreFaults: SigstoreFaults{Unsigned: []string{componentName(0)}}}, "unchanged"},
	} {
		_, err := buildRelease(t.Context(), reg.Host, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}
