package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// packSource is a signed release in a Debian docker-registry process, whose
// storage the test can reach into.
type packSource struct {
	reg     *testbed.DockerRegistry
	rel     *testbed.Release
	keyFile string
	store   string
}

func newPackSource(t *testing.T, opts testbed.ReleaseOptions) *packSource {
	t.Helper()
	reg := testbed.StartDockerRegistry(t)
	rel := testbed.BuildRelease(t, reg.Host, opts)
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	store.SignRelease(t, key, rel)
	keyFile := filepath.Join(t.TempDir(), "key.asc")
	if err := os.WriteFile(keyFile, key.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return &packSource{reg: reg, rel: rel, keyFile: keyFile, store: store.URL}
}

func (s *packSource) packArgs(out string) []string {
	return []string{"pack", s.rel.PullSpec, "-o", out, "--src-tls-verify=false", "--keyring", s.keyFile,
		"--signature-store", s.store, "--quiet"}
}

// largestBlob is the release's largest layer.
func (s *packSource) largestBlob() (digest.Digest, int64) {
	var best digest.Digest
	var size int64
	for d, n := range s.rel.Blobs {
		if n > size {
			best, size = d, n
		}
	}
	return best, size
}

// TestPackRefusesWrongBlob: the registry serves other bytes under a blob's
// digest; pack fails naming the blob and leaves no bundle.
func TestPackRefusesWrongBlob(t *testing.T) {
	s := newPackSource(t, testbed.ReleaseOptions{Components: 3, LayerSize: 32 << 10})
	d, size := s.largestBlob()
	if err := os.WriteFile(s.reg.BlobPath(d), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res := runFerry(t, nil, s.packArgs(filepath.Join(dir, "bundle.tar"))...)
	if res.code != 1 || !strings.Contains(res.stderr, d.Encoded()) {
		t.Errorf("exit %d (want 1), stderr should name blob %s:\n%s", res.code, d, res.stderr)
	}
	assertNoFiles(t, dir)
}

// TestPackFullDisk: a file-size limit stands in for a full disk; pack fails
// clearly and removes its partial output.
func TestPackFullDisk(t *testing.T) {
	s := newPackSource(t, testbed.ReleaseOptions{Components: 3, LayerSize: 256 << 10})
	dir := t.TempDir()
	// ulimit -f counts 512-byte blocks in dash: 1 MiB, well below the bundle.
	cmd := exec.CommandContext(t.Context(), "sh", append([]string{"-c", `ulimit -f 2048 && exec "$0" "$@"`, ferryBin},
		s.packArgs(filepath.Join(dir, "bundle.tar"))...)...)
	out, err := cmd.CombinedOutput()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != 1 || !strings.Contains(string(out), "file too large") {
		t.Errorf("want exit 1 naming the write failure, got %v:\n%s", err, out)
	}
	assertNoFiles(t, dir)
}

func assertNoFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}
