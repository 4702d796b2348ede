package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
)

// storageDir is where the filesystem driver keeps the registry under its
// root directory; blobsDir holds the content, one directory per digest.
const (
	storageDir = "docker/registry/v2"
	blobsDir   = "/" + storageDir + "/blobs/"
)

// ErrNoRegistry is returned by GarbageCollect for a root that is not a
// registry's.
var ErrNoRegistry = errors.New("not a registry root")

// GCOptions configure GarbageCollect.
type GCOptions struct {
	// DryRun finds what would be removed and removes nothing.
	DryRun bool
	// Log receives the library's log (nil: nothing).
	Log *slog.Logger
}

// GCResult is what a garbage collection removed (or, in a dry run, would).
type GCResult struct {
	DryRun bool `json:"dry_run"`
	// Blobs are the removed blobs' digests, sorted: layers, configs and
	// the manifests themselves (a manifest is a blob too).
	Blobs []digest.Digest `json:"blobs"`
	// Bytes is the sum of their sizes: the disk space freed.
	Bytes int64 `json:"bytes"`
}

// GarbageCollect runs the distribution library's mark and sweep on root,
// offline: it locks the root, so it refuses to run while a read-write
// server (Listen) serves it, and a server cannot start while it runs; a
// read-only server may serve meanwhile.
//
// Marked, so kept, is every blob a manifest of some repository references,
// through its manifests' references, recursively (an index's children, an
// image's config and layers). A manifest deleted through the API (as
// ferry prune does) is no longer a manifest of its repository: its blob
// and the blobs only it referenced are removed. Untagged manifests are
// kept: a mirror holds most images by digest only (a release's
// components), and removing them would break the releases.
func GarbageCollect(ctx context.Context, root string, opts GCOptions) (*GCResult, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if info, err := os.Stat(root); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNoRegistry, root)
	}
	lock, err := lockRoot(root, "ferry serve gc")
	if err != nil {
		return nil, err
	}
	defer lock.unlock()
	result := &GCResult{DryRun: opts.DryRun, Blobs: []digest.Digest{}}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(storageDir), "repositories")); errors.Is(err, fs.ErrNotExist) {
		log.Info("nothing to collect: the registry holds no repository", "root", root)
		return result, nil
	}
	driver, err := filesystem.FromParameters(map[string]any{"rootdirectory": root})
	if err != nil {
		return nil, fmt.Errorf("registry storage %s: %w", root, err)
	}
	registry, err := storage.NewRegistry(ctx, driver)
	if err != nil {
		return nil, fmt.Errorf("registry storage %s: %w", root, err)
	}
	// The library's own dry run prints what it would remove to standard
	// output and returns nothing; instead it sweeps for real through a
	// driver that records each removal and, in a dry run, skips it.
	sweep := &sweepRecorder{StorageDriver: driver, dryRun: opts.DryRun, result: result}
	if err := storage.MarkAndSweep(ctx, sweep, registry, storage.GCOpts{Quiet: true}); err != nil {
		return nil, fmt.Errorf("garbage collect %s: %w", root, err)
	}
	slices.Sort(result.Blobs)
	return result, nil
}

// sweepRecorder is a storage driver that records the blobs the sweep
// removes, with their sizes, and removes nothing in a dry run. The sweep
// also removes repositories' links to unmarked blobs: those are not blobs
// and take no space worth counting.
type sweepRecorder struct {
	storagedriver.StorageDriver
	dryRun bool
	result *GCResult
}

func (s *sweepRecorder) Delete(ctx context.Context, p string) error {
	if d, ok := blobOfPath(p); ok {
		info, err := s.Stat(ctx, path.Join(p, "data"))
		if err != nil {
			return fmt.Errorf("size of blob %s: %w", d, err)
		}
		s.result.Blobs = append(s.result.Blobs, d)
		s.result.Bytes += info.Size()
	}
	if s.dryRun {
		return nil
	}
	return s.StorageDriver.Delete(ctx, p)
}

// blobOfPath is the digest of a blob directory the sweep removes
// (/docker/registry/v2/blobs/ALGORITHM/XX/HEX).
func blobOfPath(p string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(p, blobsDir)
	if !ok {
		return "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
	return d, d.Validate() == nil
}
