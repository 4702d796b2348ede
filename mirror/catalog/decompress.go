package catalog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// decompress sniffs the stream's magic bytes: gzip and zstd layers are
// decompressed (zstd with at most a zstdWindow-byte window), anything else
// is read as a plain tar. It is the release reader's approach
// (mirror/release), with this package's own bound names.
func decompress(br *bufio.Reader, zstdWindow uint64) (io.Reader, func(), error) {
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
		// Multistream stays on: an eStargz layer is one gzip member per
		// file, and its tar runs on across them.
		return zr, func() { _ = zr.Close() }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// The window is bounded twice: MaxMemory is what klauspost checks
		// a single-segment frame's content size against.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdWindow), zstd.WithDecoderMaxMemory(zstdWindow))
		if err != nil {
			return nil, nil, fmt.Errorf("reading zstd layer: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// inflateBudget counts what the layers of one image inflate to, and the
// entries their tars hold.
type inflateBudget struct {
	limits   limits
	inflated int64
	entries  int64
}

// reader returns r (one layer, inflated) counted against MaxInflatedBytes
// and MaxZstdWindow.
func (b *inflateBudget) reader(r io.Reader) io.Reader { return &countingReader{r: r, budget: b} }

// entry counts one more tar entry against MaxTarEntries.
func (b *inflateBudget) entry() error {
	b.entries++
	if b.entries > b.limits.tarEntries {
		return &BoundError{Bound: "MaxTarEntries", Limit: b.limits.tarEntries}
	}
	return nil
}

type countingReader struct {
	r      io.Reader
	budget *inflateBudget
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.budget.inflated += int64(n)
	if c.budget.inflated > c.budget.limits.inflatedBytes {
		return n, &BoundError{Bound: "MaxInflatedBytes", Limit: c.budget.limits.inflatedBytes}
	}
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		err = fmt.Errorf("%w (%w)", &BoundError{Bound: "MaxZstdWindow", Limit: int64(c.budget.limits.zstdWindow)}, err)
	}
	return n, err
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
