package graphdata

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	cimage "go.podman.io/image/v5/image"
	"go.podman.io/image/v5/types"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// The image, pushed to a real registry as the caller will (base layer,
// new blobs, manifest), reads back through containers/image, which checks
// the config against its digest and parses it as a runtime would.
func TestBuildImagePushedReadsBack(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	c := testbed.NewClient(reg.Host)
	ctx := context.Background()
	sys := &types.SystemContext{DockerInsecureSkipTLSVerify: types.OptionalBoolTrue} // plain HTTP to the in-process registry
	d := fixtureData(t)
	for name, docker := range map[string]bool{"oci": false, "docker": true} {
		t.Run(name, func(t *testing.T) {
			base, baseLayer := testBase(t, docker)
			img, err := BuildImage(base, d)
			if err != nil {
				t.Fatal(err)
			}
			repo := "ferry/graph-image-" + name
			for _, blob := range append([][]byte{baseLayer}, img.Blobs[0].Data, img.Blobs[1].Data) {
				if _, err := c.PushBlob(ctx, repo, blob); err != nil {
					t.Fatal(err)
				}
			}
			pushed, err := c.PushManifest(ctx, repo, "latest", img.MediaType, img.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			if pushed != img.Digest {
				t.Fatalf("the registry stored %s, BuildImage said %s", pushed, img.Digest)
			}
			config := readBack(ctx, t, sys, reg.Host+"/"+repo+"@"+img.Digest.String())
			if !slices.Equal(config.Config.Cmd, wantCmd) || len(config.Config.Entrypoint) != 0 || len(config.RootFS.DiffIDs) != 2 {
				t.Fatalf("config as read back: Cmd %q, Entrypoint %q, %d diff IDs", config.Config.Cmd, config.Config.Entrypoint, len(config.RootFS.DiffIDs))
			}
			served, err := c.GetBlob(ctx, repo, img.Blobs[1].Digest)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(served))
			if err != nil {
				t.Fatal(err)
			}
			tarBytes, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if digest.FromBytes(tarBytes) != config.RootFS.DiffIDs[1] {
				t.Errorf("the served layer unpacks to %s, the config says %s", digest.FromBytes(tarBytes), config.RootFS.DiffIDs[1])
			}
		})
	}
}

// readBack reads the image at ref with containers/image and returns its
// config, converted to OCI.
func readBack(ctx context.Context, t *testing.T, sys *types.SystemContext, ref string) *imgspecv1.Image {
	t.Helper()
	r, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	src, err := r.NewImageSource(ctx, sys)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	defer func() { _ = src.Close() }()
	img, err := cimage.FromUnparsedImage(ctx, sys, cimage.UnparsedInstance(src, nil))
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	config, err := img.OCIConfig(ctx)
	if err != nil {
		t.Fatalf("%s config: %v", ref, err)
	}
	if infos := img.LayerInfos(); len(infos) != 2 {
		t.Fatalf("%s: %d layers", ref, len(infos))
	}
	return config
}
