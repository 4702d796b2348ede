package release

import (
	"os"
	"strings"
	"testing"

	"go.podman.io/image/v5/docker/reference"
)

func FuzzParseImageReferences(f *testing.F) {
	if data, err := os.ReadFile("testdata/image-references.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0",
		tagJSON("etcd", "DockerImage", "quay.io/x/y@sha256:"+hexA))))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := ParseImageReferences(data)
		if err != nil {
			return
		}
		if ValidateVersion(refs.Version) != nil || len(refs.Components) == 0 {
			t.Fatalf("accepted %+v", refs)
		}
		seen := map[string]bool{}
		for _, c := range refs.Components {
			_, perr := reference.ParseNormalizedNamed(c.Image)
			if seen[c.Name] || perr != nil || c.Digest.Validate() != nil ||
				c.Image != c.Repository+"@"+c.Digest.String() || strings.Contains(c.Repository, "@") {
				t.Fatalf("accepted bad component %+v", c)
			}
			seen[c.Name] = true
		}
	})
}

func FuzzParseMetadata(f *testing.F) {
	if data, err := os.ReadFile("testdata/release-metadata.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"kind":"cincinnati-metadata-v0","version":"4.15.0-rc.1","next":["4.15.0"],"metadata":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetadata(data)
		if err != nil {
			return
		}
		if m.Kind != MetadataKind || ValidateVersion(m.Version) != nil {
			t.Fatalf("accepted %+v", m)
		}
	})
}
