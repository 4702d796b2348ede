package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// maxUncommittedNamed bounds how many uncommitted slots an error names.
const maxUncommittedNamed = 5

// Finish completes the bundle: it fills idx's ID, Files and Volumes (and
// FormatVersion and Created when unset), writes the index as the last entry
// of volume 0, closes every volume with its end-of-archive, syncs, and
// renames the .partial files into place (with opts.SignIndex, the index's
// signature follows it), data volumes first and volume 0
// last, so that a bundle is never visible without its index. It refuses to
// finish while a slot is not committed, or with an index the reader would
// refuse; the writer stays usable after those errors.
func (w *Writer) Finish(idx *Index) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.checkCommitted(); err != nil {
		return err
	}
	data, err := w.buildIndex(idx)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", w.base, err)
	}
	if err := w.writeIndex(data); err != nil {
		return w.fail(err)
	}
	if err := w.writeIndexSignature(data); err != nil {
		return w.fail(err)
	}
	if err := w.closeVolumes(); err != nil {
		return w.fail(err)
	}
	if err := w.publish(); err != nil {
		return w.fail(err)
	}
	w.state = stateFinished
	w.removeStale()
	if err := w.releaseLock(); err != nil {
		w.warn(fmt.Sprintf("bundle %s is complete, but its lock file stays: %v", w.base, err))
	}
	return nil
}

// checkCommitted refuses to finish with a slot whose data is not checked.
// Called with w.mu held.
func (w *Writer) checkCommitted() error {
	var names []string
	count := 0
	for _, s := range w.slots {
		if !s.committed {
			count++
			if len(names) < maxUncommittedNamed {
				names = append(names, s.name)
			}
		}
	}
	if count == 0 {
		return nil
	}
	return fmt.Errorf("bundle %s: %d reserved files not committed: %s", w.base, count, joinNames(names, count))
}

func joinNames(names []string, count int) string {
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
	}
	if count > len(names) {
		fmt.Fprintf(&b, " and %d more", count-len(names))
	}
	return b.String()
}

// buildIndex fills the writer's part of idx and returns its JSON, checked
// by the same parser a reader uses. Called with w.mu held.
func (w *Writer) buildIndex(idx *Index) ([]byte, error) {
	if idx == nil {
		return nil, errors.New("no index")
	}
	if idx.FormatVersion == 0 {
		idx.FormatVersion = FormatVersion
	}
	if idx.Created.IsZero() {
		idx.Created = time.Now().UTC().Truncate(time.Second)
	}
	idx.ID = w.id
	idx.Files = w.allFiles()
	idx.Volumes = make([]Volume, len(w.vols))
	for i, v := range w.vols {
		idx.Volumes[i] = Volume{Name: v.name}
		if i > 0 {
			idx.Volumes[i].Size = v.end + endOfArchive
		}
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding index: %w", err)
	}
	if _, err := ParseIndex(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("the index would not be readable: %w", err)
	}
	return data, nil
}

// allFiles lists every entry, added and reserved, in volume order.
func (w *Writer) allFiles() []File {
	files := append([]File(nil), w.files...)
	for _, s := range w.slots {
		files = append(files, File{Name: s.name, Size: s.size, SHA256: s.sum, Volume: s.vol.num, Offset: s.offset})
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].Volume != files[j].Volume {
			return files[i].Volume < files[j].Volume
		}
		return files[i].Offset < files[j].Offset
	})
	return files
}

// writeIndex appends the index to volume 0 with its sha256 in the header.
func (w *Writer) writeIndex(data []byte) error {
	sum := sha256.Sum256(data)
	hdr, err := w.header(IndexName, int64(len(data)), map[string]string{paxComment: indexSumPrefix + hexOf(sum)})
	if err != nil {
		return err
	}
	v := w.vols[0]
	if _, err := w.writeEntry(v, hdr, data, int64(len(data))); err != nil {
		return fmt.Errorf("writing the index: %w", err)
	}
	if w.opts.VolumeSize > 0 && v.end+endOfArchive > w.opts.VolumeSize {
		w.warn(fmt.Sprintf("volume %s holds %d bytes of manifests, signatures and index, more than the volume size %d",
			v.name, v.end+endOfArchive, w.opts.VolumeSize))
	}
	return nil
}

// writeIndexSignature appends the index's detached signature, when the
// bundle is signed, as the last entry of volume 0.
func (w *Writer) writeIndexSignature(index []byte) error {
	if w.opts.SignIndex == nil {
		return nil
	}
	sig, err := w.opts.SignIndex(index)
	if err != nil {
		return fmt.Errorf("signing the index: %w", err)
	}
	if len(sig) == 0 || len(sig) > MaxIndexSignatureSize {
		return fmt.Errorf("signing the index: a signature of %d bytes (want 1 to %d)", len(sig), MaxIndexSignatureSize)
	}
	hdr, err := w.header(IndexSignatureName, int64(len(sig)), nil)
	if err != nil {
		return err
	}
	if _, err := w.writeEntry(w.vols[0], hdr, sig, int64(len(sig))); err != nil {
		return fmt.Errorf("writing the index signature: %w", err)
	}
	return nil
}

// closeVolumes ends every volume with two zero blocks and syncs it.
func (w *Writer) closeVolumes() error {
	zeros := make([]byte, endOfArchive)
	for _, v := range w.vols {
		if _, err := v.f.WriteAt(zeros, v.end); err != nil {
			return fmt.Errorf("writing volume %s: %w", v.name, err)
		}
		if err := v.f.Sync(); err != nil {
			return fmt.Errorf("syncing volume %s: %w", v.name, err)
		}
		if err := v.f.Close(); err != nil {
			return fmt.Errorf("closing volume %s: %w", v.name, err)
		}
	}
	return nil
}

// publish renames the volumes into place, volume 0 (the index) last, and
// syncs the directory so that the renames survive a crash.
func (w *Writer) publish() error {
	order := append(append([]*volume(nil), w.vols[1:]...), w.vols[0])
	for _, v := range order {
		if err := os.Rename(v.path+partialSuffix, v.path); err != nil {
			return fmt.Errorf("publishing volume %s: %w", v.name, err)
		}
		v.renamed = true
	}
	if err := syncDir(w.dir); err != nil {
		return fmt.Errorf("syncing directory %s: %w", w.dir, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	// Some file systems cannot sync a directory; the renames are then as
	// durable as they can be made.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
		err = nil
	}
	return errors.Join(err, d.Close())
}

// removeStale removes the volumes of an overwritten bundle that no new
// volume replaced, so that they cannot be mistaken for part of this one.
func (w *Writer) removeStale() {
	current := make(map[string]bool, len(w.vols))
	for _, v := range w.vols {
		current[v.name] = true
	}
	for _, name := range w.stale {
		if current[name] {
			continue
		}
		if err := os.Remove(filepath.Join(w.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.warn(fmt.Sprintf("could not remove %s of the overwritten bundle: %v", name, err))
		}
	}
}

// Abort stops writing and removes every file the writer created. It is
// safe to call at any time, more than once, and after a failed Finish; after
// a successful Finish it does nothing.
func (w *Writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateOpen {
		return nil
	}
	w.state = stateAborted
	var errs []error
	for _, v := range w.vols {
		_ = v.f.Close() // already closed after a failed Finish; nothing to keep
		p := v.path + partialSuffix
		if v.renamed {
			p = v.path
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	return errors.Join(append(errs, w.releaseLock())...)
}
