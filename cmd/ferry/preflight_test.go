package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror"
)

func TestCheckOutputDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		code int
		says string
	}{
		{dir, exitOK, ""},
		{filepath.Join(dir, "new", "deeper"), exitOK, ""},
		{file, exitUsage, file + " is a regular file, not a directory"},
		{filepath.Join(file, "below"), exitUsage, file + " is a regular file, not a directory"},
	} {
		err := checkOutputDir("--output-dir", tc.dir)
		if exitCode(err) != tc.code || err != nil && !strings.Contains(err.Error(), tc.says) {
			t.Errorf("checkOutputDir(%s): %v (exit %d), want exit %d saying %q", tc.dir, err, exitCode(err), tc.code, tc.says)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Errorf("the check created a directory: %v", err)
	}
}

func TestAbsurdBlob(t *testing.T) {
	layer := digest.FromString("layer")
	img := &mirror.Image{Repository: "quay.io/x/y", Digest: digest.FromString("manifest"), Tags: []string{"sha256-abc.sig"}, Blobs: []digest.Digest{layer}}
	plan := &mirror.Plan{Images: []*mirror.Image{img}}
	fine := []*mirror.Blob{{Digest: layer, Size: absurdBlobSize - 1, MediaType: "application/vnd.oci.image.layer.v1.tar"}}
	if err := absurdBlob(plan, fine); err != nil {
		t.Errorf("a blob just under the bound: %v", err)
	}
	huge := []*mirror.Blob{{Digest: layer, Size: absurdBlobSize, MediaType: "application/vnd.oci.image.layer.v1.tar"}}
	err := absurdBlob(plan, huge)
	want := "the registry declares a 1.0 TiB layer " + layer.String() + " for quay.io/x/y@" + img.Digest.String() + " (sha256-abc.sig): refusing"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a 1 TiB blob: %v, want %q", err, want)
	}
}
