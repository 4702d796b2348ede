package testbed

import (
	"testing"
)

// TestGzipBomb: the bomb is small, inflates to what it claims, and its
// diff ID is the digest of that.
func TestGzipBomb(t *testing.T) {
	const size = 8<<20 + 100
	l, err := GzipBomb("big/file", size)
	if err != nil {
		t.Fatal(err)
	}
	d, n, err := inflatedDigest(l.Data)
	if err != nil {
		t.Fatal(err)
	}
	if d != l.DiffID || n < size || n > size+512+1024+512 || len(l.Data) > size/100 {
		t.Errorf("%d bytes inflate to %d with digest %s; diff ID %s", len(l.Data), n, d, l.DiffID)
	}
}
