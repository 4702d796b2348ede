package prune

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

const (
	mediaTypeOCI   = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeIndex = "application/vnd.oci.image.index.v1+json"
)

func readOptions(t *testing.T) ReadOptions {
	opts := registry.DefaultOptions()
	opts.TLSVerify = false
	opts.AuthFile = filepath.Join(t.TempDir(), "auth.json") // none: the host's credentials stay out
	opts.Retry.Attempts = 1
	return ReadOptions{Registry: opts}
}

// pushImage pushes a one-layer image (untagged when tag is "") and
// returns its digest and its layer's.
func pushImage(t *testing.T, reg *testbed.Registry, tag, content string) (digest.Digest, digest.Digest) {
	t.Helper()
	ctx := context.Background()
	config, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte(content)
	cfg, err := reg.PushBlob(ctx, "ocp4/openshift4", config)
	if err != nil {
		t.Fatal(err)
	}
	l, err := reg.PushBlob(ctx, "ocp4/openshift4", layer)
	if err != nil {
		t.Fatal(err)
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, mediaTypeOCI, cfg, len(config), l, len(layer)))
	ref := tag
	if ref == "" {
		ref = digest.FromBytes(m).String()
	}
	d, err := reg.PushManifest(ctx, "ocp4/openshift4", ref, mediaTypeOCI, m)
	if err != nil {
		t.Fatal(err)
	}
	return d, l
}

// TestRead: every tag, the manifest it points at, a list's children (not
// tagged themselves) with their blobs and sizes; an unknown repository is
// empty.
func TestRead(t *testing.T) {
	ctx := context.Background()
	reg := testbed.NewRegistry(t)
	child, childLayer := pushImage(t, reg, "", "amd64 release image")
	index := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":1,"platform":{"architecture":"amd64","os":"linux"}}]}`,
		mediaTypeIndex, mediaTypeOCI, child))
	list, err := reg.PushManifest(ctx, "ocp4/openshift4", "4.15.0-multi", mediaTypeIndex, index)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := pushImage(t, reg, "debug-tools", "not ferry's")

	s, err := Read(ctx, reg.Host+"/ocp4/openshift4", readOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tags) != 2 || s.Tags["4.15.0-multi"] != list || s.Tags["debug-tools"] != other {
		t.Errorf("tags %v", s.Tags)
	}
	if m := s.Manifests[list]; m == nil || !m.IsList() || !slices.Equal(m.Children, []digest.Digest{child}) || m.Size != int64(len(index)) {
		t.Errorf("the list: %+v", m)
	}
	m := s.Manifests[child]
	if m == nil || len(m.Blobs) != 2 || m.Blobs[1] != (Blob{Digest: childLayer, Size: int64(len("amd64 release image"))}) {
		t.Errorf("the list's child: %+v", m)
	}
	if len(s.Manifests) != 3 {
		t.Errorf("%d manifests read, want 3", len(s.Manifests))
	}

	empty, err := Read(ctx, reg.Host+"/nothing/here", readOptions(t))
	if err != nil || len(empty.Tags) != 0 {
		t.Errorf("an unknown repository: %v, %v", empty, err)
	}
}

// TestReadBound: a repository whose tags lead to more manifests than the
// bound fails with a ManifestsBoundError instead of growing.
func TestReadBound(t *testing.T) {
	reg := testbed.NewRegistry(t)
	for i := range 3 {
		pushImage(t, reg, fmt.Sprintf("4.15.%d-x86_64", i), fmt.Sprint("layer ", i))
	}
	opts := readOptions(t)
	opts.maxManifests = 2
	_, err := Read(context.Background(), reg.Host+"/ocp4/openshift4", opts)
	var bound *ManifestsBoundError
	if !errors.As(err, &bound) || bound.Limit != 2 {
		t.Errorf("got %v, want a ManifestsBoundError at 2", err)
	}
}
