package graphdata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
)

// descriptor is the part of a content descriptor BuildImage reads.
type descriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// baseManifest is a single-image manifest, OCI or Docker schema 2. The
// layers are kept as the base wrote them (annotations, URLs and all).
type baseManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        descriptor        `json:"config"`
	Layers        []json.RawMessage `json:"layers"`
	Subject       json.RawMessage   `json:"subject,omitempty"`
	Annotations   json.RawMessage   `json:"annotations,omitempty"`
}

// parseBaseManifest reads base's manifest strictly and checks that it is
// a container image of one platform.
func parseBaseManifest(base BaseImage) (*baseManifest, error) {
	var declared struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(base.Manifest, &declared); err != nil {
		return nil, err
	}
	mediaType := base.MediaType
	if mediaType == "" {
		mediaType = declared.MediaType
	}
	switch mediaType {
	case imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType:
	case imgspecv1.MediaTypeImageIndex, manifest.DockerV2ListMediaType:
		return nil, fmt.Errorf("%s is a multi-platform image: give the manifest of the platform wanted", mediaType)
	case "":
		return nil, errors.New("no media type given and none in the manifest")
	default:
		return nil, fmt.Errorf("media type %q is not an image manifest (want %s or %s)",
			mediaType, imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType)
	}
	if declared.MediaType != "" && declared.MediaType != mediaType {
		return nil, fmt.Errorf("the manifest says %s, not %s", declared.MediaType, mediaType)
	}
	if mediaType == manifest.DockerV2Schema2MediaType && declared.MediaType == "" {
		return nil, errors.New("a Docker schema 2 manifest without its mediaType")
	}
	var m baseManifest
	dec := json.NewDecoder(bytes.NewReader(base.Manifest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	m.MediaType = mediaType
	switch {
	case m.SchemaVersion != 2:
		return nil, fmt.Errorf("schemaVersion %d, want 2", m.SchemaVersion)
	case m.ArtifactType != "" || len(m.Subject) > 0:
		return nil, errors.New("an artifact (artifactType or subject set), not a container image")
	case m.Config.MediaType != imgspecv1.MediaTypeImageConfig && m.Config.MediaType != manifest.DockerV2Schema2ConfigMediaType:
		return nil, fmt.Errorf("config media type %q is not a container image config", m.Config.MediaType)
	case m.Config.Digest.Validate() != nil:
		return nil, fmt.Errorf("config digest %q: %w", m.Config.Digest, m.Config.Digest.Validate())
	}
	for i, raw := range m.Layers {
		var l descriptor
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("layers[%d]: %w", i, err)
		}
		if err := l.Digest.Validate(); err != nil || l.Size < 0 || l.MediaType == "" {
			return nil, fmt.Errorf("layers[%d]: not a layer descriptor: %s", i, raw)
		}
	}
	return &m, nil
}

// withLayer is the manifest of the graph-data image: m's layers and
// layer, with config.
func (m *baseManifest) withLayer(config, layer NewBlob) ([]byte, error) {
	newLayer, err := json.Marshal(descriptor{MediaType: layer.MediaType, Digest: layer.Digest, Size: int64(len(layer.Data))})
	if err != nil {
		return nil, err
	}
	out := baseManifest{
		SchemaVersion: 2,
		MediaType:     m.MediaType,
		Config:        descriptor{MediaType: config.MediaType, Digest: config.Digest, Size: int64(len(config.Data))},
		Layers:        append(append([]json.RawMessage{}, m.Layers...), newLayer),
	}
	return marshalJSON(out)
}

// marshalJSON encodes v compactly, without escaping <, > and & (which
// would rewrite the base's strings for no reason).
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
