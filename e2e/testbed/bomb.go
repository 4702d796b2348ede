package testbed

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// Layer is a layer blob made outside the builder: its bytes as pushed
// and its diff ID (the digest of the tar they inflate to), for
// ReleaseOptions.ReleaseTopLayer.
type Layer struct {
	Data   []byte
	DiffID digest.Digest
}

// bombChunk is the run of zeros one gzip member of a bomb holds.
const bombChunk = 1 << 20

// GzipBomb is a self-consistent gzip layer of a few hundred KB that
// inflates to a tar of one file, name, of size zeros (plus the tar's
// padding and end blocks): gzip members of zeros, repeated, which every
// gzip reader joins. Its diff ID is computed over all it inflates to.
func GzipBomb(name string, size int64) (Layer, error) {
	var head bytes.Buffer
	tw := tar.NewWriter(&head)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: epoch}); err != nil {
		return Layer{}, err
	}
	// The rest of the tar is zeros: the file, its padding to 512 bytes,
	// and the two end-of-archive blocks.
	zeros := size + (512-size%512)%512 + 1024
	member := func(data []byte) ([]byte, error) {
		var z bytes.Buffer
		zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(data); err != nil {
			return nil, err
		}
		err = zw.Close()
		return z.Bytes(), err
	}
	out, err := member(head.Bytes())
	if err != nil {
		return Layer{}, err
	}
	full, err := member(make([]byte, bombChunk))
	if err != nil {
		return Layer{}, err
	}
	h := sha256.New()
	h.Write(head.Bytes())
	chunk := make([]byte, bombChunk)
	for left := zeros; left > 0; left -= bombChunk {
		n := min(left, bombChunk)
		h.Write(chunk[:n])
		if n == bombChunk {
			out = append(out, full...)
			continue
		}
		last, err := member(chunk[:n])
		if err != nil {
			return Layer{}, err
		}
		out = append(out, last...)
	}
	return Layer{Data: out, DiffID: digest.NewDigest(digest.SHA256, h)}, nil
}

// inflatedDigest is the digest of what gzip data inflates to, for tests of
// the bomb itself.
func inflatedDigest(data []byte) (digest.Digest, int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(h, zr)
	if err != nil {
		return "", n, fmt.Errorf("inflating: %w", err)
	}
	return digest.NewDigest(digest.SHA256, h), n, nil
}
