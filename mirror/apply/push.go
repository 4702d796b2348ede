// Package apply puts proven images into a mirror repository and says what
// the cluster needs next. Push copies blobs, then manifests (children
// before lists), then tags, so that no tag ever names an image whose parts
// are missing, from any Source: a verified bundle (ferry apply) or the
// source registries themselves (ferry mirror). It pushes only what it is
// given: deciding what is proven is mirror/trust's part.
package apply

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/fileio"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/trust"
)

// Source serves the manifests and blobs of the images to push.
type Source interface {
	// Manifest returns manifest d's bytes, checked against d.
	Manifest(ctx context.Context, d digest.Digest) ([]byte, error)
	// OpenBlob opens blob d of size bytes. A reader that is an io.Seeker
	// is rewound when an upload is retried; any other is opened again.
	OpenBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error)
	// Verified reports whether every blob it serves has already been
	// checked against its digest (a bundle verified moments before), so
	// that the upload need not hash it a second time.
	Verified() bool
}

// Options tune Push. The zero value pushes one blob at a time, without
// progress.
type Options struct {
	// Parallel bounds the blobs moved at once; below 1 means 1.
	Parallel int
	// DryRun only counts what would be pushed.
	DryRun bool
	// Prerequisites are blobs left out of an incremental bundle: every one
	// must be in the target before anything is pushed.
	Prerequisites []bundle.Prerequisite
	// Retry is the policy for reopening a non-seekable blob stream.
	Retry    registry.RetryPolicy
	Progress mirror.Progress
	// checked says the Prerequisites were checked already (PushAll checks
	// every repository's before pushing anything).
	checked bool
}

// Result counts what Push did (or, with DryRun, would do).
type Result struct {
	BlobsPushed, BlobsSkipped int
	BytesPushed               int64
	Manifests, Tags           int
	// Prerequisites is how many left-out blobs were found in the target.
	Prerequisites int
	// WouldPush and WouldPushBytes are the blobs a dry run found missing.
	WouldPush      int
	WouldPushBytes int64
}

// MissingPrerequisitesError lists the prerequisites the target lacks;
// nothing was pushed.
type MissingPrerequisitesError struct {
	Target  string
	Missing []digest.Digest
	Total   int
}

func (e *MissingPrerequisitesError) Error() string {
	shown := e.Missing
	if len(shown) > 5 {
		shown = shown[:5]
	}
	more := ""
	if len(e.Missing) > len(shown) {
		more = fmt.Sprintf(" and %d more", len(e.Missing)-len(shown))
	}
	return fmt.Sprintf("%s lacks %d of the bundle's %d prerequisites (blobs it left out because the mirror held them): %v%s; nothing was pushed",
		e.Target, len(e.Missing), e.Total, shown, more)
}

// Opener opens the destination repository repo; registry.Client's
// Destination is one.
type Opener func(ctx context.Context, repo string) (*registry.Destination, error)

// PushAll copies images from src into the target repository to and the
// repositories under it their Target names (to + "/" + Target), one
// Push per repository: to's first, then the others in the order of their
// paths. Each prerequisite is checked in the repository its Target names,
// all of them before anything is pushed: a registry finds a blob only in
// the repository a manifest is pushed to. The Result sums them all; on
// error it counts what was done before it.
func PushAll(ctx context.Context, src Source, images []trust.Image, open Opener, to string, opts Options) (*Result, error) {
	groups := map[string][]trust.Image{}
	for _, img := range images {
		groups[img.Target] = append(groups[img.Target], img)
	}
	prereqs := map[string][]bundle.Prerequisite{}
	for _, p := range opts.Prerequisites {
		prereqs[p.Target] = append(prereqs[p.Target], p)
		if _, ok := groups[p.Target]; !ok {
			groups[p.Target] = nil // still checked, as when it has images
		}
	}
	total := &Result{}
	// The target's own are checked by its Push, which comes first; those
	// of the paths under it here, before it.
	for _, target := range slices.Sorted(maps.Keys(prereqs)) {
		if target == "" {
			continue
		}
		if err := checkPrerequisitesIn(ctx, open, MirrorOf(to, target), opts, prereqs[target], total); err != nil {
			return total, err
		}
	}
	for _, target := range slices.Sorted(maps.Keys(groups)) { // "" (to itself) sorts first
		repo, groupOpts := MirrorOf(to, target), opts
		groupOpts.Prerequisites, groupOpts.checked = prereqs[target], target != ""
		res, err := pushTo(ctx, src, groups[target], open, repo, groupOpts)
		total.add(res)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// checkPrerequisitesIn opens repo and checks prereqs there, counting them
// in res.
func checkPrerequisitesIn(ctx context.Context, open Opener, repo string, opts Options, prereqs []bundle.Prerequisite, res *Result) (err error) {
	dest, err := open(ctx, repo)
	if err != nil {
		return fmt.Errorf("open %s: %w", repo, err)
	}
	defer fileio.CloseInto(&err, dest, repo)
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	opts.Prerequisites = prereqs
	return checkPrerequisites(ctx, dest, opts, res)
}

// pushTo opens repo and pushes images into it.
func pushTo(ctx context.Context, src Source, images []trust.Image, open Opener, repo string, opts Options) (res *Result, err error) {
	dest, err := open(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", repo, err)
	}
	defer fileio.CloseInto(&err, dest, repo)
	return Push(ctx, src, images, dest, opts)
}

// add sums o into r; a nil o adds nothing.
func (r *Result) add(o *Result) {
	if o == nil {
		return
	}
	r.BlobsPushed += o.BlobsPushed
	r.BlobsSkipped += o.BlobsSkipped
	r.BytesPushed += o.BytesPushed
	r.Manifests += o.Manifests
	r.Tags += o.Tags
	r.Prerequisites += o.Prerequisites
	r.WouldPush += o.WouldPush
	r.WouldPushBytes += o.WouldPushBytes
}

// Push copies images from src into dest: prerequisites checked, then every
// blob dest lacks, then the manifests byte for byte, then the tags.
func Push(ctx context.Context, src Source, images []trust.Image, dest *registry.Destination, opts Options) (*Result, error) {
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	if opts.Progress == nil {
		opts.Progress = mirror.NoProgress
	}
	res := &Result{}
	if !opts.checked {
		step := stepIf(opts, len(opts.Prerequisites) > 0, fmt.Sprintf("checking %d prerequisites in %s", len(opts.Prerequisites), dest.Repository()))
		err := checkPrerequisites(ctx, dest, opts, res)
		step.Done("all in the target", err)
		if err != nil {
			return res, err
		}
	}
	blobs := blobsOf(images, opts.Prerequisites)
	order := ManifestOrder(images)
	if opts.DryRun {
		return res, plan(ctx, dest, blobs, order, res)
	}
	if err := pushBlobs(ctx, src, dest, blobs, owners(images), opts, res); err != nil {
		return res, err
	}
	step := stepIf(opts, len(order) > 0, fmt.Sprintf("pushing %d manifests", len(order)))
	err := pushManifests(ctx, src, dest, order, opts.Parallel, res)
	step.Done(fmt.Sprintf("%d pushed", res.Manifests), err)
	if err != nil {
		return res, err
	}
	step = stepIf(opts, len(order) > 0, "writing tags")
	err = pushTags(ctx, src, dest, order, opts.Parallel, res)
	step.Done(fmt.Sprintf("%d written", res.Tags), err)
	return res, err
}

// pushManifests pushes every manifest byte for byte, Parallel at once:
// every single-image manifest first, then the lists, so that a registry
// never sees a list before a child it names. Over a slow link one at a
// time would cost a round trip each.
func pushManifests(ctx context.Context, src Source, dest *registry.Destination, order []trust.Image, parallel int, res *Result) error {
	lists := slices.IndexFunc(order, func(img trust.Image) bool { return manifest.MIMETypeIsMultiImage(img.MediaType) })
	if lists < 0 {
		lists = len(order)
	}
	for _, wave := range [][]trust.Image{order[:lists], order[lists:]} {
		done, err := inParallel(ctx, parallel, wave, func(ctx context.Context, img trust.Image) error {
			data, err := src.Manifest(ctx, img.Digest)
			if err != nil {
				return err
			}
			return dest.PutManifest(ctx, data, img.Digest)
		})
		res.Manifests += done
		if err != nil {
			return err
		}
	}
	return nil
}

// pushTags writes every tag, Parallel at once, once the manifests are all
// in.
func pushTags(ctx context.Context, src Source, dest *registry.Destination, order []trust.Image, parallel int, res *Result) error {
	type tagged struct {
		manifest []byte
		tag      string
	}
	var tags []tagged
	for _, img := range order {
		if len(img.Tags) == 0 {
			continue
		}
		data, err := src.Manifest(ctx, img.Digest) // once, however many tags
		if err != nil {
			return err
		}
		for _, tag := range img.Tags {
			tags = append(tags, tagged{data, tag})
		}
	}
	done, err := inParallel(ctx, parallel, tags, func(ctx context.Context, t tagged) error {
		return dest.Tag(ctx, t.tag, t.manifest)
	})
	res.Tags += done
	return err
}

// inParallel runs do on every item, at most parallel at once, and says how
// many succeeded; the first error stops the items not yet begun.
func inParallel[T any](ctx context.Context, parallel int, items []T, do func(context.Context, T) error) (int, error) {
	var done atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for _, it := range items {
		g.Go(func() error {
			if err := do(ctx, it); err != nil {
				return err
			}
			done.Add(1)
			return nil
		})
	}
	err := g.Wait()
	return int(done.Load()), err
}

// stepIf begins a step on opts.Progress when show: a step with nothing to
// do is not shown.
func stepIf(opts Options, show bool, name string) mirror.Step {
	if !show {
		return mirror.BeginStep(nil, name)
	}
	return mirror.BeginStep(opts.Progress, name)
}

// owners names every blob of images after the image it belongs to, for the
// progress lines.
func owners(images []trust.Image) map[digest.Digest]string {
	list := make([]mirror.BlobOwner, 0, len(images))
	for _, img := range images {
		list = append(list, mirror.BlobOwner{Name: mirror.OwnerName(img.Source, img.Tags),
			Digest: img.Digest, Children: img.Children, Blobs: img.Blobs})
	}
	return mirror.BlobOwners(list)
}

// blob is a config or layer to push.
type blob struct {
	digest digest.Digest
	size   int64
}

// blobsOf lists the configs and layers of images once each, leaving out
// prerequisites. Sizes come from the manifests' own descriptors, which the
// source's digests bind.
func blobsOf(images []trust.Image, prereqs []bundle.Prerequisite) []blob {
	seen := map[digest.Digest]bool{}
	for _, p := range prereqs {
		seen[p.Digest] = true
	}
	var out []blob
	for _, img := range images {
		for i, d := range img.Blobs {
			if seen[d] {
				continue
			}
			seen[d] = true
			out = append(out, blob{d, img.BlobSizes[i]})
		}
	}
	return out
}

// ManifestOrder lists each manifest once, every single-image manifest
// before any manifest list, so children land before the lists naming
// them; the tags of a manifest seen from two sources are merged.
func ManifestOrder(images []trust.Image) []trust.Image {
	type place struct {
		list  bool
		index int
	}
	seen := map[digest.Digest]place{}
	var singles, lists []trust.Image
	for _, img := range images {
		isList := manifest.MIMETypeIsMultiImage(img.MediaType)
		group := &singles
		if isList {
			group = &lists
		}
		if p, ok := seen[img.Digest]; ok && p.list == isList {
			(*group)[p.index].Tags = appendNew((*group)[p.index].Tags, img.Tags...)
			continue
		}
		img.Tags = slices.Clone(img.Tags)
		seen[img.Digest] = place{list: isList, index: len(*group)}
		*group = append(*group, img)
	}
	return append(singles, lists...)
}

// checkPrerequisites makes sure the target holds every blob an incremental
// bundle left out, before anything is pushed.
func checkPrerequisites(ctx context.Context, dest *registry.Destination, opts Options, res *Result) error {
	if len(opts.Prerequisites) == 0 {
		return nil
	}
	var mu sync.Mutex
	var missing []digest.Digest
	_, err := inParallel(ctx, opts.Parallel, opts.Prerequisites, func(ctx context.Context, pr bundle.Prerequisite) error {
		has, err := dest.HasBlob(ctx, pr.Digest, pr.Size)
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
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return &MissingPrerequisitesError{Target: dest.Repository(), Missing: missing, Total: len(opts.Prerequisites)}
	}
	res.Prerequisites = len(opts.Prerequisites)
	return nil
}

// pushBlobs pushes every blob dest lacks, Parallel at once. Whether dest
// holds a blob is asked (HEAD) ahead of the uploads, as many at once
// again: over a slow link a check costs a round trip, which then overlaps
// the uploads in flight instead of coming before each.
func pushBlobs(ctx context.Context, src Source, dest *registry.Destination, blobs []blob, owners map[digest.Digest]string, opts Options, res *Result) error {
	var total int64
	for _, b := range blobs {
		total += b.size
	}
	phase := opts.Progress.Phase("push blobs", total, len(blobs))
	defer phase.End()
	var pushed, skipped, bytesPushed atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	checked := make(chan *checkedBlob, opts.Parallel)
	g.Go(func() error { return checkAhead(ctx, dest, blobs, opts.Parallel, checked) })
	for range opts.Parallel {
		g.Go(func() error {
			for c := range checked {
				<-c.done // HasBlob returns once ctx ends
				b := c.blob
				item := phase.Item(mirror.ItemName(owners[b.digest], b.digest), b.size)
				err := c.err
				if err == nil && c.has {
					item.Add(int(b.size))
					skipped.Add(1)
				}
				if err == nil && !c.has {
					err = pushBlob(ctx, src, dest, b, opts.Retry, item)
					if err == nil {
						pushed.Add(1)
						bytesPushed.Add(b.size)
					}
				}
				item.Done(err)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	res.BlobsPushed, res.BlobsSkipped, res.BytesPushed = int(pushed.Load()), int(skipped.Load()), bytesPushed.Load()
	return err
}

// checkedBlob is a blob and, once done is closed, whether the target holds
// it.
type checkedBlob struct {
	blob blob
	done chan struct{}
	has  bool
	err  error
}

// checkAhead asks dest whether it holds each blob, at most parallel at
// once, and sends each into checked in order as its check begins; it
// closes checked when every check has ended.
func checkAhead(ctx context.Context, dest *registry.Destination, blobs []blob, parallel int, checked chan<- *checkedBlob) error {
	defer close(checked)
	var running sync.WaitGroup
	defer running.Wait()
	slots := make(chan struct{}, parallel)
	for _, b := range blobs {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		c := &checkedBlob{blob: b, done: make(chan struct{})}
		running.Go(func() {
			defer func() { <-slots }()
			c.has, c.err = dest.HasBlob(ctx, b.digest, b.size)
			close(c.done)
		})
		select {
		case checked <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pushBlob uploads one blob. A seekable stream is rewound by the
// destination's own retries; a stream from a registry is opened again.
func pushBlob(ctx context.Context, src Source, dest *registry.Destination, b blob, retry registry.RetryPolicy, item mirror.ItemProgress) error {
	once := func(ctx context.Context) error {
		item.Reset()
		rc, err := src.OpenBlob(ctx, b.digest, b.size)
		if err != nil {
			return err
		}
		defer rc.Close()
		if sk, ok := rc.(io.ReadSeeker); ok {
			r := &countingSeeker{ReadSeeker: sk, item: item}
			if src.Verified() {
				return dest.PutVerifiedBlob(ctx, r, b.digest, b.size)
			}
			return dest.PutBlob(ctx, r, b.digest, b.size)
		}
		return dest.PutBlob(ctx, &countingReader{Reader: rc, item: item}, b.digest, b.size)
	}
	if src.Verified() {
		return once(ctx)
	}
	return registry.Do(ctx, retry, "copy blob "+b.digest.String(), once)
}

// plan is a dry run: which blobs the target lacks, and what would follow.
func plan(ctx context.Context, dest *registry.Destination, blobs []blob, order []trust.Image, res *Result) error {
	for _, b := range blobs {
		has, err := dest.HasBlob(ctx, b.digest, b.size)
		if err != nil {
			return err
		}
		if !has {
			res.WouldPush++
			res.WouldPushBytes += b.size
		}
	}
	for _, img := range order {
		res.Manifests++
		res.Tags += len(img.Tags)
	}
	return nil
}

// countingReader reports bytes read as progress.
type countingReader struct {
	io.Reader
	item mirror.ItemProgress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	c.item.Add(n)
	return n, err
}

// countingSeeker reports bytes read and stays seekable, so that a failed
// upload can be rewound and retried; a rewind resets the count.
type countingSeeker struct {
	io.ReadSeeker
	item mirror.ItemProgress
}

func (c *countingSeeker) Read(p []byte) (int, error) {
	n, err := c.ReadSeeker.Read(p)
	c.item.Add(n)
	return n, err
}

func (c *countingSeeker) Seek(off int64, whence int) (int64, error) {
	c.item.Reset()
	return c.ReadSeeker.Seek(off, whence)
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}
