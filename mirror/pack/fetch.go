package pack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/registry"
)

// copyBufferSize is each worker's buffer: large enough for few syscalls,
// small enough that memory does not grow with Options.Parallel. The
// workers pass Parallel buffers around instead of allocating one per
// blob: a fresh megabyte is page faults (dear on a virtual machine) each
// time the Go runtime has handed freed memory back.
const copyBufferSize = 1 << 20

// fetchBlobs reserves every blob's place in the bundle, then fills the
// reservations concurrently, straight from the registry.
func (p *writer) fetchBlobs(ctx context.Context, w *bundle.Writer) error {
	slots := make([]*bundle.Slot, len(p.blobs))
	for i, b := range p.blobs {
		s, err := w.Reserve(bundle.BlobName(b.Digest), b.Size, b.Digest.Encoded())
		if err != nil {
			return err
		}
		slots[i] = s
	}
	progress := p.opts.Progress
	if progress == nil {
		progress = mirror.NoProgress
	}
	p.countCached(progress)
	owners := mirror.BlobOwners(blobOwners(p.plan.Images))
	phase := progress.Phase("fetch blobs", BlobBytes(p.blobs), len(p.blobs))
	defer phase.End()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Parallel)
	bufs := make(chan []byte, p.opts.Parallel)
	for range p.opts.Parallel {
		bufs <- make([]byte, copyBufferSize)
	}
	for i, b := range p.blobs {
		g.Go(func() error {
			buf := <-bufs
			defer func() { bufs <- buf }()
			item := phase.Item(mirror.ItemName(owners[b.Digest], b.Digest), b.Size)
			err := p.fetchBlob(ctx, b, slots[i], item, buf)
			item.Done(err)
			return err
		})
	}
	return g.Wait()
}

// fetchBlob fills one reservation through buf, from the cache when it
// holds the blob, retrying transient registry failures from the start of
// the blob.
func (p *writer) fetchBlob(ctx context.Context, b *mirror.Blob, slot *bundle.Slot, item mirror.ItemProgress, buf []byte) error {
	if p.opts.CacheDir != "" && p.fromCache(b, slot, item, buf) {
		return nil
	}
	return registry.Do(ctx, p.opts.Retry, "fetch blob "+b.Digest.String(), func(ctx context.Context) error {
		slot.Reset()
		item.Reset()
		rc, err := p.plan.OpenBlob(ctx, b)
		if err != nil {
			return settled{err} // OpenBlob has retried already
		}
		defer rc.Close()
		dst, finishCache := p.cacheWriter(b, slot)
		if _, err := io.CopyBuffer(counting{dst, item}, rc, buf); err != nil {
			finishCache(false)
			return fmt.Errorf("fetch blob %s from %s: %w", b.Digest, b.Repository, err)
		}
		if err := slot.Commit(); err != nil {
			finishCache(false)
			return fmt.Errorf("blob %s from %s: %w", b.Digest, b.Repository, err)
		}
		finishCache(true)
		return nil
	})
}

// blobOwners are the plan's images as progress lines name their blobs.
func blobOwners(images []*mirror.Image) []mirror.BlobOwner {
	owners := make([]mirror.BlobOwner, 0, len(images))
	for _, img := range images {
		owners = append(owners, mirror.BlobOwner{Name: mirror.OwnerName(img.Repository, img.Tags),
			Digest: img.Digest, Children: img.Children, Blobs: img.Blobs})
	}
	return owners
}

// countCached shows, as a step, how many of the blobs to carry the cache
// holds: those are copied from disk rather than fetched.
func (p *writer) countCached(progress mirror.Progress) {
	if p.opts.CacheDir == "" {
		return
	}
	step := mirror.BeginStep(progress, fmt.Sprintf("looking up %d blobs in the cache", len(p.blobs)))
	cached := 0
	for _, b := range p.blobs {
		if fi, err := os.Stat(p.cachePath(b.Digest)); err == nil && fi.Size() == b.Size {
			cached++
		}
	}
	step.Done(fmt.Sprintf("%d of them cached", cached), nil)
}

// settled is an error already retried as often as it should be: it hides
// the cause's chain from registry.Do so the retries do not multiply.
type settled struct{ err error }

func (s settled) Error() string { return s.err.Error() }

// Is keeps an interruption recognisable as one.
func (s settled) Is(target error) bool {
	return (target == context.Canceled || target == context.DeadlineExceeded) && errors.Is(s.err, target)
}

// cachePath is where the cache keeps the blob of digest d.
func (p *writer) cachePath(d digest.Digest) string {
	return filepath.Join(p.opts.CacheDir, string(d.Algorithm()), d.Encoded())
}

// fromCache fills slot from the cache; a missing or corrupt entry returns
// false (and a corrupt one is removed).
func (p *writer) fromCache(b *mirror.Blob, slot *bundle.Slot, item mirror.ItemProgress, buf []byte) bool {
	f, err := os.Open(p.cachePath(b.Digest))
	if err != nil {
		return false
	}
	defer f.Close()
	slot.Reset()
	// Hiding f's WriteTo makes the copy use buf, not a 32 KiB buffer of
	// its own.
	if _, err := io.CopyBuffer(counting{slot, item}, struct{ io.Reader }{f}, buf); err == nil {
		if err := slot.Commit(); err == nil {
			return true
		}
	}
	p.log.Warn("cached blob is corrupt; fetching it again", "blob", b.Digest)
	_ = os.Remove(f.Name())
	slot.Reset()
	item.Reset()
	return false
}

// cacheWriter tees the download into a temporary cache file; finish(true)
// publishes it once the digest has been checked.
func (p *writer) cacheWriter(b *mirror.Blob, slot *bundle.Slot) (io.Writer, func(ok bool)) {
	if p.opts.CacheDir == "" {
		return slot, func(bool) {}
	}
	final := p.cachePath(b.Digest)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		p.log.Warn("cache disabled for blob", "blob", b.Digest, "error", err)
		return slot, func(bool) {}
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), ".partial-")
	if err != nil {
		p.log.Warn("cache disabled for blob", "blob", b.Digest, "error", err)
		return slot, func(bool) {}
	}
	return io.MultiWriter(slot, tmp), func(ok bool) {
		closeErr := tmp.Close()
		// CreateTemp makes 0600; cached blobs are as readable as the bundle.
		if ok && closeErr == nil && os.Chmod(tmp.Name(), 0o644) == nil && os.Rename(tmp.Name(), final) == nil {
			return
		}
		_ = os.Remove(tmp.Name())
	}
}

// counting reports what passes through w to a progress item.
type counting struct {
	w    io.Writer
	item mirror.ItemProgress
}

func (c counting) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.item.Add(n)
	return n, err
}
