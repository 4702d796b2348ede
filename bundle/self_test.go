package bundle

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestSelfBinaryOpensVolumeZero: ferry's own binary lands in volume 0 even
// when blobs go to data volumes, executable, and verifies like any file.
func TestSelfBinaryOpensVolumeZero(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.tar")
	fx := newFixture(7, [4]int{100 << 10, 90 << 10, 60 << 10, 120 << 10})
	self := bytes.Repeat([]byte("\x7fELF pretend binary "), 4096)
	fx.large[SelfName] = self
	idx := writeFixture(t, path, WriteOptions{VolumeSize: 128 << 10}, fx)
	if len(idx.Volumes) < 2 {
		t.Fatalf("want data volumes, got %d", len(idx.Volumes))
	}
	for _, f := range idx.Files {
		if f.Name == SelfName && f.Volume != 0 {
			t.Errorf("%s is in volume %d, want 0", SelfName, f.Volume)
		}
	}
	rep, err := openVerify(t, path, ReadOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("no %s entry in volume 0", SelfName)
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != SelfName {
			continue
		}
		got, _ := io.ReadAll(tr)
		if hdr.Mode != 0o755 || !bytes.Equal(got, self) {
			t.Errorf("%s: mode %o, %d bytes; want 0755 and the binary", SelfName, hdr.Mode, len(got))
		}
		return
	}
}
