package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// smallLimits make bombs cheap to build and to detonate: the defences are
// the same code at any size.
var smallLimits = inflateLimits{perLayer: 4 << 20, perImage: 6 << 20, zstdWindow: MaxZstdWindow}

// zeroFileTar is the start of a tar holding one file of size zero bytes
// (name first), up to the end of its header: the rest is size zeros, the
// padding and the end-of-archive blocks, all zeros as well.
func zeroFileTar(t *testing.T, name string, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes() // the header only: the writer is never closed
}

// gzipBomb is a self-consistent gzip layer: a tar of head then one file of
// size zeros, as gzip members of zeros repeated (gzip readers join
// members), so that a few KB inflate to size bytes.
func gzipBomb(t *testing.T, head []byte, size int64) []byte {
	t.Helper()
	const chunk = 1 << 20
	member := func(data []byte) []byte {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		zw.Write(data)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return z.Bytes()
	}
	tail := size + int64(tarPadding(size)) + 1024 // data, padding, end of archive
	out := member(head)
	zeros := member(make([]byte, chunk))
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
	tail := size + int64(tarPadding(size)) + 1024
	out := zw.EncodeAll(head, nil)
	zeros := zw.EncodeAll(make([]byte, chunk), nil)
	for ; tail >= chunk; tail -= chunk {
		out = append(out, zeros...)
	}
	return zw.EncodeAll(make([]byte, tail), out)
}

func tarPadding(size int64) int { return int((512 - size%512) % 512) }

// inflated is what a layer inflates to (a valid tar, and what follows it),
// through a decoder with no bound but the zstd window given: the bombs must
// be real layers.
func inflated(t *testing.T, data []byte, window uint64) int64 {
	t.Helper()
	var r io.Reader
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	} else {
		zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderMaxWindow(window), zstd.WithDecoderMaxMemory(window))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	var n int64
	counted := &countReader{r: r, n: &n}
	tr := tar.NewReader(counted)
	for {
		if _, err := tr.Next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("the bomb is not a valid layer: %v", err)
		}
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		t.Fatalf("the bomb is not a valid layer: %v", err)
	}
	return n
}

// countingOpener opens data and counts the bytes read from it.
func countingOpener(data []byte, read *int64) LayerOpener {
	return func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(&countReader{r: bytes.NewReader(data), n: read}), nil
	}
}

type countReader struct {
	r io.Reader
	n *int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

func wantBound(t *testing.T, err error, bound string, limit int64) {
	t.Helper()
	be, ok := errors.AsType[*InflateBoundError](err)
	if !ok || be.Bound != bound || be.Limit != limit {
		t.Fatalf("error = %v, want an *InflateBoundError for %s (%d)", err, bound, limit)
	}
}

// TestReadFilesBombs: gzip and zstd layers of a few KB that inflate past
// the per-layer bound stop at it with an *InflateBoundError, and so does an
// image whose layers pass the per-layer bound one by one but not together.
func TestReadFilesBombs(t *testing.T) {
	size := smallLimits.perLayer + 1<<20
	head := zeroFileTar(t, "release-manifests/0000_bomb.yaml", size)
	for name, bomb := range map[string][]byte{"gzip": gzipBomb(t, head, size), "zstd": zstdBomb(t, head, size)} {
		t.Run(name, func(t *testing.T) {
			if n := inflated(t, bomb, MaxZstdWindow); n < size || int64(len(bomb)) > size/100 {
				t.Fatalf("%d bytes inflate to %d: not a bomb", len(bomb), n)
			}
			var read int64
			_, err := readFiles(t.Context(), []LayerOpener{countingOpener(bomb, &read)}, smallLimits)
			wantBound(t, err, "MaxInflatedPerLayer", smallLimits.perLayer)
			if want := "layer 1 of 1"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("error %q does not say %q", err, want)
			}
		})
	}
	t.Run("per image", func(t *testing.T) {
		// Each layer stays under the per-layer bound; three do not fit
		// in the per-image one.
		size := smallLimits.perLayer - 1<<20
		layer := gzipBomb(t, zeroFileTar(t, "usr/share/filler", size), size)
		ls := []LayerOpener{}
		var read int64
		for range 3 {
			ls = append(ls, countingOpener(layer, &read))
		}
		_, err := readFiles(t.Context(), ls, smallLimits)
		wantBound(t, err, "MaxInflatedPerImage", smallLimits.perImage)
		if want := "layer 1 of 3"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not say %q", err, want)
		}
	})
}

// TestReadFilesStopsInflating: once both files are read, the rest of the
// layer is not inflated (a bomb after them does no harm), yet every
// compressed byte of it is still read, for the opener to verify.
func TestReadFilesStopsInflating(t *testing.T) {
	var head bytes.Buffer
	tw := tar.NewWriter(&head)
	for _, e := range []entry{
		{name: ImageReferencesPath, body: refsV1},
		{name: MetadataPath, body: metaV1},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Flush()
	size := 4 * smallLimits.perLayer
	head.Write(zeroFileTar(t, "usr/share/bomb", size))
	for name, layer := range map[string][]byte{"gzip": gzipBomb(t, head.Bytes(), size), "zstd": zstdBomb(t, head.Bytes(), size)} {
		t.Run(name, func(t *testing.T) {
			var read int64
			files, err := readFiles(t.Context(), []LayerOpener{countingOpener(layer, &read)}, smallLimits)
			if err != nil {
				t.Fatal(err)
			}
			if string(files.ImageReferences) != refsV1 || string(files.Metadata) != metaV1 {
				t.Errorf("got %q, %q", files.ImageReferences, files.Metadata)
			}
			if read != int64(len(layer)) {
				t.Errorf("read %d of the layer's %d compressed bytes", read, len(layer))
			}
		})
	}
}

// zstdRawFrame is a valid zstd frame holding data in raw blocks, with the
// frame header given: what a hostile encoder may declare.
func zstdRawFrame(header []byte, data []byte) []byte {
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
		out = append(out, bh[:3]...)
		out = append(out, data[:n]...)
		data = data[n:]
		if last == 1 {
			return out
		}
	}
}

// TestReadFilesZstdWindow: a zstd frame that asks for a window past
// MaxZstdWindow is refused before anything is allocated for it, though
// it is a valid layer holding both files; so is a single-segment frame
// whose declared content size (its window) is past the bound.
func TestReadFilesZstdWindow(t *testing.T) {
	tarData := layer(t, plain,
		entry{name: ImageReferencesPath, body: refsV1},
		entry{name: MetadataPath, body: metaV1})
	// Frame header descriptor 0: a window descriptor follows, no content
	// size, no checksum. Window descriptor: exponent 20, so 2^30 bytes.
	hugeWindow := zstdRawFrame([]byte{0x00, 20 << 3}, tarData)
	if n := inflated(t, hugeWindow, 1<<30); n != int64(len(tarData)) {
		t.Fatalf("the frame inflates to %d bytes, want the tar's %d", n, len(tarData))
	}
	// Single segment with an 8-byte content size: the window is the
	// content, the tar and then just over MaxZstdWindow of zeros as RLE
	// blocks.
	const content = MaxZstdWindow + 128<<10
	hdr := []byte{0xe0} // FCS field 8 bytes, single segment
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(tarData)+content))
	frame := zstdRawFrame(hdr, tarData)
	frame[len(frame)-(len(tarData)%(128<<10))-3] &^= 1 // the raw block is no longer the last
	for left := content; left > 0; left -= 128 << 10 {
		last := 0
		if left <= 128<<10 {
			last = 1
		}
		var bh [4]byte
		binary.LittleEndian.PutUint32(bh[:], uint32((128<<10)<<3|1<<1|last)) // RLE
		frame = append(frame, bh[0], bh[1], bh[2], 0)
	}
	if n := inflated(t, frame, 1<<30); n != int64(len(tarData)+content) {
		t.Fatalf("the single-segment frame inflates to %d bytes, want %d", n, len(tarData)+content)
	}
	for name, layer := range map[string][]byte{"window descriptor": hugeWindow, "single segment": frame} {
		t.Run(name, func(t *testing.T) {
			ls, _ := openers(layer)
			_, err := ReadFiles(t.Context(), ls)
			wantBound(t, err, "MaxZstdWindow", MaxZstdWindow)
		})
	}
}
