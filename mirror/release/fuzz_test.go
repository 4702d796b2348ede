package release

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
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

// fuzzLimits keep each input cheap: a bomb stops after a few MB.
var fuzzLimits = inflateLimits{perLayer: 2 << 20, perImage: 3 << 20, zstdWindow: 8 << 20}

// FuzzReadFiles reads two layers (top first) as they come off the wire:
// plain, gzip or zstd, as the magic bytes say. Whatever they hold, reading
// ends without a panic, within the bounds, and a success returns both
// files within their size bounds, from layers read to their last byte.
func FuzzReadFiles(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, top, lower []byte) {
		var read [2]int64
		opened := [2]bool{}
		layer := func(i int, data []byte) LayerOpener {
			return func(context.Context) (io.ReadCloser, error) {
				opened[i] = true
				return io.NopCloser(&countReader{r: strings.NewReader(string(data)), n: &read[i]}), nil
			}
		}
		files, err := readFiles(t.Context(), []LayerOpener{layer(1, lower), layer(0, top)}, fuzzLimits)
		if err != nil {
			if be, ok := errors.AsType[*InflateBoundError](err); ok && be.Limit <= 0 {
				t.Fatalf("bound error without a limit: %v", err)
			}
			return
		}
		if files.ImageReferences == nil || files.Metadata == nil ||
			len(files.ImageReferences) > MaxImageReferencesSize || len(files.Metadata) > MaxMetadataSize {
			t.Fatalf("accepted %d and %d bytes", len(files.ImageReferences), len(files.Metadata))
		}
		if len(files.CoreOSBootImages) > MaxCoreOSBootImagesSize {
			t.Fatalf("kept %d bytes of coreos-bootimages", len(files.CoreOSBootImages))
		}
		for i, data := range [][]byte{top, lower} {
			if opened[i] && read[i] != int64(len(data)) {
				t.Fatalf("layer %d: read %d of its %d bytes", i, read[i], len(data))
			}
		}
	})
}

// FuzzKubeVirtContainer parses a coreos-bootimages manifest and asks it for
// every architecture's KubeVirt container. Whatever the file, nothing
// panics, and what is returned is a pull spec ferry can copy: a normalized
// repository with a tag or a sha256 digest, for the arch asked.
func FuzzKubeVirtContainer(f *testing.F) {
	f.Add(realBootImages(f))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: coreos-bootimages, namespace: openshift-machine-config-operator}\n" +
		`data: {stream: '{"architectures":{"x86_64":{"images":{"kubevirt":{"image":"q.io/r:t","digest-ref":"q.io/r@sha256:` + hexA + `"}}}}}'}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		bi, err := ParseBootImages(data)
		if err != nil {
			return
		}
		if len(data) > MaxCoreOSBootImagesSize {
			t.Fatalf("accepted %d bytes", len(data))
		}
		for _, arch := range Arches() {
			k, err := bi.KubeVirtContainer(arch)
			if err != nil {
				continue
			}
			if arch == ArchMulti || k.Arch != arch || k.Tag == "" && k.Digest == "" ||
				k.Digest != "" && (k.Digest.Algorithm() != digest.SHA256 || k.Digest.Validate() != nil) {
				t.Fatalf("%s: accepted %+v", arch, *k)
			}
			named, err := reference.ParseNormalizedNamed(k.PullSpec())
			if err != nil || reference.TrimNamed(named).String() != k.Repository {
				t.Fatalf("%s: pull spec %q of %+v: %v", arch, k.PullSpec(), *k, err)
			}
		}
	})
}
