// Package layerio opens image layers as registries serve them: a tar, plain
// or compressed with gzip or zstd, read under a context. The release and
// catalog readers share it; each keeps its own bounds on what a layer may
// inflate to.
package layerio

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

// Decompress sniffs the stream's magic bytes: gzip and zstd layers are
// decompressed (zstd with at most a zstdWindow-byte window, the memory its
// decoder allocates), anything else is read as a plain tar. The returned
// func releases the decoder.
func Decompress(br *bufio.Reader, zstdWindow uint64) (io.Reader, func(), error) {
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

// WindowExceeded reports whether err is a zstd decoder refusing a frame's
// window or size: the bound Decompress was given.
func WindowExceeded(err error) bool {
	return errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded)
}

// Reader returns r read under ctx: a long layer read stops once ctx is
// cancelled.
func Reader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

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
