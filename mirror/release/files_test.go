package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

type entry struct {
	name string
	body string
	typ  byte // tar.TypeReg when zero
}

type compression int

const (
	plain compression = iota
	gzipped
	zstded
)

func layer(t *testing.T, c compression, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: e.typ}
		if e.typ == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag == tar.TypeSymlink {
			hdr.Size, hdr.Linkname = 0, "elsewhere"
		}
		if hdr.Typeflag == tar.TypeDir {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	switch c {
	case gzipped:
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(buf.Bytes())
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return z.Bytes()
	case zstded:
		zw, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer zw.Close()
		return zw.EncodeAll(buf.Bytes(), nil)
	}
	return buf.Bytes()
}

// openers returns LayerOpeners for the layers and a count of opens per layer.
func openers(layers ...[]byte) ([]LayerOpener, []int) {
	opened := make([]int, len(layers))
	out := make([]LayerOpener, len(layers))
	for i, l := range layers {
		out[i] = func(context.Context) (io.ReadCloser, error) {
			opened[i]++
			return io.NopCloser(bytes.NewReader(l)), nil
		}
	}
	return out, opened
}

const (
	refsV1 = "refs-1"
	refsV2 = "refs-2"
	metaV1 = "meta-1"
)

func TestReadFiles(t *testing.T) {
	base := layer(t, gzipped, entry{name: "usr/bin/true", body: "elf"})
	for _, tc := range []struct {
		name       string
		layers     [][]byte
		refs, meta string
		notOpened  []int // layers that must not be read
	}{
		{
			name: "one gzip layer, ./ prefix",
			layers: [][]byte{base, layer(t, gzipped,
				entry{name: "./release-manifests/", typ: tar.TypeDir},
				entry{name: "./release-manifests/image-references", body: refsV1},
				entry{name: "./release-manifests/release-metadata", body: metaV1})},
			refs: refsV1, meta: metaV1, notOpened: []int{0},
		},
		{
			name: "plain tar",
			layers: [][]byte{layer(t, plain,
				entry{name: "release-manifests/release-metadata", body: metaV1},
				entry{name: "release-manifests/image-references", body: refsV1})},
			refs: refsV1, meta: metaV1,
		},
		{
			name: "zstd",
			layers: [][]byte{layer(t, zstded,
				entry{name: "/release-manifests/release-metadata", body: metaV1},
				entry{name: "/release-manifests/image-references", body: refsV1})},
			refs: refsV1, meta: metaV1,
		},
		{
			name: "upper layer wins, split across layers",
			layers: [][]byte{
				base,
				layer(t, gzipped,
					entry{name: "release-manifests/image-references", body: refsV1},
					entry{name: "release-manifests/release-metadata", body: metaV1}),
				layer(t, gzipped, entry{name: "release-manifests/image-references", body: refsV2}),
			},
			refs: refsV2, meta: metaV1, notOpened: []int{0},
		},
		{
			name: "empty layers are fine",
			layers: [][]byte{
				layer(t, gzipped,
					entry{name: "release-manifests/image-references", body: refsV1},
					entry{name: "release-manifests/release-metadata", body: metaV1}),
				layer(t, gzipped),
			},
			refs: refsV1, meta: metaV1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, opened := openers(tc.layers...)
			files, err := ReadFiles(t.Context(), ls)
			if err != nil {
				t.Fatal(err)
			}
			if string(files.ImageReferences) != tc.refs || string(files.Metadata) != tc.meta {
				t.Errorf("got %q, %q; want %q, %q", files.ImageReferences, files.Metadata, tc.refs, tc.meta)
			}
			for _, i := range tc.notOpened {
				if opened[i] != 0 {
					t.Errorf("layer %d was read after both files were found", i)
				}
			}
		})
	}
}

func TestReadFilesErrors(t *testing.T) {
	full := layer(t, gzipped,
		entry{name: "release-manifests/image-references", body: refsV1},
		entry{name: "release-manifests/release-metadata", body: metaV1})
	for _, tc := range []struct {
		name   string
		layers [][]byte
		msg    string
	}{
		{"absent", [][]byte{layer(t, gzipped, entry{name: "etc/os-release", body: "x"})},
			"release-manifests/image-references and release-manifests/release-metadata not found"},
		{"metadata absent", [][]byte{layer(t, plain, entry{name: "release-manifests/image-references", body: "x"})},
			"release-manifests/release-metadata not found"},
		{"whiteout of a file", [][]byte{full, layer(t, plain, entry{name: "release-manifests/.wh.release-metadata"})},
			"release-manifests/release-metadata not found"},
		{"whiteout of the directory", [][]byte{full, layer(t, plain, entry{name: ".wh.release-manifests"})},
			"image-references and release-manifests/release-metadata not found"},
		{"opaque directory", [][]byte{full, layer(t, plain,
			entry{name: "release-manifests/.wh..wh..opq"},
			entry{name: "release-manifests/image-references", body: refsV2})},
			"release-manifests/release-metadata not found"},
		{"symlink", [][]byte{layer(t, plain, entry{name: "release-manifests/image-references", typ: tar.TypeSymlink})},
			"not a regular file"},
		{"too big", [][]byte{layer(t, plain, entry{name: "release-manifests/release-metadata", body: strings.Repeat("x", MaxMetadataSize+1)})},
			"more than"},
		{"corrupt gzip", [][]byte{append([]byte{0x1f, 0x8b}, "garbage"...)}, "layer 1 of 1"},
		{"truncated tar", [][]byte{full[:len(full)/2]}, "layer 1 of 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, _ := openers(tc.layers...)
			_, err := ReadFiles(t.Context(), ls)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error = %v, want it to contain %q", err, tc.msg)
			}
		})
	}
}

// failAtEOF stands for a verifying reader: the content, then an error
// instead of io.EOF.
type failAtEOF struct {
	r   io.Reader
	err error
}

func (f failAtEOF) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		err = f.err
	}
	return n, err
}

func TestReadFilesReadsLayersToTheEnd(t *testing.T) {
	mismatch := errors.New("digest mismatch")
	for _, c := range []compression{plain, gzipped, zstded} {
		l := layer(t, c,
			entry{name: "release-manifests/image-references", body: refsV1},
			entry{name: "release-manifests/release-metadata", body: metaV1},
			entry{name: "usr/share/doc/big", body: strings.Repeat("x", 100000)})
		open := func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(failAtEOF{bytes.NewReader(l), mismatch}), nil
		}
		if _, err := ReadFiles(t.Context(), []LayerOpener{open}); !errors.Is(err, mismatch) {
			t.Errorf("compression %d: a layer failing verification at its end gave %v", c, err)
		}
	}
}

func TestReadFilesOpenErrorAndCancel(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadFiles(t.Context(), []LayerOpener{func(context.Context) (io.ReadCloser, error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Errorf("open error not wrapped: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ls, _ := openers(layer(t, plain, entry{name: "a", body: "b"}))
	_, err = ReadFiles(ctx, ls)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v", err)
	}
}
