package catalog

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// smallLimits make crafted inputs cheap to build and to refuse: the
// defences are the same code at any size.
var smallLimits = limits{
	fileBytes:     64 << 10,
	catalogBytes:  256 << 10,
	inflatedBytes: 4 << 20,
	tarEntries:    1000,
	files:         100,
	zstdWindow:    MaxZstdWindow,
}

func readSmall(t *testing.T, layers ...[]byte) error {
	t.Helper()
	ls, _ := image(layers...)
	_, err := readFBC(t.Context(), ls, "/configs", smallLimits)
	return err
}

// padded is a valid FBC file of package name, size bytes long.
func padded(name string, size int) string {
	doc := pkg(name)
	return doc + strings.Repeat(" ", size-len(doc))
}

// TestBoundFileBytes: a file of the configs directory larger than the
// bound is refused, named, before it is read; the same file elsewhere in
// the image is streamed past.
func TestBoundFileBytes(t *testing.T) {
	big := padded("a", int(smallLimits.fileBytes)+1)
	err := readSmall(t, gzLayer(t, file("configs/a/catalog.json", big)))
	be := wantBound(t, err, "MaxFileBytes", smallLimits.fileBytes)
	if be.Path != "/configs/a/catalog.json" {
		t.Errorf("bound names %q, want /configs/a/catalog.json", be.Path)
	}
	if err := readSmall(t, gzLayer(t, file("opt/a.json", big), file("configs/b/catalog.json", pkg("b")))); err != nil {
		t.Fatal(err)
	}
	// At the bound, it is read.
	if err := readSmall(t, gzLayer(t, file("configs/a/catalog.json", padded("a", int(smallLimits.fileBytes))))); err != nil {
		t.Fatal(err)
	}
}

// TestBoundCatalogBytes: files each within MaxFileBytes that together
// hold more than MaxCatalogBytes are refused.
func TestBoundCatalogBytes(t *testing.T) {
	var entries []entry
	for i := range 5 {
		name := fmt.Sprintf("p%d", i)
		entries = append(entries, file("configs/"+name+"/catalog.json", padded(name, 60<<10)))
	}
	wantBound(t, readSmall(t, gzLayer(t, entries...)), "MaxCatalogBytes", smallLimits.catalogBytes)
	if err := readSmall(t, gzLayer(t, entries[:4]...)); err != nil {
		t.Fatalf("240 KiB of catalog: %v", err)
	}
}

// zeroFileHeader is the start of a tar holding one file of size zeros
// named name, up to the end of its header: the rest (data, padding, the
// end-of-archive blocks) is all zeros.
func zeroFileHeader(t *testing.T, name string, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes() // the header only: the writer is never closed
}

// zerosAfter is how many zero bytes complete a tar after a file header
// of size: the data, its padding and the end of the archive.
func zerosAfter(size int64) int64 { return size + (512-size%512)%512 + 1024 }

// gzipBomb is a valid gzip layer: head then zeros enough to complete a
// tar holding a file of size zeros, as gzip members of zeros repeated
// (a gzip reader joins members), so that a few KB inflate to size bytes.
func gzipBomb(t *testing.T, head []byte, size int64) []byte {
	t.Helper()
	const chunk = 1 << 20
	member := func(data []byte) []byte {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return z.Bytes()
	}
	out := member(head)
	zeros := member(make([]byte, chunk))
	tail := zerosAfter(size)
	for ; tail >= chunk; tail -= chunk {
		out = append(out, zeros...)
	}
	return append(out, member(make([]byte, tail))...)
}

// zstdBomb is gzipBomb in zstd frames.
func zstdBomb(t *testing.T, head []byte, size int64) []byte {
	t.Helper()
	const chunk = 1 << 20
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	out := zw.EncodeAll(head, nil)
	zeros := zw.EncodeAll(make([]byte, chunk), nil)
	tail := zerosAfter(size)
	for ; tail >= chunk; tail -= chunk {
		out = append(out, zeros...)
	}
	return zw.EncodeAll(make([]byte, tail), out)
}

// inflatesTo checks that layer is a valid tar once inflated, with no bound
// but a generous zstd window, and returns its inflated size.
func inflatesTo(t *testing.T, layer []byte) int64 {
	t.Helper()
	br := bytes.NewReader(layer)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(layer, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case bytes.HasPrefix(layer, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(1<<31), zstd.WithDecoderMaxMemory(1<<31))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	var n int64
	tr := tar.NewReader(io.TeeReader(r, countWriter{&n}))
	for {
		_, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not a valid layer: %v", err)
		}
	}
	return n
}

type countWriter struct{ n *int64 }

func (c countWriter) Write(p []byte) (int, error) { *c.n += int64(len(p)); return len(p), nil }

// TestBoundInflatedBytes: gzip and zstd bombs (a few KB inflating to
// twice the bound, valid layers all the same) are stopped at the bound;
// so are layers each under it that pass it together, and a plain tar,
// whose bytes count as they are.
func TestBoundInflatedBytes(t *testing.T) {
	size := 2 * smallLimits.inflatedBytes
	head := zeroFileHeader(t, "tmp/cache/bomb", size)
	for name, bomb := range map[string][]byte{"gzip": gzipBomb(t, head, size), "zstd": zstdBomb(t, head, size)} {
		t.Run(name, func(t *testing.T) {
			if n := inflatesTo(t, bomb); n < size || int64(len(bomb)) > size/100 {
				t.Fatalf("%d bytes inflate to %d: not a bomb", len(bomb), n)
			}
			ls, ops := image(bomb)
			_, err := readFBC(t.Context(), ls, "/configs", smallLimits)
			wantBound(t, err, "MaxInflatedBytes", smallLimits.inflatedBytes)
			wantErrorContaining(t, err, "layer 1 of 1")
			if !ops[0].closed {
				t.Error("the layer was not closed")
			}
		})
	}
	t.Run("layers together", func(t *testing.T) {
		third := smallLimits.inflatedBytes/2 - 4096
		layer := gzipBomb(t, zeroFileHeader(t, "usr/share/filler", third), third)
		err := readSmall(t, layer, layer, layer)
		wantBound(t, err, "MaxInflatedBytes", smallLimits.inflatedBytes)
		wantErrorContaining(t, err, "layer 1 of 3")
		if err := readSmall(t, layer, gzLayer(t, file("configs/a/catalog.json", pkg("a")))); err != nil {
			t.Fatalf("one such layer: %v", err)
		}
	})
	t.Run("plain", func(t *testing.T) {
		plain := append(zeroFileHeader(t, "usr/share/filler", size), make([]byte, zerosAfter(size))...)
		wantBound(t, readSmall(t, plain), "MaxInflatedBytes", smallLimits.inflatedBytes)
	})
}

// endlessTar is a tar that never ends: one header of an empty file, again
// and again, each a valid entry.
type endlessTar struct {
	header []byte
	off    int
}

func (e *endlessTar) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], e.header[e.off:])
		n += c
		e.off = (e.off + c) % len(e.header)
	}
	return n, nil
}

func (e *endlessTar) Close() error { return nil }

// TestBoundTarEntries: a tar of empty entries that never ends stops at
// MaxTarEntries, long before MaxInflatedBytes; so does a finite one just
// past the bound.
func TestBoundTarEntries(t *testing.T) {
	header := zeroFileHeader(t, "var/empty", 0)
	endless := func(context.Context) (io.ReadCloser, error) { return &endlessTar{header: header}, nil }
	_, err := readFBC(t.Context(), []LayerOpener{endless}, "/configs", smallLimits)
	wantBound(t, err, "MaxTarEntries", smallLimits.tarEntries)

	var entries []entry
	for i := range smallLimits.tarEntries {
		entries = append(entries, file(fmt.Sprintf("usr/share/doc/%d", i), ""))
	}
	err = readSmall(t, gzLayer(t, entries[:smallLimits.tarEntries/2]...), gzLayer(t, append(entries[smallLimits.tarEntries/2:], file("configs/a/catalog.json", pkg("a")))...))
	wantBound(t, err, "MaxTarEntries", smallLimits.tarEntries)
	if err := readSmall(t, gzLayer(t, append(entries[1:], file("configs/a/catalog.json", pkg("a")))...)); err != nil {
		t.Fatalf("%d entries: %v", smallLimits.tarEntries, err)
	}
}

// TestBoundFiles: more entries under the configs directory than MaxFiles
// (empty files, which are valid and hold nothing, or whiteouts) are
// refused.
func TestBoundFiles(t *testing.T) {
	var files, whiteouts []entry
	for i := range smallLimits.files + 1 {
		files = append(files, file(fmt.Sprintf("configs/%d.json", i), ""))
		whiteouts = append(whiteouts, whiteout(fmt.Sprintf("configs/%d.json", i)))
	}
	wantBound(t, readSmall(t, gzLayer(t, files...)), "MaxFiles", smallLimits.files)
	wantBound(t, readSmall(t, gzLayer(t, dir("configs/")), gzLayer(t, whiteouts...)), "MaxFiles", smallLimits.files)
	// 99 files and the configs directory are 100 entries.
	if err := readSmall(t, gzLayer(t, files[:99]...)); err != nil {
		t.Fatalf("99 files: %v", err)
	}
}

// zstdRawFrame is a valid zstd frame holding data in raw blocks, with the
// frame header given: what a hostile encoder may declare.
func zstdRawFrame(header, data []byte) []byte {
	out := append([]byte{0x28, 0xb5, 0x2f, 0xfd}, header...)
	const maxBlock = 128 << 10
	for {
		n := min(len(data), maxBlock)
		last := 0
		if n == len(data) {
			last = 1
		}
		var bh [4]byte
		binary.LittleEndian.PutUint32(bh[:], uint32(n<<3|last)) // block type 0: raw
		out = append(append(out, bh[:3]...), data[:n]...)
		data = data[n:]
		if last == 1 {
			return out
		}
	}
}

// TestBoundZstdWindow: a zstd frame that asks for a window past
// MaxZstdWindow is refused before anything is allocated for it, though it
// is a valid layer holding a valid catalog.
func TestBoundZstdWindow(t *testing.T) {
	tarData := plainTar(t, file("configs/a/catalog.json", pkg("a")))
	// Frame header descriptor 0: a window descriptor follows, no content
	// size, no checksum. Window descriptor: exponent 20, so 2^30 bytes.
	frame := zstdRawFrame([]byte{0x00, 20 << 3}, tarData)
	if n := inflatesTo(t, frame); n != int64(len(tarData)) {
		t.Fatalf("the frame inflates to %d bytes, want %d", n, len(tarData))
	}
	ls, _ := image(frame)
	_, err := ReadFBC(t.Context(), ls, "/configs")
	wantBound(t, err, "MaxZstdWindow", MaxZstdWindow)
	// The same tar with a window within the bound is read.
	ls, _ = image(zstdRawFrame([]byte{0x00, 10 << 3}, tarData))
	cfg, err := ReadFBC(t.Context(), ls, "/configs")
	wantPackages(t, cfg, err, "a")
}
