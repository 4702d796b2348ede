// Package pack writes a plan into a bundle: the carried binary, the
// releases' verified signatures and their ConfigMaps, every manifest byte
// for byte, every config and layer streamed from its registry into a
// reservation of the bundle (checked against its digest as it is written),
// the OCI layout, and the index last, signed when a key is given. It
// prints nothing and reads no flags: its caller says everything in Options
// and draws the progress it reports.
package pack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/signature"
)

// Options say what Write writes and how. The zero value, with Output set,
// writes one unsigned bundle file of every blob of the plan, without a
// cache, a carried binary or progress.
type Options struct {
	// Output is the bundle's path (volume 0); data volumes are named
	// after it (bundle.tar -> bundle.001.tar).
	Output string
	// VolumeSize splits the bundle into data volumes of at most this many
	// bytes (at least bundle.MinVolumeSize); 0 writes one file.
	VolumeSize int64
	// Force replaces an existing bundle at Output; without it Write fails
	// with an *ExistsError.
	Force bool
	// Parallel is how many blobs are fetched at once; below 1 means
	// registry.DefaultParallel.
	Parallel int
	// Retry is how a failed blob fetch is retried, from the blob's start.
	// Opening the blob is retried by the plan's registry client already.
	Retry registry.RetryPolicy
	// CacheDir, when set, is a directory of verified blobs by digest
	// (<dir>/sha256/<hex>): a blob found there is not fetched, and every
	// blob fetched is added once its digest is checked. A corrupt entry is
	// removed and fetched again.
	CacheDir string
	// Signatures are the verified GPG signatures of the plan's releases,
	// by release digest; a release without any is recorded unsigned.
	Signatures map[digest.Digest][]signature.Accepted
	// SigningKey, when set, signs the index (ferry-index.json.asc) and the
	// carried binary (ferry.asc).
	SigningKey *signature.SigningKey
	// Self is the path of the program to carry at the top of volume 0 as
	// bundle.SelfName; "" carries none.
	Self string
	// UpdatePath is the versions of an update path, in order, recorded in
	// the index for the steps apply prints.
	UpdatePath []string
	// Prerequisites are the plan's blobs left out of the bundle because
	// the target holds them (see LeaveOut): recorded in the index, not
	// fetched. Every other blob of the plan is carried.
	Prerequisites []bundle.Prerequisite
	// Tool names the program that writes the bundle, for the index.
	Tool bundle.Tool
	// Record is how the bundle was made, as the caller describes it: a
	// JSON object, never secrets, stored as the index's options.
	Record json.RawMessage
	// Progress receives the blob transfers; nil for none.
	Progress mirror.Progress
	// Log receives warnings (a corrupt cache entry, foreign files beside
	// Output) and the failure to remove a partial bundle; nil for none.
	Log *slog.Logger
}

// Result is what Write wrote.
type Result struct {
	// ID is the bundle's id, as its index and volume markers record it.
	ID string
	// Volumes are the paths written, volume 0 first.
	Volumes []string
	// Blobs and Bytes count the configs and layers carried.
	Blobs int
	Bytes int64
	// Prerequisites and PrerequisiteBytes count the blobs left out.
	Prerequisites     int
	PrerequisiteBytes int64
}

// ExistsError is Write refusing to replace an existing bundle without
// Options.Force.
type ExistsError struct {
	// Err is the writer's error, naming the volumes found.
	Err error
}

func (e *ExistsError) Error() string { return e.Err.Error() }
func (e *ExistsError) Unwrap() error { return e.Err }

// SelfError is a failure to carry the program at Options.Self.
type SelfError struct {
	Path string
	Err  error
}

func (e *SelfError) Error() string {
	return "carry ferry's own binary " + e.Path + ": " + e.Err.Error()
}
func (e *SelfError) Unwrap() error { return e.Err }

// writer is one Write.
type writer struct {
	opts  Options
	plan  *mirror.Plan
	log   *slog.Logger
	blobs []*mirror.Blob // the plan's blobs to carry
}

// Write streams plan into a new bundle at opts.Output. The bundle appears
// only whole: volumes are written as .partial files and renamed at the
// end, and on failure nothing of this run is left behind. The bundle is
// reproducible in content: the same plan and options give the same index
// but for its id and times.
func Write(ctx context.Context, plan *mirror.Plan, opts Options) (res *Result, err error) {
	p := &writer{opts: opts, plan: plan, log: opts.Log, blobs: carried(plan, opts.Prerequisites)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.opts.Parallel < 1 {
		p.opts.Parallel = registry.DefaultParallel
	}
	wopts := bundle.WriteOptions{
		VolumeSize: opts.VolumeSize,
		Force:      opts.Force,
		Warn:       func(msg string) { p.log.Warn(msg) },
	}
	if opts.SigningKey != nil {
		wopts.SignIndex = func(index []byte) ([]byte, error) {
			return detachedSignature(opts.SigningKey, bytes.NewReader(index))
		}
	}
	w, err := bundle.Create(opts.Output, wopts)
	if errors.Is(err, fs.ErrExist) {
		return nil, &ExistsError{Err: err}
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if abortErr := w.Abort(); abortErr != nil {
				p.log.Error("could not remove the partial bundle", "error", abortErr)
			}
		}
	}()
	if err := p.fill(ctx, w); err != nil {
		return nil, err
	}
	return &Result{
		ID:                w.ID(),
		Volumes:           w.Paths(),
		Blobs:             len(p.blobs),
		Bytes:             BlobBytes(p.blobs),
		Prerequisites:     len(opts.Prerequisites),
		PrerequisiteBytes: PrerequisiteBytes(opts.Prerequisites),
	}, nil
}

// fill writes every entry in bundle order and finishes w with the index.
func (p *writer) fill(ctx context.Context, w *bundle.Writer) error {
	idx := p.index()
	if p.opts.Self != "" {
		if err := addSelf(w, p.opts.Self, p.opts.SigningKey); err != nil {
			return err
		}
	}
	if err := p.addSignatures(w, idx); err != nil {
		return err
	}
	if err := p.addManifests(w); err != nil {
		return err
	}
	if err := p.fetchBlobs(ctx, w); err != nil {
		return err
	}
	if err := p.addLayout(w); err != nil {
		return err
	}
	return w.Finish(idx)
}

// carried is the plan's blobs but those left out, in the plan's order.
func carried(plan *mirror.Plan, prereqs []bundle.Prerequisite) []*mirror.Blob {
	if len(prereqs) == 0 {
		return plan.Blobs
	}
	left := make(map[digest.Digest]bool, len(prereqs))
	for _, p := range prereqs {
		left[p.Digest] = true
	}
	var carry []*mirror.Blob
	for _, b := range plan.Blobs {
		if !left[b.Digest] {
			carry = append(carry, b)
		}
	}
	return carry
}

// BlobBytes is the total size of blobs.
func BlobBytes(blobs []*mirror.Blob) int64 {
	var n int64
	for _, b := range blobs {
		n += b.Size
	}
	return n
}

// PrerequisiteBytes is the total size of prereqs, each blob once though
// two repositories hold it: what the bundle is spared.
func PrerequisiteBytes(prereqs []bundle.Prerequisite) int64 {
	var n int64
	seen := make(map[digest.Digest]bool, len(prereqs))
	for _, p := range prereqs {
		if !seen[p.Digest] {
			seen[p.Digest] = true
			n += p.Size
		}
	}
	return n
}
