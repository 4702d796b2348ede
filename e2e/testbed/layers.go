package testbed

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"time"

	"github.com/opencontainers/go-digest"
)

// epoch is the time stamped on everything the test bed makes, so that the
// same options give the same bytes.
var epoch = time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)

// copyBufferSize is the chunk in which random layer data is made and hashed.
const copyBufferSize = 256 << 10

// seedFor derives the ChaCha8 seed of one piece of generated content from
// the release seed and a label naming that piece.
func seedFor(seed int64, parts ...string) [32]byte {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	h.Write([]byte("ferry-testbed\x00"))
	h.Write(b[:])
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// writeRandomLayer writes a gzip'd tar holding one file, name, of size
// random (incompressible) bytes drawn from seed, and returns the digest of
// the tar (the layer's diff ID). The gzip uses stored blocks: a valid stream
// made at memory speed, as compressing random data gains nothing anyway.
func writeRandomLayer(w io.Writer, seed [32]byte, name string, size int64) (digest.Digest, error) {
	zw, err := gzip.NewWriterLevel(w, gzip.NoCompression)
	if err != nil {
		return "", err
	}
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644,
		ModTime: epoch, Format: tar.FormatPAX,
	}); err != nil {
		return "", err
	}
	buf := make([]byte, copyBufferSize)
	if _, err := io.CopyBuffer(tw, io.LimitReader(rand.NewChaCha8(seed), size), buf); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA256, diff), nil
}

// tarFile is one entry of a small generated layer.
type tarFile struct {
	name string
	data []byte // nil for a directory
}

// smallLayer returns a gzip'd (really compressed) tar of files and its diff ID.
func smallLayer(files []tarFile) (gz []byte, diffID digest.Digest, err error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, ModTime: epoch, Format: tar.FormatPAX}
		if f.data == nil {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		} else {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return out.Bytes(), digest.FromBytes(tarBuf.Bytes()), nil
}

// layerFileName is where a random layer's one file sits in its tar.
func layerFileName(label string) string {
	return "opt/testbed/" + sanitize(label) + ".bin"
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}
