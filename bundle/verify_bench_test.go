//go:build linux

package bundle

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkVerify verifies a one-volume bundle of 512 MiB of log-normal
// blobs (the writer harness's payload), warm in the page cache: what apply
// pays before it pushes anything. go test -bench Verify -run '^$' ./bundle/
func BenchmarkVerify(b *testing.B) {
	p := newBenchPayload(512 << 20)
	path := filepath.Join(b.TempDir(), "bundle.tar")
	if _, err := p.writeBundleKeep(path); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	for b.Loop() {
		r, err := Open(path, ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rep, err := r.Verify(context.Background(), nil)
		if err != nil || !rep.OK() {
			b.Fatalf("verify: %v %v", err, rep.Err())
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
