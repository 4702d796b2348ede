package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// TestBundleCarriesFerry: by default the bundle carries the binary that
// made it; extracted on the bastion it reports the packer's version.
func TestBundleCarriesFerry(t *testing.T) {
	s := newPackSource(t, testbed.ReleaseOptions{Components: 2})
	dir := t.TempDir()
	bundlePath := filepath.Join(dir, "bundle.tar")
	mustRun(t, nil, s.packArgs(bundlePath)...)
	mustRun(t, nil, "verify", bundlePath, "--keyring", s.keyFile, "--quiet")

	bastion := t.TempDir()
	if out, err := exec.Command("tar", "-xf", bundlePath, "-C", bastion, "ferry").CombinedOutput(); err != nil {
		t.Fatalf("tar -xf bundle.tar ferry: %v\n%s", err, out)
	}
	st, err := os.Stat(filepath.Join(bastion, "ferry"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("extracted ferry: %v, mode %v", err, st.Mode())
	}
	carried, err := exec.Command(filepath.Join(bastion, "ferry"), "version").Output()
	if err != nil {
		t.Fatalf("./ferry version: %v", err)
	}
	packer := mustRun(t, nil, "version").stdout
	if string(carried) != packer {
		t.Errorf("the carried ferry says\n%s\nthe packer says\n%s", carried, packer)
	}

	// --no-self leaves it out.
	lean := filepath.Join(t.TempDir(), "lean.tar")
	mustRun(t, nil, append(s.packArgs(lean), "--no-self")...)
	if out, err := exec.Command("tar", "-tf", lean, "ferry").CombinedOutput(); err == nil {
		t.Errorf("--no-self bundle still lists ferry: %s", out)
	}
}
