package registry

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// newCountedDestination is a Destination on repo of a fresh registry
// behind a counting proxy.
func newCountedDestination(t *testing.T, repo string) (*Client, *Destination, *testbed.CountingProxy, *testbed.Registry) {
	t.Helper()
	reg := testbed.NewMemoryRegistry(t)
	p := testbed.NewCountingProxy(t, reg.URL)
	c := New(testOptions(t, nil))
	dst, err := c.Destination(ctxT(t), p.Host+"/"+repo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return c, dst, p, reg
}

// TestUploadRequests: a small blob goes up in a POST and a PUT carrying
// it, without an existence check of its own (HasBlob is the caller's);
// one of unknown size, or larger than MonolithicUploadMax, goes chunked.
func TestUploadRequests(t *testing.T) {
	ctx := ctxT(t)
	_, dst, p, reg := newCountedDestination(t, "mirror/small")
	small := bytes.Repeat([]byte("s"), 64<<10)
	d := digest.FromBytes(small)
	if err := dst.PutBlob(ctx, bytes.NewReader(small), d, int64(len(small))); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Uploads(), (testbed.Uploads{Posts: 1, Puts: 1}); got != want {
		t.Errorf("small blob: %+v, want %+v", got, want)
	}

	p.Reset()
	unsized := []byte("a blob of unknown size")
	dl := digest.FromBytes(unsized)
	if err := dst.PutVerifiedBlob(ctx, bytes.NewReader(unsized), dl, -1); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Uploads(), (testbed.Uploads{Posts: 1, Patches: 1, Puts: 1}); got != want {
		t.Errorf("blob of unknown size: %+v, want %+v", got, want)
	}
	for size, want := range map[int64]bool{0: true, MonolithicUploadMax: true, MonolithicUploadMax + 1: false, -1: false} {
		if got := dst.h.monolithic(size); got != want {
			t.Errorf("a blob of %d bytes monolithic: %v, want %v", size, got, want)
		}
	}
	for _, b := range []digest.Digest{d, dl} {
		if ok, err := reg.BlobExists(ctx, "mirror/small", b); err != nil || !ok {
			t.Errorf("blob %s in the registry: %v %v", b, ok, err)
		}
	}
}

// TestUploadChunkedFallback: a registry that refuses the blob in the PUT
// that completes an upload gets it chunked. A rewindable body is sent
// again at once; a plain reader fails with a transient error, and the
// caller's next try goes chunked from the start. Content that does not
// match its digest still fails, and is not taken for a refusal.
func TestUploadChunkedFallback(t *testing.T) {
	ctx := ctxT(t)
	_, dst, p, reg := newCountedDestination(t, "mirror/chunked")
	p.RefuseMonolithic(http.StatusBadRequest)

	plain := []byte("sent by a plain reader")
	dp := digest.FromBytes(plain)
	err := dst.PutBlob(ctx, io.MultiReader(bytes.NewReader(plain)), dp, int64(len(plain)))
	if err == nil || !IsTransient(err) || !strings.Contains(err.Error(), "monolithic") {
		t.Fatalf("plain reader to a chunked-only registry: %v, want a transient refusal", err)
	}
	if err := dst.PutBlob(ctx, io.MultiReader(bytes.NewReader(plain)), dp, int64(len(plain))); err != nil {
		t.Fatalf("plain reader, tried again: %v", err)
	}

	_, dst2, p2, reg2 := newCountedDestination(t, "mirror/chunked")
	p2.RefuseMonolithic(http.StatusRequestedRangeNotSatisfiable)
	data := []byte("sent by a bytes.Reader")
	d := digest.FromBytes(data)
	if err := dst2.PutBlob(ctx, bytes.NewReader(data), d, int64(len(data))); err != nil {
		t.Fatalf("rewindable reader to a chunked-only registry: %v", err)
	}
	if got, want := p2.Uploads(), (testbed.Uploads{Posts: 2, Patches: 1, Puts: 2}); got != want {
		t.Errorf("refused, then chunked: %+v, want %+v", got, want)
	}
	other := []byte("the next blob")
	p2.Reset()
	if err := dst2.PutBlob(ctx, bytes.NewReader(other), digest.FromBytes(other), int64(len(other))); err != nil {
		t.Fatal(err)
	}
	if got, want := p2.Uploads(), (testbed.Uploads{Posts: 1, Patches: 1, Puts: 1}); got != want {
		t.Errorf("after a refusal: %+v, want %+v (chunked at once)", got, want)
	}
	for _, c := range []struct {
		reg  *testbed.Registry
		blob digest.Digest
	}{{reg, dp}, {reg2, d}, {reg2, digest.FromBytes(other)}} {
		if got, err := c.reg.GetBlob(ctx, "mirror/chunked", c.blob); err != nil || digest.FromBytes(got) != c.blob {
			t.Errorf("blob %s read back: %v", c.blob, err)
		}
	}

	// Wrong content, verified by the registry alone: refused for what it
	// is, a digest mismatch, not sent again chunked.
	_, dst3, p3, _ := newCountedDestination(t, "mirror/wrong")
	err = dst3.PutVerifiedBlob(ctx, bytes.NewReader([]byte("other bytes")), d, int64(len("other bytes")))
	if err == nil || IsTransient(err) {
		t.Fatalf("wrong content: %v, want a lasting failure", err)
	}
	if got := p3.Uploads(); got.Patches != 0 || got.Puts != 1 {
		t.Errorf("wrong content: %+v, want one monolithic PUT, no chunked retry", got)
	}
}

// TestUploadMounts: a blob this Client pushed to one repository of a
// registry is mounted into another, not sent again.
func TestUploadMounts(t *testing.T) {
	ctx := ctxT(t)
	c, first, p, reg := newCountedDestination(t, "mirror/first")
	data := bytes.Repeat([]byte("m"), 32<<10)
	d := digest.FromBytes(data)
	if err := first.PutBlob(ctx, bytes.NewReader(data), d, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	second, err := c.Destination(ctx, p.Host+"/mirror/second")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	p.Reset()
	// A reader that fails if read: a mount sends no byte.
	if err := second.PutBlob(ctx, failingSeeker{}, d, int64(len(data))); err != nil {
		t.Fatalf("mount: %v", err)
	}
	if got, want := p.Uploads(), (testbed.Uploads{Posts: 1}); got != want {
		t.Errorf("mount: %+v, want %+v", got, want)
	}
	if got, err := reg.GetBlob(ctx, "mirror/second", d); err != nil || !bytes.Equal(got, data) {
		t.Errorf("mounted blob read back: %v", err)
	}
}

// failingSeeker is a body that must not be read.
type failingSeeker struct{}

func (failingSeeker) Read([]byte) (int, error)       { return 0, io.ErrClosedPipe }
func (failingSeeker) Seek(int64, int) (int64, error) { return 0, nil }
