package testbed

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// sigstoreKey signs cosign payloads. Ed25519 (which cosign supports) signs
// deterministically, so a seeded build gives the same signature tags.
type sigstoreKey struct {
	priv   ed25519.PrivateKey
	pubPEM []byte
}

func newSigstoreKey(seed int64) *sigstoreKey {
	s := seedFor(seed, "sigstore-key")
	priv := ed25519.NewKeyFromSeed(s[:])
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		panic(err) // cannot fail for an Ed25519 key
	}
	return &sigstoreKey{priv: priv, pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

// SigstoreTag is the tag under which cosign stores the signature of d.
func SigstoreTag(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded() + ".sig"
}

// cosignPayload is cosign's simple-signing payload for the image d in
// repository ref (host/repo).
func cosignPayload(ref string, d digest.Digest) ([]byte, error) {
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
	p.Critical.Identity.DockerReference = ref
	p.Critical.Image.DockerManifestDigest = d.String()
	p.Critical.Type = "cosign container image signature"
	return json.Marshal(p)
}

// sign pushes a cosign signature image for manifest d of repo, tagged
// sha256-<hex>.sig in the same repository: an OCI manifest whose config is
// a minimal image config and whose one layer is the payload, carrying the
// base64 signature in the dev.cosignproject.cosign/signature annotation.
func (b *builder) sign(ctx context.Context, repo string, d digest.Digest) (*image, error) {
	payload, err := cosignPayload(b.host+"/"+repo, d)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(b.sigKey.priv, payload)
	layer, err := b.dataBlob(ctx, repo, payload)
	if err != nil {
		return nil, err
	}
	zero := "0001-01-01T00:00:00Z"
	cfg := map[string]any{
		"architecture": "", "os": "", "created": zero,
		"config":  map[string]any{},
		"history": []map[string]string{{"created": zero}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{layer.digest.String()}},
	}
	config, err := b.jsonBlob(ctx, repo, cfg)
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: config.digest, Size: config.size},
		Layers: []ocispec.Descriptor{{
			MediaType: MediaTypeCosignPayload, Digest: layer.digest, Size: layer.size,
			Annotations: map[string]string{CosignSignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
		}},
	}
	m.SchemaVersion = 2
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	tag := SigstoreTag(d)
	md, err := b.c.PushManifest(ctx, repo, tag, m.MediaType, data)
	if err != nil {
		return nil, fmt.Errorf("pushing signature of %s: %w", d, err)
	}
	return &image{blobs: []*blob{config, layer}, info: ImageInfo{
		Role: RoleSigstore, Repository: repo, Digest: md, MediaType: m.MediaType, Size: int64(len(data)),
		Manifest: data, Tag: tag, Signs: d, Blobs: []digest.Digest{config.digest, layer.digest},
	}}, nil
}
