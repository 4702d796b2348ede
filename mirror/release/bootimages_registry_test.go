package release_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/release"
)

// readPushedFiles reads the release files of the image manifest dgst in
// repo, its layers fetched from the registry and checked against their
// digests.
func readPushedFiles(t *testing.T, c *testbed.Client, repo string, dgst digest.Digest) *release.Files {
	t.Helper()
	data, _, err := c.GetManifest(t.Context(), repo, dgst.String())
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	var layers []release.LayerOpener
	for _, l := range m.Layers {
		layers = append(layers, func(ctx context.Context) (io.ReadCloser, error) {
			blob, err := c.GetBlob(ctx, repo, l.Digest)
			return io.NopCloser(bytes.NewReader(blob)), err
		})
	}
	files, err := release.ReadFiles(t.Context(), layers)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkPushed asserts that k names kv, which the registry serves under
// that digest and tag.
func checkPushed(t *testing.T, c *testbed.Client, host string, k *release.KubeVirtContainer, kv testbed.KubeVirtContainer) {
	t.Helper()
	if k.Digest != kv.Digest || k.Repository != host+"/"+kv.Repository || k.Tag != kv.Tag || k.Image != kv.Image || k.DigestRef != kv.DigestRef {
		t.Fatalf("%s: got %+v, pushed %+v", kv.Arch, *k, kv)
	}
	if k.PullSpec() != kv.DigestRef {
		t.Errorf("%s: pull spec %s, want %s", kv.Arch, k.PullSpec(), kv.DigestRef)
	}
	for _, ref := range []string{k.Digest.String(), k.Tag} {
		data, _, err := c.GetManifest(t.Context(), kv.Repository, ref)
		if err != nil {
			t.Fatalf("%s: %s: %v", kv.Arch, ref, err)
		}
		if digest.FromBytes(data) != k.Digest {
			t.Errorf("%s: %s serves %s, the stream names %s", kv.Arch, ref, digest.FromBytes(data), k.Digest)
		}
	}
}

// TestKubeVirtContainerOfPushedRelease reads the coreos-bootimages
// manifest the test bed ships out of a pushed release's layers, and finds
// the container it pushed, by digest.
func TestKubeVirtContainerOfPushedRelease(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	c := testbed.NewClient(reg.Host)
	rel := testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Components: 2, KubeVirtContainer: true, Sigstore: true})
	if len(rel.KubeVirt) != 1 || rel.KubeVirt[0].Arch != release.ArchX86_64 {
		t.Fatalf("pushed %+v", rel.KubeVirt)
	}
	kv := rel.KubeVirt[0]
	if len(kv.SigTags) != 1 {
		t.Errorf("signed release, kubevirt container signatures %v", kv.SigTags)
	}

	files := readPushedFiles(t, c, rel.Repository, rel.Digest)
	if !bytes.Equal(files.CoreOSBootImages, rel.CoreOSBootImages) {
		t.Fatalf("read %d bytes of coreos-bootimages, the release has %d", len(files.CoreOSBootImages), len(rel.CoreOSBootImages))
	}
	k, err := files.KubeVirtContainer(rel.Arch)
	if err != nil {
		t.Fatal(err)
	}
	checkPushed(t, c, reg.Host, k, kv)
	// The stream lists every arch, as a real one does; this release has a
	// container for its own only.
	if _, err := files.KubeVirtContainer(release.ArchAarch64); !errors.Is(err, release.ErrNoKubeVirtContainer) {
		t.Errorf("aarch64: %v", err)
	}

	plain := testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Version: "4.15.1", Components: 2})
	if _, err := readPushedFiles(t, c, plain.Repository, plain.Digest).KubeVirtContainer(plain.Arch); !errors.Is(err, release.ErrNoBootImages) {
		t.Errorf("release without the option: %v", err)
	}
}

// TestKubeVirtContainersOfPushedMultiRelease: each arch's release image
// of a multi release carries the same manifest, naming a container per arch.
func TestKubeVirtContainersOfPushedMultiRelease(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	c := testbed.NewClient(reg.Host)
	rel := testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Components: 2, Multi: true, OCI: true, KubeVirtContainer: true})
	if len(rel.KubeVirt) != 2 || rel.KubeVirt[0].Digest == rel.KubeVirt[1].Digest {
		t.Fatalf("pushed %+v", rel.KubeVirt)
	}
	var index ocispec.Index
	if err := json.Unmarshal(rel.Manifest, &index); err != nil {
		t.Fatal(err)
	}
	for _, child := range index.Manifests {
		files := readPushedFiles(t, c, rel.Repository, child.Digest)
		bi, err := files.BootImages()
		if err != nil {
			t.Fatal(err)
		}
		all, err := bi.KubeVirtContainers()
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(rel.KubeVirt) {
			t.Fatalf("%d containers named, %d pushed", len(all), len(rel.KubeVirt))
		}
		for i, kv := range rel.KubeVirt {
			checkPushed(t, c, reg.Host, &all[i], kv)
		}
		arch, err := release.NormalizeArch(child.Platform.Architecture)
		if err != nil {
			t.Fatal(err)
		}
		k, err := files.KubeVirtContainer(arch)
		if err != nil || k.Arch != arch {
			t.Errorf("child %s: %+v, %v", arch, k, err)
		}
	}
}
