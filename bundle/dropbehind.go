package bundle

import (
	"errors"
	"os"
	"slices"
	"sync"
)

// A bundle is written once and not read back by the process writing it.
// Left alone, the kernel keeps every page of it in the page cache until
// memory runs short, each page freshly allocated: the copy into the page
// cache then touches as much new memory as the bundle is large, which
// costs several times the copy itself on a virtual machine whose host
// backs guest memory lazily, and grows faster than the bytes once the
// cache pushes other files out. So each slot hands the data it has
// written on for writeback as it goes, and the oldest of it leaves the
// cache once cacheWindow newer bytes wait behind it: the pages are
// reused, and the bundle's cache stays bounded whatever its size.
const (
	// writebackChunk is how much of one entry's data its slot writes
	// before handing it on: each writeback is a long sequential I/O, and
	// a large layer does not sit in the cache whole.
	writebackChunk = 8 << 20
	// cacheWindow is how many handed-on bytes may stay in the page cache
	// before the oldest are waited for and dropped: enough for the disk to
	// work while the next chunks arrive, little next to a bundle.
	cacheWindow = 64 << 20
)

// span is a page-aligned byte range [off, end) of a volume.
type span struct{ off, end int64 }

// cacheDropper keeps the written data of one volume from piling up in
// the page cache. It is safe for concurrent use.
type cacheDropper struct {
	f *os.File

	mu       sync.Mutex
	disabled bool // the file system cannot; nothing is done
	pending  []span
	bytes    int64 // in pending
}

// done hands on s, whose data is written: its writeback starts now, and
// the oldest spans beyond cacheWindow are waited for and dropped from the
// cache. An error means written data may not have reached the disk (and
// a later fsync may not say so again): the volume must not be trusted.
func (c *cacheDropper) done(s span) error {
	c.mu.Lock()
	disabled := c.disabled
	c.mu.Unlock()
	if disabled || s.end <= s.off {
		return nil
	}
	if err := startWriteback(c.f, s.off, s.end-s.off); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			c.mu.Lock()
			c.disabled = true
			c.mu.Unlock()
			return nil
		}
		return err
	}
	c.mu.Lock()
	c.pending = append(c.pending, s)
	c.bytes += s.end - s.off
	n := 0
	for c.bytes > cacheWindow && n < len(c.pending) {
		c.bytes -= c.pending[n].end - c.pending[n].off
		n++
	}
	old := slices.Clone(c.pending[:n])
	c.pending = slices.Delete(c.pending, 0, n)
	c.mu.Unlock()
	for _, o := range old {
		if err := writeBackAndDrop(c.f, o.off, o.end-o.off); err != nil {
			return err
		}
	}
	return nil
}

// pageUp and pageDown round a volume offset to a page boundary: only
// whole pages of an entry's data are handed on, never one it shares with
// a header or a neighbour still being written.
func pageUp(off int64) int64 {
	p := int64(os.Getpagesize())
	return (off + p - 1) / p * p
}

func pageDown(off int64) int64 {
	p := int64(os.Getpagesize())
	return off / p * p
}
