package admission

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// cosignKey signs as `cosign sign --key` does: ECDSA P-256 over the SHA-256
// of the simple-signing payload.
type cosignKey struct {
	priv *ecdsa.PrivateKey
	pem  []byte // the public key, as a policy's keyData holds it
}

func newCosignKey(t testing.TB) *cosignKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &cosignKey{priv: priv, pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

// policy is a ClusterImagePolicy of key over scopes with the default
// identity rule, as sigstore.ParsePolicies reads one.
func (k *cosignKey) policy(name string, scopes ...string) sigstore.Policy {
	return sigstore.Policy{Kind: sigstore.KindClusterImagePolicy, Name: name, Scopes: scopes,
		RootOfTrust: sigstore.RootPublicKey, PublicKey: k.pem, MatchPolicy: sigstore.MatchRepoDigestOrExact}
}

// cosignPayload is the simple-signing payload cosign signs for image d
// under identity (a reference, with tag for the default identity rule).
func cosignPayload(t testing.TB, identity string, d digest.Digest) []byte {
	t.Helper()
	payload, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": identity},
			"image":    map[string]string{"docker-manifest-digest": d.String()},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// sign pushes the signature image of d to repo on reg as cosign does: tag
// sha256-<hex>.sig, an OCI manifest whose config is an image config and
// whose one layer is the payload, the base64 signature in the layer's
// dev.cosignproject.cosign/signature annotation.
func (k *cosignKey) sign(t testing.TB, reg *testbed.Registry, repo, identity string, d digest.Digest) {
	t.Helper()
	k.signAs(t, reg, repo, identity, d, d)
}

// signAs pushes a signature of signed under the tag of image d: for
// signatures that do not belong where they are.
func (k *cosignKey) signAs(t testing.TB, reg *testbed.Registry, repo, identity string, signed, d digest.Digest) {
	t.Helper()
	payload := cosignPayload(t, identity, signed)
	sum := sha256.Sum256(payload)
	sig, err := k.priv.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := testbed.NewClient(reg.Host)
	layer := pushBlob(t, c, repo, payload, testbed.MediaTypeCosignPayload)
	layer.Annotations = map[string]string{testbed.CosignSignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}
	config := pushBlob(t, c, repo, fmt.Appendf(nil, `{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[%q]}}`, layer.Digest),
		ocispec.MediaTypeImageConfig)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushManifest(ctx, repo, testbed.SigstoreTag(d), m.MediaType, data); err != nil {
		t.Fatal(err)
	}
}

func pushBlob(t testing.TB, c *testbed.Client, repo string, data []byte, mediaType string) ocispec.Descriptor {
	t.Helper()
	d, err := c.PushBlob(context.Background(), repo, data)
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// testImage is an image's manifest, pushable to any registry with the
// same digest.
type testImage struct {
	config, layer []byte
	manifest      []byte
	mediaType     string
	digest        digest.Digest
	children      []*testImage
}

// newImage makes a one-layer OCI image whose content depends on name.
func newImage(t testing.TB, name, arch string) *testImage {
	t.Helper()
	img := &testImage{
		config:    fmt.Appendf(nil, `{"architecture":%q,"os":"linux","config":{"Labels":{"name":%q}}}`, arch, name),
		layer:     []byte("layer of " + name),
		mediaType: ocispec.MediaTypeImageManifest,
	}
	m := ocispec.Manifest{MediaType: img.mediaType,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.config), Size: int64(len(img.config))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(img.layer), Size: int64(len(img.layer))}}}
	m.SchemaVersion = 2
	img.marshal(t, m)
	return img
}

// newIndex makes an OCI index of children.
func newIndex(t testing.TB, children ...*testImage) *testImage {
	t.Helper()
	img := &testImage{mediaType: ocispec.MediaTypeImageIndex, children: children}
	idx := ocispec.Index{MediaType: img.mediaType}
	idx.SchemaVersion = 2
	for _, c := range children {
		var cfg struct{ Architecture string }
		if err := json.Unmarshal(c.config, &cfg); err != nil {
			t.Fatal(err)
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: c.mediaType, Digest: c.digest, Size: int64(len(c.manifest)),
			Platform: &ocispec.Platform{OS: "linux", Architecture: cfg.Architecture}})
	}
	img.marshal(t, idx)
	return img
}

func (img *testImage) marshal(t testing.TB, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	img.manifest, img.digest = data, digest.FromBytes(data)
}

// push pushes the image (and a list's images) to repo on reg by digest.
func (img *testImage) push(t testing.TB, reg *testbed.Registry, repo string) {
	t.Helper()
	c := testbed.NewClient(reg.Host)
	for _, child := range img.children {
		child.push(t, reg, repo)
	}
	if img.config != nil {
		pushBlob(t, c, repo, img.config, "")
		pushBlob(t, c, repo, img.layer, "")
	}
	if _, err := c.PushManifest(context.Background(), repo, img.digest.String(), img.mediaType, img.manifest); err != nil {
		t.Fatal(err)
	}
}
