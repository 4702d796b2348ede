package registry

import (
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
)

// NewVerifyingReader returns a reader of r that counts and hashes what passes
// and, instead of io.EOF, fails with an error wrapping ErrDigestMismatch when
// the content is not exactly size bytes (unless size < 0) with digest d. It
// also fails as soon as more than size bytes arrive. Nothing read from it
// should be trusted until it has returned io.EOF.
func NewVerifyingReader(r io.Reader, d digest.Digest, size int64) io.Reader {
	return newVerifyingReader(r, d, size)
}

type verifyingReader struct {
	r    io.Reader
	want digest.Digest
	size int64
	hash hash.Hash
	n    int64
	err  error // sticky: the first failure, or io.EOF once verified
}

func newVerifyingReader(r io.Reader, d digest.Digest, size int64) *verifyingReader {
	v := &verifyingReader{r: r, want: d, size: size}
	if err := d.Validate(); err != nil {
		v.err = fmt.Errorf("invalid digest %q: %w", d, err)
	} else {
		v.hash = d.Algorithm().Hash()
	}
	return v
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.hash.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.err = fmt.Errorf("%w: %s: more than the expected %d bytes", ErrDigestMismatch, v.want, v.size)
		return n, v.err
	}
	if errors.Is(err, io.EOF) {
		switch got := digest.NewDigest(v.want.Algorithm(), v.hash); {
		case v.size >= 0 && v.n != v.size:
			v.err = fmt.Errorf("%w: %s: got %d bytes, expected %d", ErrDigestMismatch, v.want, v.n, v.size)
		case got != v.want:
			v.err = fmt.Errorf("%w: expected %s, content has %s", ErrDigestMismatch, v.want, got)
		default:
			v.err = io.EOF
		}
		return n, v.err
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

// failed returns the reader's own verification failure, if any.
func (v *verifyingReader) failed() error {
	if v.err != nil && errors.Is(v.err, ErrDigestMismatch) {
		return v.err
	}
	return nil
}
