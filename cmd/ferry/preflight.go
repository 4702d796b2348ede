package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/regularfile"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/release"
)

// This file holds the checks that make pack and apply fail before their
// work, not after it: a path that cannot be written, a disk too small, a
// size no real registry declares, a path that names a pipe or a device.

const (
	// absurdBlobSize is the declared size from which pack refuses a blob
	// (1 TiB). The largest layers of an OpenShift payload are a few GiB,
	// and the largest container layers anywhere (model weights) tens of
	// GiB; a declared terabyte is a broken or hostile manifest, which
	// would otherwise surface as "file too large" or a full disk hours in.
	absurdBlobSize = 1 << 40
	// spaceMargin is the free space pack wants beyond its estimate of
	// the bundle: the index and the signatures (a few MiB for the
	// largest release sets), file system metadata of files of many GiB,
	// and a little for whatever else writes to the disk meanwhile.
	spaceMargin = 64 << 20
	// entryOverhead bounds the tar bytes around one entry's data: its
	// 512-byte header, a PAX header for a long name (a header block and
	// a data block) and the padding to a whole block.
	entryOverhead = 4 * 512
)

// checkOutput is pack's first step, before anything is fetched: -o must
// name a file ferry may create, or replace with --force, in a directory it
// can write, and no other ferry may be writing it.
func (o *packOptions) checkOutput() error {
	if o.dryRun {
		return nil
	}
	st, err := os.Stat(o.output)
	switch {
	case err == nil && st.IsDir():
		return usageError(fmt.Errorf("-o %s is a directory: name the bundle file to write, e.g. -o %s", o.output, filepath.Join(o.output, "bundle.tar")))
	case err == nil && !st.Mode().IsRegular():
		return usageError(fmt.Errorf("-o %s is %s: ferry writes a bundle file and replaces nothing else, even with --force", o.output, regularfile.Describe(st.Mode())))
	case err == nil && !o.force:
		return usageError(fmt.Errorf("-o %s exists: pass --force to replace it", o.output))
	}
	if err := checkWritableDir("-o", filepath.Dir(o.output)); err != nil {
		return err
	}
	return bundle.CheckLock(o.output)
}

// checkWritableDir checks that dir is an existing directory ferry can
// create files in. A directory that is not there, or not writable, fails
// the operation (exit 1, like a missing bundle); a path that names a file
// is a wrong argument (exit 2).
func checkWritableDir(flag, dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: directory %s does not exist", flag, dir)
	}
	if err != nil {
		return fmt.Errorf("%s: directory %s: %w", flag, dir, err)
	}
	if !st.IsDir() {
		return usageError(fmt.Errorf("%s: %s is %s, not a directory", flag, dir, regularfile.Describe(st.Mode())))
	}
	if err := writable(dir); err != nil {
		return fmt.Errorf("%s: cannot write into directory %s: %w", flag, dir, err)
	}
	return nil
}

// checkPlan runs once the plan is known and before the first layer is
// fetched: it refuses a blob whose declared size is absurd and a bundle
// larger than the free space of its directory. With --dry-run it warns
// instead, and says nothing when the directory cannot be examined.
func (o *packOptions) checkPlan(env *environment, plan *mirror.Plan, blobs []*mirror.Blob) error {
	if err := absurdBlob(plan, blobs); err != nil {
		if !o.dryRun {
			return err
		}
		env.log.Warn("pack would fail: " + err.Error())
	}
	dir := filepath.Dir(o.output)
	free, err := freeSpace(dir)
	if err != nil {
		if !o.dryRun {
			env.log.Warn("cannot tell the free space for the bundle", "dir", dir, "error", err)
		}
		return nil
	}
	need := o.estimateBundle(plan, blobs) + spaceMargin
	if need <= free {
		return nil
	}
	err = fmt.Errorf("not enough free space in %s for the bundle: it needs %s (%d bytes, with a margin of %s), the file system has %s (%d bytes) free",
		dir, formatBytes(need), need, formatBytes(spaceMargin), formatBytes(free), free)
	if !o.dryRun {
		return err
	}
	env.log.Warn("pack would fail: " + err.Error())
	return nil
}

// absurdBlob names the largest blob declared at least absurdBlobSize, and
// the image that declares it.
func absurdBlob(plan *mirror.Plan, blobs []*mirror.Blob) error {
	var worst *mirror.Blob
	count := 0
	for _, b := range blobs {
		if b.Size >= absurdBlobSize {
			count++
			if worst == nil || b.Size > worst.Size {
				worst = b
			}
		}
	}
	if worst == nil {
		return nil
	}
	kind := "layer"
	if strings.Contains(worst.MediaType, "config") {
		kind = "config"
	}
	more := ""
	if count > 1 {
		more = fmt.Sprintf(" (and %d more blobs of %s or more)", count-1, formatBytes(absurdBlobSize))
	}
	return fmt.Errorf("the registry declares a %s %s %s for %s: refusing, as no real image has a blob of %s or more%s",
		formatBytes(worst.Size), kind, worst.Digest, imageOf(plan, worst), formatBytes(absurdBlobSize), more)
}

// imageOf names an image that references b, with its tag when it has one
// (a Sigstore sha256-<hex>.sig manifest has).
func imageOf(plan *mirror.Plan, b *mirror.Blob) string {
	for _, img := range plan.Images {
		if slices.Contains(img.Blobs, b.Digest) {
			name := img.Repository + "@" + img.Digest.String()
			if len(img.Tags) > 0 {
				name += " (" + img.Tags[0] + ")"
			}
			return name
		}
	}
	return b.Repository
}

// estimateBundle is how many bytes the bundle takes: every carried blob
// and manifest with its tar overhead, ferry's own binary, and the markers
// and ends of the volumes.
func (o *packOptions) estimateBundle(plan *mirror.Plan, blobs []*mirror.Blob) int64 {
	var n int64
	for _, b := range blobs {
		n += b.Size + entryOverhead
	}
	seen := map[string]bool{}
	for _, img := range plan.Images {
		if !seen[img.Digest.String()] {
			seen[img.Digest.String()] = true
			n += int64(len(img.Manifest)) + entryOverhead
		}
	}
	if !o.noSelf {
		if exe, err := os.Executable(); err == nil {
			if st, err := os.Stat(exe); err == nil {
				n += st.Size() + entryOverhead
			}
		}
	}
	if size, err := parseSize(o.volumeSize); err == nil && size > 0 {
		n += (n/size + 1) * 2 * entryOverhead // each volume's marker and end of archive
	}
	return n
}

// checkBundleArgs is the first look at the BUNDLE and VOLUME arguments,
// before anything else is read or contacted: each must be a regular file
// ferry can open. One that does not exist or cannot be read fails the
// operation (exit 1); a directory, a named pipe or a device is a wrong
// argument (exit 2), refused without blocking on it. What the files hold
// is for bundle.Open and the verification to judge.
func checkBundleArgs(bundlePath string, volumes []string) error {
	for i, p := range append([]string{bundlePath}, volumes...) {
		what := "bundle"
		if i > 0 {
			what = "volume"
		}
		f, err := regularfile.Open(p, "a bundle file")
		var kindErr *regularfile.KindError
		var pathErr *fs.PathError
		switch {
		case errors.As(err, &kindErr):
			return usageError(err)
		case errors.As(err, &pathErr):
			return fmt.Errorf("%s %s: %w", what, p, pathErr.Err)
		case err != nil:
			return fmt.Errorf("%s %s: %w", what, p, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("%s %s: %w", what, p, err)
		}
	}
	return nil
}

// preflight is apply's first step, before the bundle is read and before
// any cluster or registry is looked for: the BUNDLE and VOLUME arguments
// must be files, the --keyring files keyrings, and --output-dir (unless
// --dry-run, which writes nothing) a directory ferry can create or write,
// so that a mistake does not surface after every blob was pushed.
func (o *applyOptions) preflight(env *environment) error {
	if err := checkBundleArgs(o.bundle, o.volumes); err != nil {
		return err
	}
	if err := o.trust.checkGivenKeyrings(env); err != nil {
		return err
	}
	return o.preflightOutput()
}

// checkGivenKeyrings reads the --keyring files, when some are given, with
// the other local files: a missing or malformed one is reported before
// any registry or cluster is contacted. The keyring is kept for its use.
func (f *trustFlags) checkGivenKeyrings(env *environment) error {
	if len(f.keyrings.Value()) == 0 {
		return nil
	}
	_, err := f.releaseKeyring(env)
	return err
}

// preflightOutput checks --output-dir, unless --dry-run, which writes
// nothing: apply and mirror write the manifests there after pushing.
func (o *applyOptions) preflightOutput() error {
	if o.dryRun {
		return nil
	}
	dir := o.outputDir
	if dir == "" {
		// The default is <dir>/<bundle id>, the id not known yet: <dir>
		// must be, or become, a directory.
		dir = filepath.Dir(o.outDir("id"))
	}
	return checkOutputDir("--output-dir", dir)
}

// checkOutputDir checks that dir is a directory ferry can write, or that
// the nearest of its ancestors that exists is one, so that MkdirAll can
// create it.
func checkOutputDir(flag, dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err == nil {
			if !st.IsDir() {
				return usageError(fmt.Errorf("%s %s: %s is %s, not a directory", flag, dir, p, regularfile.Describe(st.Mode())))
			}
			if err := writable(p); err != nil {
				return fmt.Errorf("%s %s: cannot write into %s: %w", flag, dir, p, err)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%s %s: %w", flag, dir, err)
		}
		if filepath.Dir(p) == p {
			return fmt.Errorf("%s %s: no part of the path exists", flag, dir)
		}
	}
}

// checkArgs is pack's first step: every flag and argument that can be
// judged without a file, the network or the disk, so that a mistake in
// them is reported (exit 2) before a missing directory or an unreachable
// registry. It returns --volume-size parsed.
func (o *packOptions) checkArgs() (volumeSize int64, err error) {
	if volumeSize, err = parseSize(o.volumeSize); err != nil {
		return 0, usageError(fmt.Errorf("--volume-size: %w", err))
	}
	return volumeSize, o.checkSourceArgs()
}

// checkSourceArgs judges the arguments pack and mirror share: the
// releases (or the channel), --parallel, --sigstore, the catalogs and the
// additional images. They are parsed again where they are used.
func (o *packOptions) checkSourceArgs() error {
	if o.parallel < 1 {
		return usageError(errors.New("--parallel must be at least 1"))
	}
	if err := o.graph.check(len(o.releases) + len(o.configReleases)); err != nil {
		return usageError(err)
	}
	if o.graph.active() {
		arch, err := release.NormalizeArch(o.arch)
		if err == nil {
			_, err = release.GraphArch(arch)
		}
		if err != nil {
			return usageError(fmt.Errorf("--arch: %w", err))
		}
	} else {
		if _, err := parseRefs(o.releases, o.arch, o.archSet); err != nil {
			return err
		}
		if _, err := o.configRefs(); err != nil {
			return err
		}
	}
	if _, err := o.sigstore.parse(); err != nil {
		return err
	}
	catalogs, err := o.operators.selections()
	if err != nil {
		return err
	}
	for _, c := range catalogs {
		if err := checkImageRef(c.Catalog); err != nil {
			return usageError(fmt.Errorf("catalog %w", err))
		}
	}
	images, err := o.extras.additional()
	if err != nil {
		return err
	}
	for _, img := range images {
		if err := checkImageRef(img.Ref); err != nil {
			return usageError(fmt.Errorf("additional image %w", err))
		}
	}
	_, err = o.extras.blockedPatterns()
	return err
}
