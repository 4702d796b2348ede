package testbed

import (
	"bytes"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestBuildReleaseKubeVirtContainer(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	c := NewClient(reg.Host)
	opts := ReleaseOptions{Components: 2, Multi: true, Arches: []string{"amd64", "s390x"}, KubeVirtContainer: true}
	rel := BuildRelease(t, reg.Host, opts)

	idx := decode[ocispec.Index](t, rel.Manifest)
	child, _ := mustManifest(t, c, rel.Repository, idx.Manifests[0].Digest.String())
	files := releaseFiles(t, c, rel.Repository, child)
	if got := files[CoreOSBootImagesFile]; got == nil || !bytes.Equal(got, rel.CoreOSBootImages) {
		t.Fatalf("top layer holds %d bytes of %s, Release.CoreOSBootImages %d", len(got), CoreOSBootImagesFile, len(rel.CoreOSBootImages))
	}
	checkImageReferences(t, rel, files)

	var arches []string
	for _, kv := range rel.KubeVirt {
		arches = append(arches, kv.Arch)
		m, _ := mustManifest(t, c, kv.Repository, kv.Tag)
		im := decode[ocispec.Manifest](t, m)
		config, err := c.GetBlob(t.Context(), kv.Repository, im.Config.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg := decode[ocispec.Image](t, config)
		if goArch, _ := goArch(kv.Arch); cfg.Architecture != goArch || len(im.Layers) != 1 {
			t.Errorf("%s: config for %s, %d layers", kv.Arch, cfg.Architecture, len(im.Layers))
		}
		for _, want := range []string{`"image": "` + kv.Image + `"`, `"digest-ref": "` + kv.DigestRef + `"`} {
			if !strings.Contains(string(rel.CoreOSBootImages), want) {
				t.Errorf("the stream does not name %s", want)
			}
		}
		if _, ok := rel.Image(kv.Digest); ok {
			t.Errorf("%s: the kubevirt container is in Release.Images", kv.Arch)
		}
	}
	if got := strings.Join(arches, ","); got != "x86_64,s390x" {
		t.Errorf("kubevirt containers for %s", got)
	}
	// The stream lists the arches a real one does, with or without a
	// container: aarch64 and ppc64le have none here.
	if n := strings.Count(string(rel.CoreOSBootImages), `"kubevirt": {`); n != 2 {
		t.Errorf("%d kubevirt entries, want 2", n)
	}

	again := BuildRelease(t, NewMemoryRegistry(t).Host, opts)
	for i, kv := range again.KubeVirt {
		if kv.Digest != rel.KubeVirt[i].Digest {
			t.Errorf("%s: %s on another registry, %s here", kv.Arch, kv.Digest, rel.KubeVirt[i].Digest)
		}
	}
}
