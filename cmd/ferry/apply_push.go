package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/trust"
)

// pusher copies a verified bundle into one target repository: blobs, then
// manifests (children before lists), then tags, so that no tag ever names
// an image whose parts are missing.
type pusher struct {
	env *environment
	r   *bundle.Reader
	// images are the proven images: the only ones pushed, with the only
	// tags written (trust.Check).
	images   []trust.Image
	client   *registry.Client
	target   string
	parallel int
	quiet    bool
	dryRun   bool
}

// pushBlob is a config or layer to push, with its size in the bundle.
type pushBlob struct {
	digest digest.Digest
	size   int64
}

func (p *pusher) push(ctx context.Context, sum *applySummary) (err error) {
	blobs, err := p.blobs()
	if err != nil {
		return err
	}
	order := manifestOrder(p.images)
	dest, err := p.client.Destination(ctx, p.target)
	if err != nil {
		return fmt.Errorf("open %s: %w", p.target, err)
	}
	defer closeInto(&err, dest, p.target)
	if err := p.checkPrerequisites(ctx, dest, sum); err != nil {
		return err
	}
	if p.dryRun {
		return p.plan(ctx, dest, blobs, order, sum)
	}
	if err := p.pushBlobs(ctx, dest, blobs, sum); err != nil {
		return err
	}
	for _, img := range order {
		data, err := p.r.ReadImageManifest(img.Digest)
		if err != nil {
			return err
		}
		if err := dest.PutManifest(ctx, data, img.Digest); err != nil {
			return err
		}
		sum.Manifests++
	}
	for _, img := range order {
		if len(img.Tags) == 0 {
			continue
		}
		data, err := p.r.ReadImageManifest(img.Digest)
		if err != nil {
			return err
		}
		for _, tag := range img.Tags {
			if err := dest.Tag(ctx, tag, data); err != nil {
				return err
			}
			sum.Tags++
		}
	}
	return nil
}

// blobs are the configs and layers the proven images reference, once
// each, but for prerequisites: those the target holds already.
func (p *pusher) blobs() ([]pushBlob, error) {
	seen := map[digest.Digest]bool{}
	for _, pr := range p.r.Index().Prerequisites {
		seen[pr.Digest] = true
	}
	var out []pushBlob
	for _, img := range p.images {
		for _, d := range img.Blobs {
			if seen[d] {
				continue
			}
			seen[d] = true
			_, size, err := p.r.Blob(d)
			if err != nil {
				return nil, err
			}
			out = append(out, pushBlob{d, size})
		}
	}
	return out, nil
}

// checkPrerequisites makes sure the target holds every blob an incremental
// bundle left out, before anything is pushed; it names the missing ones.
func (p *pusher) checkPrerequisites(ctx context.Context, dest *registry.Destination, sum *applySummary) error {
	prereqs := p.r.Index().Prerequisites
	if len(prereqs) == 0 {
		return nil
	}
	var mu sync.Mutex
	var missing []digest.Digest
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.parallel)
	for _, pr := range prereqs {
		g.Go(func() error {
			has, err := dest.HasBlob(gctx, pr.Digest, pr.Size)
			if err != nil {
				return fmt.Errorf("checking prerequisite %s: %w", pr.Digest, err)
			}
			if !has {
				mu.Lock()
				missing = append(missing, pr.Digest)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return verificationError(fmt.Errorf("%s lacks %d of the bundle's %d prerequisites (blobs it left out because the mirror held them): %s; "+
			"nothing was pushed: apply a bundle that carries them first, or pack one without --since",
			p.target, len(missing), len(prereqs), missingSummary(missing)))
	}
	sum.Prerequisites = len(prereqs)
	return nil
}

// manifestOrder lists each manifest once, every single-image manifest
// before any manifest list, so children land before the lists naming them.
func manifestOrder(images []trust.Image) []trust.Image {
	seen := map[digest.Digest]int{}
	var singles, lists []trust.Image
	for _, img := range images {
		if i, ok := seen[img.Digest]; ok {
			// The same manifest from two sources: merge the tags.
			if manifest.MIMETypeIsMultiImage(img.MediaType) {
				lists[i].Tags = append(lists[i].Tags, img.Tags...)
			} else {
				singles[i].Tags = append(singles[i].Tags, img.Tags...)
			}
			continue
		}
		img.Tags = append([]string(nil), img.Tags...)
		if manifest.MIMETypeIsMultiImage(img.MediaType) {
			seen[img.Digest] = len(lists)
			lists = append(lists, img)
		} else {
			seen[img.Digest] = len(singles)
			singles = append(singles, img)
		}
	}
	return append(singles, lists...)
}

func (p *pusher) pushBlobs(ctx context.Context, dest *registry.Destination, blobs []pushBlob, sum *applySummary) error {
	var total int64
	for _, b := range blobs {
		total += b.size
	}
	prog := newProgress(p.env, p.quiet, "push", total, len(blobs))
	defer prog.finish()
	var pushed, skipped atomic.Int64
	var bytesPushed atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(p.parallel)
	for _, b := range blobs {
		g.Go(func() error {
			line := prog.item(shortDigest(b.digest), b.size)
			has, err := dest.HasBlob(ctx, b.digest, b.size)
			if err != nil {
				line.done(err)
				return err
			}
			if has {
				line.add(int(b.size))
				line.done(nil)
				skipped.Add(1)
				return nil
			}
			sr, _, err := p.r.Blob(b.digest)
			if err == nil {
				// Verified moments ago by the bundle check; the registry
				// checks the digest again before the blob is visible.
				err = dest.PutVerifiedBlob(ctx, &seekableProgress{sr: sr, item: line}, b.digest, b.size)
			}
			line.done(err)
			if err != nil {
				return err
			}
			pushed.Add(1)
			bytesPushed.Add(b.size)
			return nil
		})
	}
	err := g.Wait()
	sum.BlobsPushed, sum.BlobsSkipped, sum.BytesPushed = int(pushed.Load()), int(skipped.Load()), bytesPushed.Load()
	return err
}

// plan is --dry-run: which blobs the target lacks, and what would follow.
func (p *pusher) plan(ctx context.Context, dest *registry.Destination, blobs []pushBlob, order []trust.Image, sum *applySummary) error {
	for _, b := range blobs {
		has, err := dest.HasBlob(ctx, b.digest, b.size)
		if err != nil {
			return err
		}
		if !has {
			sum.WouldPush++
			sum.WouldPushSize += b.size
		}
	}
	for _, img := range order {
		sum.Manifests++
		sum.Tags += len(img.Tags)
	}
	return nil
}

// seekableProgress counts bytes read for the progress display and stays
// seekable, so that a failed upload can be rewound and retried.
type seekableProgress struct {
	sr   *io.SectionReader
	item progressItem
}

func (s *seekableProgress) Read(b []byte) (int, error) {
	n, err := s.sr.Read(b)
	s.item.add(n)
	return n, err
}

func (s *seekableProgress) Seek(off int64, whence int) (int64, error) {
	s.item.reset()
	return s.sr.Seek(off, whence)
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
