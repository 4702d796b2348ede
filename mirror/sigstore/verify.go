package sigstore

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigstoresig "github.com/sigstore/sigstore/pkg/signature"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/internal/strictjson"
)

// Bounds on the signatures of one image. cosign writes one layer per
// signature and a payload of a few hundred bytes.
const (
	// MaxSignatures caps the signatures tried for one image.
	MaxSignatures = 64
	// MaxPayloadBytes caps one simple-signing payload.
	MaxPayloadBytes = 64 << 10
)

// cosignType is the payload's critical.type as cosign writes it.
const cosignType = "cosign container image signature"

// Signature is one cosign signature of an image: the simple-signing
// payload (the bytes of a layer of the sha256-<hex>.sig image) and the
// base64 signature from that layer's dev.cosignproject.cosign/signature
// annotation.
type Signature struct {
	Payload []byte
	Base64  string
}

// RefusedError says why the node would refuse to run an image: for each
// policy that applies and accepts none of its signatures, why.
type RefusedError struct {
	Repository string
	Digest     digest.Digest
	// Unsigned is true when the image has no signature at all.
	Unsigned bool
	// Reasons name each refusing policy and why it refused.
	Reasons []string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s@%s: %s", e.Repository, e.Digest, strings.Join(e.Reasons, "; "))
}

// Verifier checks images against a release's policies. It holds each
// PublicKey policy's parsed key, so one Verifier serves every image.
type Verifier struct {
	policies []Policy
	keys     []crypto.PublicKey // by policy index; nil when not PublicKey
}

// NewVerifier prepares policies for checking. A policy whose key does not
// parse is an error (ParsePolicies already refuses those).
func NewVerifier(policies []Policy) (*Verifier, error) {
	v := &Verifier{policies: policies, keys: make([]crypto.PublicKey, len(policies))}
	for i := range policies {
		if policies[i].RootOfTrust != RootPublicKey {
			continue
		}
		key, err := loadPublicKey(policies[i].PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", policies[i].ID(), err)
		}
		v.keys[i] = key
	}
	return v, nil
}

// Policies are the policies the Verifier checks against.
func (v *Verifier) Policies() []Policy { return v.policies }

// InScope reports whether any policy applies to repo@d.
func (v *Verifier) InScope(repo string, d digest.Digest) bool {
	return len(applicableIndices(v.policies, repo, d)) > 0
}

// Check decides as the node would whether the image repo@d (repo is the
// source repository the cluster names, host/path) may run with sigs: nil
// when it is out of scope or every applicable policy accepts one of the
// signatures, else a *RefusedError.
func (v *Verifier) Check(repo string, d digest.Digest, sigs []Signature) error {
	applicable := applicableIndices(v.policies, repo, d)
	if len(applicable) == 0 {
		return nil
	}
	refused := &RefusedError{Repository: repo, Digest: d, Unsigned: len(sigs) == 0}
	if len(sigs) > MaxSignatures {
		refused.Reasons = append(refused.Reasons, fmt.Sprintf("%d signatures, more than the %d ferry checks (sigstore.MaxSignatures)", len(sigs), MaxSignatures))
		return refused
	}
	for _, i := range applicable {
		if reason := v.refusal(i, repo, d, sigs); reason != "" {
			refused.Reasons = append(refused.Reasons, v.policies[i].ID()+": "+reason)
		}
	}
	if len(refused.Reasons) == 0 {
		return nil
	}
	return refused
}

// refusal is why policy i accepts none of sigs, "" when one is accepted.
func (v *Verifier) refusal(i int, repo string, d digest.Digest, sigs []Signature) string {
	p := &v.policies[i]
	if v.keys[i] == nil || p.RootOfTrust != RootPublicKey {
		return fmt.Sprintf("policy type %s cannot be proven without the network (only PublicKey can)", p.RootOfTrust)
	}
	if len(sigs) == 0 {
		return "no signature (no sha256-" + d.Encoded() + ".sig in " + repo + ")"
	}
	var reasons []string
	for _, s := range sigs {
		err := verifyOne(p, v.keys[i], repo, d, s)
		if err == nil {
			return ""
		}
		reasons = append(reasons, err.Error())
	}
	if len(reasons) == 1 {
		return reasons[0]
	}
	return fmt.Sprintf("%d signatures, none accepted: %s", len(reasons), strings.Join(reasons, "; "))
}

// verifyOne checks one signature in the node's order: the signature over
// the exact payload bytes, then the payload's type, digest and identity.
func verifyOne(p *Policy, key crypto.PublicKey, repo string, d digest.Digest, s Signature) error {
	if len(s.Payload) > MaxPayloadBytes {
		return fmt.Errorf("payload of %d bytes, more than the %d allowed (sigstore.MaxPayloadBytes)", len(s.Payload), MaxPayloadBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(s.Base64)
	if err != nil {
		return fmt.Errorf("signature annotation is not base64: %v", err)
	}
	verifier, err := sigstoresig.LoadVerifier(key, crypto.SHA256)
	if err != nil {
		return fmt.Errorf("policy key: %v", err)
	}
	if err := verifier.VerifySignature(bytes.NewReader(raw), bytes.NewReader(s.Payload)); err != nil {
		return errors.New("signature does not verify with the policy's key")
	}
	signed, err := parsePayload(s.Payload)
	if err != nil {
		return err
	}
	if signed.digest != d.String() {
		return fmt.Errorf("signature is for %s, not this image", signed.digest)
	}
	return checkIdentity(p, repo, signed.identity)
}

type signedPayload struct {
	digest, identity string
}

// parsePayload reads the simple-signing payload as strictly as the node:
// only the fields of the format, each present.
func parsePayload(data []byte) (*signedPayload, error) {
	var pl struct {
		Critical *struct {
			Identity *struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image *struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
		Optional any `json:"optional"`
	}
	if err := strictjson.Decode(data, &pl); err != nil {
		return nil, fmt.Errorf("payload: %v", err)
	}
	c := pl.Critical
	switch {
	case c == nil:
		return nil, errors.New("payload has no critical section")
	case c.Type != cosignType:
		return nil, fmt.Errorf("payload type %q, not %q", c.Type, cosignType)
	case c.Image == nil || c.Image.DockerManifestDigest == "":
		return nil, errors.New("payload names no image digest")
	case c.Identity == nil || c.Identity.DockerReference == "":
		return nil, errors.New("payload names no identity")
	}
	return &signedPayload{digest: c.Image.DockerManifestDigest, identity: c.Identity.DockerReference}, nil
}

// checkIdentity applies the policy's identity rule to the signed
// reference, for an image the node pulls by digest from repo.
func checkIdentity(p *Policy, repo, signed string) error {
	ref, err := reference.ParseNormalizedNamed(signed)
	if err != nil {
		return fmt.Errorf("signed identity %q: %v", signed, err)
	}
	want := repo
	switch p.MatchPolicy {
	case MatchRepository:
		return sameRepository(ref, want, signed)
	case ExactRepository:
		exact, err := reference.ParseNormalizedNamed(p.ExactRepository)
		if err != nil {
			return fmt.Errorf("exactRepository %q: %v", p.ExactRepository, err)
		}
		return sameRepository(ref, exact.Name(), signed)
	case RemapIdentity:
		if repo == p.RemapPrefix || strings.HasPrefix(repo, p.RemapPrefix+"/") {
			want = p.RemapSignedPrefix + strings.TrimPrefix(repo, p.RemapPrefix)
		}
	}
	if reference.IsNameOnly(ref) {
		return fmt.Errorf("signed identity %q names no tag or digest, which %s refuses", signed, MatchRepoDigestOrExact)
	}
	return sameRepository(ref, want, signed)
}

func sameRepository(ref reference.Named, want, signed string) error {
	if ref.Name() != want {
		return fmt.Errorf("signed identity %q is not of repository %s", signed, want)
	}
	return nil
}

func loadPublicKey(pemData []byte) (crypto.PublicKey, error) {
	key, err := cryptoutils.UnmarshalPEMToPublicKey(pemData)
	if err != nil {
		return nil, fmt.Errorf("not a PEM public key: %v", err)
	}
	return key, nil
}

// Media type and annotation of a cosign signature layer.
const (
	MediaTypePayload    = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
)

// Signatures reads the cosign signatures out of a sha256-<hex>.sig image:
// each simple-signing layer's payload, read with readPayload (which must
// return the blob checked against its digest), and its annotation. Other
// layers are skipped, as the node skips them.
func Signatures(manifestBytes []byte, mediaType string, readPayload func(d digest.Digest, size int64) ([]byte, error)) ([]Signature, error) {
	m, err := manifest.FromBlob(manifestBytes, mediaType)
	if err != nil {
		return nil, fmt.Errorf("signature manifest: %w", err)
	}
	var sigs []Signature
	for _, l := range m.LayerInfos() {
		if l.MediaType != MediaTypePayload {
			continue
		}
		if len(sigs) == MaxSignatures {
			return nil, fmt.Errorf("signature manifest has more than %d signatures (sigstore.MaxSignatures)", MaxSignatures)
		}
		if l.Size < 0 || l.Size > MaxPayloadBytes {
			return nil, fmt.Errorf("signature payload %s is %d bytes, more than the %d allowed (sigstore.MaxPayloadBytes)", l.Digest, l.Size, MaxPayloadBytes)
		}
		payload, err := readPayload(l.Digest, l.Size)
		if err != nil {
			return nil, fmt.Errorf("signature payload %s: %w", l.Digest, err)
		}
		sigs = append(sigs, Signature{Payload: payload, Base64: l.Annotations[SignatureAnnotation]})
	}
	return sigs, nil
}
