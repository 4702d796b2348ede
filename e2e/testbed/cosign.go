package testbed

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Kinds of cosign signing key, for ReleaseOptions.SigstoreKey and
// NewSigstoreKey.
const (
	// SigstoreKeyEd25519 signs the payload itself (no pre-hash), and
	// deterministically: a release built from a Seed with it is the same
	// every time. The default.
	SigstoreKeyEd25519 = "ed25519"
	// SigstoreKeyRSA signs the SHA-256 of the payload with PKCS#1 v1.5, as
	// cosign does with an RSA key and Red Hat's policy key is (RSA-4096).
	SigstoreKeyRSA = "rsa"
	// SigstoreKeyECDSA signs the SHA-256 of the payload on P-256, with an
	// ASN.1 signature: cosign's own default key.
	SigstoreKeyECDSA = "ecdsa"
)

// sigstoreRSABits is the size of the RSA keys made here. Red Hat's key is
// 4096 bits, but making one takes seconds of the two shared cores, and a
// verifier takes the same path for any size.
const sigstoreRSABits = 2048

// cosignSignatureType is critical.type of every cosign payload.
const cosignSignatureType = "cosign container image signature"

// SigstoreKey is a cosign signing key made for one test. It is a
// crypto.Signer (its Sign is the standard one, over a digest as opts say);
// SignCosignPayload signs a payload the way cosign does.
type SigstoreKey struct {
	kind   string
	signer crypto.Signer
	pubPEM []byte
}

// NewSigstoreKey makes a fresh key of kind SigstoreKeyEd25519 (also for
// ""), SigstoreKeyRSA (2048 bits) or SigstoreKeyECDSA (P-256), from
// crypto/rand.
func NewSigstoreKey(kind string) (*SigstoreKey, error) {
	var s crypto.Signer
	var err error
	switch kind {
	case "", SigstoreKeyEd25519:
		kind = SigstoreKeyEd25519
		_, s, err = ed25519.GenerateKey(rand.Reader)
	case SigstoreKeyRSA:
		s, err = rsa.GenerateKey(rand.Reader, sigstoreRSABits)
	case SigstoreKeyECDSA:
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("sigstore key kind %q: want %s, %s or %s", kind, SigstoreKeyEd25519, SigstoreKeyRSA, SigstoreKeyECDSA)
	}
	if err != nil {
		return nil, fmt.Errorf("making a %s sigstore key: %w", kind, err)
	}
	return newSigstoreKey(kind, s)
}

// seededSigstoreKey is the Ed25519 key that seed and label always give.
func seededSigstoreKey(seed int64, label string) (*SigstoreKey, error) {
	s := seedFor(seed, label)
	return newSigstoreKey(SigstoreKeyEd25519, ed25519.NewKeyFromSeed(s[:]))
}

func newSigstoreKey(kind string, s crypto.Signer) (*SigstoreKey, error) {
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding a %s sigstore public key: %w", kind, err)
	}
	return &SigstoreKey{kind: kind, signer: s, pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}, nil
}

// Kind is SigstoreKeyEd25519, SigstoreKeyRSA or SigstoreKeyECDSA.
func (k *SigstoreKey) Kind() string { return k.kind }

// PublicKeyPEM is the public key as cosign and ClusterImagePolicy take it:
// a PEM "PUBLIC KEY" block of PKIX DER. The caller owns the copy.
func (k *SigstoreKey) PublicKeyPEM() []byte { return bytes.Clone(k.pubPEM) }

// Public implements crypto.Signer.
func (k *SigstoreKey) Public() crypto.PublicKey { return k.signer.Public() }

// Sign implements crypto.Signer: it signs digest as opts say, exactly as
// the underlying standard-library key does.
func (k *SigstoreKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.signer.Sign(r, digest, opts)
}

// SigstoreTag is the tag under which cosign stores the signature of d.
func SigstoreTag(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded() + ".sig"
}

// CosignPayload is the simple-signing payload cosign signs for the
// manifest d under identity (critical.identity.docker-reference), byte for
// byte as cosign writes it: {"critical":{"identity":{...},"image":{...},
// "type":"cosign container image signature"},"optional":null}.
//
// containers/image's default MatchRepoDigestOrExact refuses a name-only
// identity: sign with host/repo@digest, or host/repo:tag for an image
// pulled by that tag.
func CosignPayload(identity string, d digest.Digest) ([]byte, error) {
	var p struct {
		Critical struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
		Optional map[string]string `json:"optional"`
	}
	p.Critical.Identity.DockerReference = identity
	p.Critical.Image.DockerManifestDigest = d.String()
	p.Critical.Type = cosignSignatureType
	return json.Marshal(p)
}

// SignCosignPayload signs payload as cosign does with key: Ed25519 over the
// payload itself, RSA (PKCS#1 v1.5) and ECDSA (ASN.1) over its SHA-256.
func SignCosignPayload(key crypto.Signer, payload []byte) ([]byte, error) {
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		return key.Sign(rand.Reader, payload, crypto.Hash(0))
	case *rsa.PublicKey, *ecdsa.PublicKey:
		h := sha256.Sum256(payload)
		return key.Sign(rand.Reader, h[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("signing a cosign payload: unsupported key type %T", pub)
	}
}

// SignCosign signs manifest d of repo with key under identity and pushes
// the signature image, tagged SigstoreTag(d) in repo, to c's registry. It
// returns the signature image's digest. To forge, see CosignPayload and
// PushCosignSignature.
func SignCosign(ctx context.Context, c *Client, repo string, d digest.Digest, identity string, key crypto.Signer) (digest.Digest, error) {
	payload, err := CosignPayload(identity, d)
	if err != nil {
		return "", err
	}
	sig, err := SignCosignPayload(key, payload)
	if err != nil {
		return "", fmt.Errorf("signing %s@%s: %w", repo, d, err)
	}
	return PushCosignSignature(ctx, c, repo, d, payload, sig)
}

// PushCosignSignature pushes a cosign signature image holding payload and
// signature (raw bytes; base64 goes in the annotation) as the tag
// SigstoreTag(signs) of repo, whatever the payload says, and returns its
// digest.
func PushCosignSignature(ctx context.Context, c *Client, repo string, signs digest.Digest, payload, signature []byte) (digest.Digest, error) {
	img, err := cosignSignatureImage(payload, signature)
	if err != nil {
		return "", err
	}
	for _, data := range [][]byte{payload, img.config} {
		if _, err := c.PushBlob(ctx, repo, data); err != nil {
			return "", fmt.Errorf("pushing signature of %s@%s: %w", repo, signs, err)
		}
	}
	md, err := c.PushManifest(ctx, repo, SigstoreTag(signs), ocispec.MediaTypeImageManifest, img.manifest)
	if err != nil {
		return "", fmt.Errorf("pushing signature of %s@%s: %w", repo, signs, err)
	}
	return md, nil
}

// cosignImage is a signature image's config and manifest; its one layer
// is the payload.
type cosignImage struct {
	config, manifest []byte
}

// cosignSignatureImage makes the image cosign stores a signature as: an
// OCI manifest whose config is a minimal image config and whose one layer
// is the payload, carrying the base64 signature in the
// dev.cosignproject.cosign/signature annotation.
func cosignSignatureImage(payload, signature []byte) (cosignImage, error) {
	layer := digest.FromBytes(payload)
	zero := "0001-01-01T00:00:00Z"
	config, err := json.Marshal(map[string]any{
		"architecture": "", "os": "", "created": zero,
		"config":  map[string]any{},
		"history": []map[string]string{{"created": zero}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{layer.String()}},
	})
	if err != nil {
		return cosignImage{}, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers: []ocispec.Descriptor{{
			MediaType: MediaTypeCosignPayload, Digest: layer, Size: int64(len(payload)),
			Annotations: map[string]string{CosignSignatureAnnotation: base64.StdEncoding.EncodeToString(signature)},
		}},
	}
	m.SchemaVersion = 2
	manifest, err := json.Marshal(m)
	if err != nil {
		return cosignImage{}, err
	}
	return cosignImage{config: config, manifest: manifest}, nil
}

// sigSpec says how the builder signs one manifest: what the payload names,
// with which key, and the fault it carries, if any.
type sigSpec struct {
	signs    digest.Digest // the manifest whose .sig tag it is
	named    digest.Digest // the digest the payload names: signs unless faulted
	identity string
	key      *SigstoreKey
	fault    string
}

// sign pushes the cosign signature image spec describes, tagged
// sha256-<hex>.sig in repo.
func (b *builder) sign(ctx context.Context, repo string, spec sigSpec) (*image, error) {
	payload, err := CosignPayload(spec.identity, spec.named)
	if err != nil {
		return nil, err
	}
	sig, err := SignCosignPayload(spec.key, payload)
	if err != nil {
		return nil, fmt.Errorf("signing %s@%s: %w", repo, spec.signs, err)
	}
	img, err := cosignSignatureImage(payload, sig)
	if err != nil {
		return nil, err
	}
	layer, err := b.dataBlob(ctx, repo, payload)
	if err != nil {
		return nil, err
	}
	config, err := b.dataBlob(ctx, repo, img.config)
	if err != nil {
		return nil, err
	}
	tag := SigstoreTag(spec.signs)
	md, err := b.c.PushManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, img.manifest)
	if err != nil {
		return nil, fmt.Errorf("pushing signature of %s@%s: %w", repo, spec.signs, err)
	}
	return &image{blobs: []*blob{config, layer}, sig: &spec, info: ImageInfo{
		Role: RoleSigstore, Repository: repo, Digest: md, MediaType: ocispec.MediaTypeImageManifest,
		Size: int64(len(img.manifest)), Manifest: img.manifest, Tag: tag, Signs: spec.signs,
		Blobs: []digest.Digest{config.digest, layer.digest},
	}}, nil
}
