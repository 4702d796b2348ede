package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/mirror/registry"
)

// jsonObject is a JSON object whose members are kept as read, so that a
// rewrite keeps every field ferry does not know (annotations, subject,
// artifactType, fields of later specs) without listing them.
type jsonObject map[string]json.RawMessage

func parseObject(data []byte) (jsonObject, error) {
	var o jsonObject
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, errors.New("null, not a JSON object")
	}
	return o, nil
}

// get decodes member key into v and reports whether it was there (a null
// member counts as absent).
func (o jsonObject) get(key string, v any) (bool, error) {
	raw, ok := o[key]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("field %q: %w", key, err)
	}
	return true, nil
}

// require is get for a member that must be there.
func require(o jsonObject, key string, v any) error {
	ok, err := o.get(key, v)
	if err == nil && !ok {
		err = fmt.Errorf("no field %q", key)
	}
	return err
}

func (o jsonObject) set(key string, v any) error {
	raw, err := marshalJSON(v)
	if err != nil {
		return fmt.Errorf("field %q: %w", key, err)
	}
	o[key] = raw
	return nil
}

// marshalJSON encodes v compactly, without escaping <, > and & as the
// standard encoder does, so that labels and commands read as they were
// written. Object members come out sorted by name: the same input gives
// the same bytes.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// layerMediaType is the media type of the new layer in a manifest of
// manifestType: Docker's in a Docker schema 2 manifest, OCI's otherwise.
func layerMediaType(manifestType string) string {
	if manifestType == manifest.DockerV2Schema2MediaType {
		return manifest.DockerV2Schema2LayerMediaType
	}
	return imgspecv1.MediaTypeImageLayerGzip
}

// imageManifest is a platform image's manifest, parsed so that every
// field survives.
type imageManifest struct {
	mediaType string
	obj       jsonObject
	config    jsonObject
	layers    []json.RawMessage
}

func parseManifestJSON(img PlatformImage) (*imageManifest, error) {
	obj, err := parseObject(img.Manifest)
	if err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	m := &imageManifest{mediaType: img.MediaType, obj: obj}
	if err := require(obj, "config", &m.config); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if _, err := obj.get("layers", &m.layers); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if len(m.layers)+1 > MaxImageLayers {
		return nil, fmt.Errorf("manifest has %d layers, one more is %w", len(m.layers),
			&BoundError{Bound: "MaxImageLayers", Limit: MaxImageLayers})
	}
	return m, nil
}

func (m *imageManifest) layerCount() int { return len(m.layers) }

func (m *imageManifest) configDigest() string {
	var d string
	_, _ = m.config.get("digest", &d)
	return d
}

func (m *imageManifest) configMediaType() string {
	var mt string
	_, _ = m.config.get("mediaType", &mt)
	return mt
}

// rebuilt is the manifest naming config in place of the source's, and the
// source's layers followed by layer.
func (m *imageManifest) rebuilt(config NewBlob, layer *fbcLayer) ([]byte, error) {
	cfg := maps.Clone(m.config)
	delete(cfg, "data") // embedded bytes of the old config
	if err := setDescriptor(cfg, config.Digest, int64(len(config.Data))); err != nil {
		return nil, err
	}
	desc, err := marshalJSON(imgspecv1.Descriptor{
		MediaType: layerMediaType(m.mediaType), Digest: layer.digest, Size: int64(len(layer.data)),
	})
	if err != nil {
		return nil, err
	}
	obj := maps.Clone(m.obj)
	if err := obj.set("config", cfg); err != nil {
		return nil, err
	}
	if err := obj.set("layers", append(append([]json.RawMessage{}, m.layers...), desc)); err != nil {
		return nil, err
	}
	return marshalManifest(obj)
}

func setDescriptor(desc jsonObject, d digest.Digest, size int64) error {
	if err := desc.set("digest", d); err != nil {
		return err
	}
	return desc.set("size", size)
}

// marshalManifest encodes a manifest or index, which a registry must
// accept: no larger than registry.MaxManifestSize.
func marshalManifest(obj jsonObject) ([]byte, error) {
	data, err := marshalJSON(obj)
	if err != nil {
		return nil, err
	}
	if len(data) > registry.MaxManifestSize {
		return nil, fmt.Errorf("rebuilt manifest is %d bytes, more than registry.MaxManifestSize (%d)", len(data), registry.MaxManifestSize)
	}
	return data, nil
}

// rebuildIndex is the source index raw with every platform entry naming
// its rebuilt image (by digest and size) and the attestation entries
// dropped; everything else, platforms and annotations included, kept.
func rebuildIndex(raw []byte, rebuilt map[digest.Digest]RebuiltPlatform) ([]byte, error) {
	obj, err := parseObject(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing index: %w", err)
	}
	var entries []jsonObject
	if _, err := obj.get("manifests", &entries); err != nil {
		return nil, fmt.Errorf("parsing index: %w", err)
	}
	var kept []jsonObject
	for i, e := range entries {
		var d digest.Digest
		var platform *imgspecv1.Platform
		var annotations map[string]string
		_, err := e.get("digest", &d)
		if err == nil {
			_, err = e.get("platform", &platform)
		}
		if err == nil {
			_, err = e.get("annotations", &annotations)
		}
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if isAttestation(annotations, platform) {
			continue
		}
		p, ok := rebuilt[d]
		if !ok {
			return nil, fmt.Errorf("entry %d names %s, which was not read as a platform image", i, d)
		}
		delete(e, "data")
		if err := setDescriptor(e, p.Digest, int64(len(p.Manifest))); err != nil {
			return nil, err
		}
		kept = append(kept, e)
	}
	if len(kept) == 0 {
		return nil, errors.New("index names no platform image")
	}
	if err := obj.set("manifests", kept); err != nil {
		return nil, err
	}
	return marshalManifest(obj)
}
