package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/internal/regularfile"
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

// TestCheckBundleArgs: a bundle or volume that is not there, or cannot be
// read, fails the operation (1); one that is a directory is a wrong
// argument (2); the message names the path.
func TestCheckBundleArgs(t *testing.T) {
	dir := t.TempDir()
	good := writeTemp(t, "b.tar", []byte("anything: the content is bundle.Open's to judge"))
	unreadable := writeTemp(t, "secret.tar", nil)
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "gone.tar")
	cases := []struct {
		name    string
		bundle  string
		volumes []string
		code    int
		says    string
	}{
		{"a file", good, nil, exitOK, ""},
		{"a missing bundle", gone, nil, exitFailure, "bundle " + gone + ": no such file or directory"},
		{"a missing volume", good, []string{gone}, exitFailure, "volume " + gone + ": no such file or directory"},
		{"a directory", dir, nil, exitUsage, dir + " is a directory, not a bundle file"},
	}
	if os.Geteuid() != 0 { // root reads anything
		cases = append(cases, struct {
			name    string
			bundle  string
			volumes []string
			code    int
			says    string
		}{"an unreadable bundle", unreadable, nil, exitFailure, "bundle " + unreadable + ": permission denied"})
	}
	for _, tc := range cases {
		err := checkBundleArgs(tc.bundle, tc.volumes)
		if exitCode(err) != tc.code || err != nil && !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v (exit %d), want exit %d saying %q", tc.name, err, exitCode(err), tc.code, tc.says)
		}
	}
}

// TestFileArgError: a file named on the command line that cannot be read
// is exit 1; one that is there but wrong is exit 2.
func TestFileArgError(t *testing.T) {
	_, missing := os.Stat(filepath.Join(t.TempDir(), "none"))
	_, kind := regularfile.Open(t.TempDir(), "a keyring file")
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"missing", fmt.Errorf("--keyring: %w", missing), exitFailure},
		{"a directory", fmt.Errorf("--keyring: %w", kind), exitUsage},
		{"does not parse", errors.New("ferry.yaml: line 3: unknown key"), exitUsage},
	} {
		if got := exitCode(fileArgError(tc.err)); got != tc.code {
			t.Errorf("%s (%v): exit %d, want %d", tc.name, tc.err, got, tc.code)
		}
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
