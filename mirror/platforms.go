package mirror

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/mirror/registry"
)

// Platform is one os/architecture[/variant] an additional image is
// narrowed to.
type Platform struct {
	OS, Architecture, Variant string
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatform reads "os/arch" or "os/arch/variant", as podman's
// --platform takes it.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return Platform{}, fmt.Errorf("platform %q: want os/architecture or os/architecture/variant, such as linux/amd64", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// matches says whether a list entry's platform is p: the same os and
// architecture, and the same variant when p names one.
func (p Platform) matches(os, arch, variant string) bool {
	return p.OS == os && p.Architecture == arch && (p.Variant == "" || p.Variant == variant)
}

// listEntry is the part of a manifest list's entry narrowing reads.
type listEntry struct {
	Platform *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

// narrowList rewrites the manifest list m to hold only the entries of
// platforms, each entry and every other field kept as it was; the result
// is a new list with its own digest. Every platform must match an entry:
// asking for one the list lacks is an error, not a smaller image.
func narrowList(m registry.Manifest, platforms []Platform) (registry.Manifest, error) {
	if !manifest.MIMETypeIsMultiImage(m.MediaType) {
		return registry.Manifest{}, fmt.Errorf("platforms: %s is a single image (%s), not a list to narrow", m.Digest, m.MediaType)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(m.Bytes, &doc); err != nil {
		return registry.Manifest{}, fmt.Errorf("parse manifest list %s: %w", m.Digest, err)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(doc["manifests"], &entries); err != nil {
		return registry.Manifest{}, fmt.Errorf("parse manifest list %s: manifests: %w", m.Digest, err)
	}
	if len(entries) > MaxListChildren {
		return registry.Manifest{}, &BoundError{Image: m.Repository + "@" + m.Digest.String(), Bound: "MaxListChildren", Limit: MaxListChildren, Got: int64(len(entries))}
	}
	kept := []json.RawMessage{}
	found := make([]bool, len(platforms))
	for _, raw := range entries {
		var e listEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return registry.Manifest{}, fmt.Errorf("parse manifest list %s: entry: %w", m.Digest, err)
		}
		if e.Platform == nil {
			continue
		}
		keep := false
		for i, p := range platforms {
			if p.matches(e.Platform.OS, e.Platform.Architecture, e.Platform.Variant) {
				found[i], keep = true, true
			}
		}
		if keep {
			kept = append(kept, raw)
		}
	}
	if i := slices.Index(found, false); i >= 0 {
		return registry.Manifest{}, fmt.Errorf("platforms: the list %s has no %s image", m.Digest, platforms[i])
	}
	list, err := json.Marshal(kept)
	if err != nil {
		return registry.Manifest{}, err
	}
	doc["manifests"] = list
	data, err := json.Marshal(doc)
	if err != nil {
		return registry.Manifest{}, err
	}
	if _, err := manifest.ListFromBlob(data, m.MediaType); err != nil {
		return registry.Manifest{}, fmt.Errorf("narrowed list of %s: %w", m.Digest, err)
	}
	return registry.Manifest{Repository: m.Repository, Digest: digest.FromBytes(data), MediaType: m.MediaType, Bytes: data}, nil
}
