package mirror

import (
	"fmt"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// Bounds on what a plan takes from registries. Every manifest is read into
// memory and kept there until the bundle is written, and every blob a
// manifest names is carried: a registry that serves manifest lists of
// thousands of 4 MiB children, or a signature tag naming gigabytes, must
// fail the plan early instead of filling memory or the bundle.
const (
	// MaxListChildren caps the manifests one list or index names. A
	// multi-arch release names four or five architectures and the widest
	// public images about fifteen platforms.
	MaxListChildren = 64
	// MaxImageLayers caps the layers of one image manifest: twice the 127
	// layers Docker and overlayfs let an image have, so that any image a
	// runtime can run fits.
	MaxImageLayers = 256
	// MaxPlanManifestBytes caps the bytes of all the manifests a plan
	// holds. A release holds about 1,000 manifests of a few KB (multi-arch
	// about 1,200), so twenty releases take some 70 MB; at most
	// registry.MaxManifestSize more is held while one is read.
	MaxPlanManifestBytes = 256 << 20
	// MaxSigstoreLayers caps the layers of a cosign signature image:
	// cosign adds one per signature, and an image signed by more than a
	// handful of keys is already unusual.
	MaxSigstoreLayers = 64
	// MaxSigstoreBlobSize caps the config and each layer of a cosign
	// signature image: a simple-signing payload is under 1 KiB, its config
	// smaller still.
	MaxSigstoreBlobSize = 64 << 10
)

// MediaTypeCosignPayload is the media type of the layers of a cosign
// signature image: one simple-signing payload each.
const MediaTypeCosignPayload = sigstore.MediaTypePayload

// BoundError reports a manifest that takes the plan past one of its
// bounds. Callers match it with errors.As.
type BoundError struct {
	// Image is the manifest that crossed the bound: repository@digest.
	Image string
	// Bound names the constant (MaxListChildren, MaxImageLayers,
	// MaxPlanManifestBytes) and Limit is its value.
	Bound string
	Limit int64
	// Got is what the manifest has (children, layers), or the bytes the
	// plan would hold with it.
	Got int64
}

func (e *BoundError) Error() string {
	switch e.Bound {
	case "MaxListChildren":
		return fmt.Sprintf("manifest list %s names %d manifests, more than the %d allowed (mirror.%s)", e.Image, e.Got, e.Limit, e.Bound)
	case "MaxImageLayers":
		return fmt.Sprintf("manifest %s has %d layers, more than the %d allowed (mirror.%s)", e.Image, e.Got, e.Limit, e.Bound)
	}
	return fmt.Sprintf("manifest %s takes the plan's manifests to %d bytes, more than the %d allowed (mirror.%s)", e.Image, e.Got, e.Limit, e.Bound)
}

// SigstoreError reports a sha256-<hex>.sig tag that is not what cosign
// writes. The plan refuses it rather than leave it out: whatever a
// registry serves under a signature tag would otherwise be carried
// unchecked, and a signature silently missing from the bundle would only
// show on the far side of the air gap, when an image policy refuses to
// run the image it should have signed.
type SigstoreError struct {
	// Tag is repository:sha256-<hex>.sig; Digest is what it points at.
	Tag    string
	Digest string
	Reason string
}

func (e *SigstoreError) Error() string {
	return fmt.Sprintf("signature tag %s (%s) is not a cosign signature: %s", e.Tag, e.Digest, e.Reason)
}

// checkSigstore checks that m, read from the tag repo:tag, is what cosign
// writes: a single image manifest (never a list) of at most
// MaxSigstoreLayers simple-signing payloads, its config and each payload at
// most MaxSigstoreBlobSize bytes.
func checkSigstore(repo, tag string, m registry.Manifest) error {
	fail := func(format string, args ...any) error {
		return &SigstoreError{Tag: repo + ":" + tag, Digest: m.Digest.String(), Reason: fmt.Sprintf(format, args...)}
	}
	switch m.MediaType {
	case imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType:
	default:
		if manifest.MIMETypeIsMultiImage(m.MediaType) {
			return fail("it is a manifest list (%s); cosign writes a single image manifest", m.MediaType)
		}
		return fail("its media type is %q; cosign writes an OCI image manifest", m.MediaType)
	}
	parsed, err := manifest.FromBlob(m.Bytes, m.MediaType)
	if err != nil {
		return fail("%v", err)
	}
	layers := parsed.LayerInfos()
	if len(layers) == 0 || len(layers) > MaxSigstoreLayers {
		return fail("it has %d layers; cosign writes 1 to %d (mirror.MaxSigstoreLayers)", len(layers), MaxSigstoreLayers)
	}
	if cfg := parsed.ConfigInfo(); cfg.Size < 0 || cfg.Size > MaxSigstoreBlobSize {
		return fail("its config %s is %d bytes, more than the %d allowed (mirror.MaxSigstoreBlobSize)", cfg.Digest, cfg.Size, MaxSigstoreBlobSize)
	}
	for _, l := range layers {
		if l.MediaType != MediaTypeCosignPayload {
			return fail("layer %s has media type %q, not %s", l.Digest, l.MediaType, MediaTypeCosignPayload)
		}
		if l.Size < 0 || l.Size > MaxSigstoreBlobSize {
			return fail("layer %s is %d bytes, more than the %d allowed (mirror.MaxSigstoreBlobSize)", l.Digest, l.Size, MaxSigstoreBlobSize)
		}
	}
	return nil
}

// reserveManifest counts size more manifest bytes against
// MaxPlanManifestBytes for the image key. Called with w.mu held.
func (w *walk) reserveManifest(key string, size int) error {
	if limit := w.planner.manifestBudget(); w.manifestBytes+int64(size) > limit {
		return &BoundError{Image: key, Bound: "MaxPlanManifestBytes", Limit: limit, Got: w.manifestBytes + int64(size)}
	}
	w.manifestBytes += int64(size)
	return nil
}
