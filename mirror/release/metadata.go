package release

import (
	"fmt"
)

// MetadataKind is the only release-metadata kind the cluster knows.
const MetadataKind = "cincinnati-metadata-v0"

// Metadata is a release's release-metadata file: the version, the versions it
// can be updated from and to, and free-form string metadata (errata URL,
// architecture).
type Metadata struct {
	Kind     string            `json:"kind"`
	Version  string            `json:"version"`
	Previous []string          `json:"previous,omitempty"`
	Next     []string          `json:"next,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ParseMetadata parses a release-metadata file. Every version in it must be
// a valid version; unknown fields are tolerated (see imageStream).
func ParseMetadata(data []byte) (*Metadata, error) {
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", MetadataPath, MaxMetadataSize)
	}
	var m Metadata
	if err := decodeOne(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", MetadataPath, err)
	}
	if m.Kind != MetadataKind {
		return nil, fmt.Errorf("%s: kind is %q, want %s", MetadataPath, m.Kind, MetadataKind)
	}
	if err := ValidateVersion(m.Version); err != nil {
		return nil, fmt.Errorf("%s: version: %w", MetadataPath, err)
	}
	for _, list := range []struct {
		field string
		vs    []string
	}{{"previous", m.Previous}, {"next", m.Next}} {
		for i, v := range list.vs {
			if err := ValidateVersion(v); err != nil {
				return nil, fmt.Errorf("%s: %s[%d]: %w", MetadataPath, list.field, i, err)
			}
		}
	}
	return &m, nil
}

// CheckVersion fails when image-references and release-metadata name
// different versions: the cluster-version-operator refuses such a release.
func CheckVersion(refs *ImageReferences, meta *Metadata) error {
	if refs.Version != meta.Version {
		return fmt.Errorf("release names two versions: %s says %q, %s says %q",
			ImageReferencesPath, refs.Version, MetadataPath, meta.Version)
	}
	return nil
}
