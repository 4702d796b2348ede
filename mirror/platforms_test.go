package mirror

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/mirror/registry"
)

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]Platform{"linux/amd64": {"linux", "amd64", ""}, "linux/arm64/v8": {"linux", "arm64", "v8"}} {
		if got, err := ParsePlatform(in); err != nil || got != want || got.String() != in {
			t.Errorf("ParsePlatform(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "amd64", "linux/", "/amd64", "linux/arm64/v8/x", "linux//v8"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) = nil error", bad)
		}
	}
}

// multiArchIndex is an OCI index over amd64, arm64/v8, s390x and a
// buildx attestation (platform unknown/unknown), with an annotation.
func multiArchIndex(t *testing.T) (registry.Manifest, []ocispec.Descriptor) {
	t.Helper()
	var entries []ocispec.Descriptor
	for _, p := range []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "linux", Architecture: "s390x"}, {OS: "unknown", Architecture: "unknown"}} {
		entries = append(entries, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(p.Architecture + p.OS),
			Size: 100, Platform: &p})
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: entries, Annotations: map[string]string{"org.example/kept": "yes"}}
	idx.SchemaVersion = 2
	data, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return registry.Manifest{Repository: "registry.example/tool", Digest: digest.FromBytes(data), MediaType: ocispec.MediaTypeImageIndex, Bytes: data}, entries
}

// TestNarrowList: the narrowed index holds exactly the chosen platforms'
// entries, keeps the index's other fields, and has its own digest.
func TestNarrowList(t *testing.T) {
	m, entries := multiArchIndex(t)
	got, err := narrowList(m, []Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(got.Bytes, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Digest != entries[0].Digest || idx.Manifests[1].Digest != entries[1].Digest {
		t.Errorf("narrowed entries %+v, want amd64 and arm64/v8", idx.Manifests)
	}
	if idx.Annotations["org.example/kept"] != "yes" || idx.MediaType != ocispec.MediaTypeImageIndex || idx.SchemaVersion != 2 {
		t.Errorf("narrowing lost the index's own fields: %s", got.Bytes)
	}
	if got.Digest != digest.FromBytes(got.Bytes) || got.Digest == m.Digest || got.MediaType != m.MediaType {
		t.Errorf("narrowed digest %s of %s (source %s)", got.Digest, got.MediaType, m.Digest)
	}
	again, err := narrowList(m, []Platform{{OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "amd64"}})
	if err != nil || again.Digest != got.Digest {
		t.Errorf("the same platforms in another order narrow to %s (%v), want %s", again.Digest, err, got.Digest)
	}
}

func TestNarrowListRefuses(t *testing.T) {
	m, _ := multiArchIndex(t)
	for what, tc := range map[string]struct {
		m         registry.Manifest
		platforms []Platform
		want      string
	}{
		"a platform the list lacks": {m, []Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "ppc64le"}}, "no linux/ppc64le image"},
		"a variant the list lacks":  {m, []Platform{{OS: "linux", Architecture: "arm64", Variant: "v9"}}, "no linux/arm64/v9 image"},
		"a single image": {registry.Manifest{Digest: digest.FromString("x"), MediaType: ocispec.MediaTypeImageManifest, Bytes: []byte("{}")},
			[]Platform{{OS: "linux", Architecture: "amd64"}}, "single image"},
	} {
		if _, err := narrowList(tc.m, tc.platforms); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", what, err, tc.want)
		}
	}
}
