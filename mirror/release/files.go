package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// LayerOpener opens one layer of an image as the registry serves it (a tar,
// possibly gzip- or zstd-compressed). ReadFiles closes what it opens.
type LayerOpener func(ctx context.Context) (io.ReadCloser, error)

// Files are the raw release-manifests files of a release image.
type Files struct {
	ImageReferences []byte
	Metadata        []byte
}

// Parse parses both files and checks that they name the same version.
func (f *Files) Parse() (*ImageReferences, *Metadata, error) {
	refs, err := ParseImageReferences(f.ImageReferences)
	if err != nil {
		return nil, nil, err
	}
	meta, err := ParseMetadata(f.Metadata)
	if err != nil {
		return nil, nil, err
	}
	if err := CheckVersion(refs, meta); err != nil {
		return nil, nil, err
	}
	return refs, meta, nil
}

// ReadFiles reads image-references and release-metadata out of an image's
// layers, given in manifest order (base first). It reads from the top layer
// down, as the image's filesystem resolves them: the first layer holding a
// file wins, and a whiteout in an upper layer hides the file below it. Once
// both files are found it opens no further layer, so the large base layers
// of a release are normally never fetched.
//
// Every layer it opens is read to its very end, so that an opener which
// verifies what it streams (registry's VerifiedBlob) gets to check the whole
// layer: the files returned come only from layers that passed.
func ReadFiles(ctx context.Context, layers []LayerOpener) (*Files, error) {
	var (
		files  Files
		hidden = map[string]bool{} // whited out by a layer above
	)
	want := func(name string) bool {
		switch name {
		case ImageReferencesPath:
			return files.ImageReferences == nil && !hidden[name]
		case MetadataPath:
			return files.Metadata == nil && !hidden[name]
		}
		return false
	}
	done := func() bool { return !want(ImageReferencesPath) && !want(MetadataPath) }

	for i := len(layers) - 1; i >= 0 && !done(); i-- {
		whiteouts, err := readLayer(ctx, layers[i], want, done, &files)
		if err != nil {
			return nil, fmt.Errorf("reading layer %d of %d: %w", i+1, len(layers), err)
		}
		for _, name := range whiteouts {
			hidden[name] = true
		}
	}
	var missing []string
	if files.ImageReferences == nil {
		missing = append(missing, ImageReferencesPath)
	}
	if files.Metadata == nil {
		missing = append(missing, MetadataPath)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("not a release image: %s not found in its layers", strings.Join(missing, " and "))
	}
	return &files, nil
}

// readLayer scans one layer, storing wanted files into files, and returns the
// wanted names that the layer whites out for the layers below it.
func readLayer(ctx context.Context, open LayerOpener, want func(string) bool, done func() bool, files *Files) (whiteouts []string, err error) {
	rc, err := open(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing layer: %w", cerr)
		}
	}()
	raw := bufio.NewReader(ctxReader{ctx, rc})
	r, closeDecomp, err := decompress(raw)
	if err != nil {
		return nil, err
	}
	defer closeDecomp()

	tr := tar.NewReader(r)
	for !done() {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		name := cleanName(hdr.Name)
		dir, base := path.Split(name)
		if hidden, ok := strings.CutPrefix(base, ".wh."); ok {
			whiteouts = append(whiteouts, whitedOut(dir, hidden)...)
			continue
		}
		if !want(name) {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%s is not a regular file (tar type %q)", name, hdr.Typeflag)
		}
		limit := int64(MaxImageReferencesSize)
		if name == MetadataPath {
			limit = MaxMetadataSize
		}
		if hdr.Size > limit {
			return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", name, hdr.Size, limit)
		}
		data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		if int64(len(data)) != hdr.Size {
			return nil, fmt.Errorf("reading %s: %w", name, io.ErrUnexpectedEOF)
		}
		if name == ImageReferencesPath {
			files.ImageReferences = data
		} else {
			files.Metadata = data
		}
	}
	// Read on to the end: the rest of the tar, the compression trailer, and
	// anything after it, where a verifying reader reports a mismatch.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, fmt.Errorf("reading to the end: %w", err)
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return nil, fmt.Errorf("reading to the end: %w", err)
	}
	return whiteouts, nil
}

// whitedOut returns the wanted files that a whiteout entry ".wh.<hidden>" in
// directory dir hides in lower layers: the file itself or a directory above
// it, or, for the opaque marker ".wh..wh..opq", everything under dir.
func whitedOut(dir, hidden string) []string {
	var out []string
	for _, f := range []string{ImageReferencesPath, MetadataPath} {
		if hidden == ".wh..opq" && strings.HasPrefix(f, dir) ||
			dir+hidden == f || strings.HasPrefix(f, dir+hidden+"/") {
			out = append(out, f)
		}
	}
	return out
}

// cleanName turns a tar entry name into a clean relative path, accepting the
// "./" and "/" prefixes image builders use.
func cleanName(name string) string {
	name = path.Clean("/" + name)
	return strings.TrimPrefix(name, "/")
}

// decompress sniffs the stream's magic bytes: gzip and zstd layers are
// decompressed, anything else is read as a plain tar.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("reading layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("reading gzip layer: %w", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("reading zstd layer: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// ctxReader stops a long layer read when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
