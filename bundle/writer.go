package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/regularfile"
)

// MinVolumeSize is the smallest volume size the writer accepts: a volume
// holds its marker, at least one entry and the end of archive, and tiny
// volumes would only multiply files.
const MinVolumeSize = 64 << 10

const (
	partialSuffix = ".partial"
	// indexSumPrefix starts the PAX "comment" record of the index entry,
	// which carries the index's own sha256: the index cannot list itself,
	// and "comment" is the one PAX keyword every tar ignores silently.
	indexSumPrefix = "ferry-index sha256:"
	paxComment     = "comment"
)

// ErrDigestMismatch is wrapped by Slot.Commit when the data written does not
// have the expected sha256; a caller may reset the slot and fetch again.
var ErrDigestMismatch = errors.New("content does not match its digest")

// WriteOptions tune Create.
type WriteOptions struct {
	// VolumeSize splits the bundle into data volumes of at most this many
	// bytes (at least MinVolumeSize); 0 writes one file.
	VolumeSize int64
	// Force overwrites an existing bundle of the same name.
	Force bool
	// ID is the bundle's id; empty means 32 random hex digits.
	ID string
	// Warn receives notes for the user; nil discards them. It is called
	// with the writer's lock held, so it must not call the Writer.
	Warn func(msg string)
	// SignIndex, when set, signs the index: Finish passes it the index's
	// exact bytes and writes what it returns (a detached signature, at
	// most MaxIndexSignatureSize bytes) as IndexSignatureName right after
	// the index. It is called with the writer's lock held.
	SignIndex func(index []byte) ([]byte, error)
}

// Writer writes a bundle. AddFile, Reserve, Finish and Abort may be called
// from any goroutine; each Slot is filled by one goroutine at a time.
// Callers should defer Abort, which does nothing once Finish succeeded.
type Writer struct {
	dir, base string
	opts      WriteOptions
	id        string
	mtime     time.Time
	// stale are volumes of an earlier bundle at this path (Force), removed
	// at Finish unless a new volume replaced them.
	stale []string
	// lock is the output's lock, held from Create to Finish or Abort; nil
	// on a file system without locks.
	lock *outputLock

	mu    sync.Mutex
	state writerState
	err   error // the failure that made the writer unusable
	vols  []*volume
	files []File
	names map[string]bool
	slots []*Slot
}

type writerState int

const (
	stateOpen writerState = iota
	stateFinished
	stateAborted
)

type volume struct {
	num     int
	name    string // base name, as in the index
	path    string // final path
	f       *os.File
	end     int64 // where the next entry's header goes
	renamed bool
	cache   *cacheDropper // nil: pages stay cached
}

type volumeMarker struct {
	Bundle string `json:"bundle"`
	Volume int    `json:"volume"`
}

// Create starts a bundle at path (volume 0; data volumes are named after
// it, bundle.tar -> bundle.001.tar). It first takes the bundle's lock (see
// LockName), held until Finish or Abort, so that a second writer of the
// same path fails at once with a *LockedError instead of removing the
// first one's files. Holding it, it refuses to overwrite an existing bundle
// unless opts.Force, and removes the .partial files an interrupted run left
// behind. A path naming a directory, a named pipe or a device is refused
// even with Force (a *regularfile.KindError), and files merely named like
// data volumes are never removed or overwritten: a volume is this writer's
// to replace only if it starts with a ferry volume marker.
func Create(path string, opts WriteOptions) (*Writer, error) {
	if opts.VolumeSize < 0 || opts.VolumeSize > 0 && opts.VolumeSize < MinVolumeSize {
		return nil, fmt.Errorf("creating bundle %s: volume size %d is below the minimum %d", path, opts.VolumeSize, MinVolumeSize)
	}
	id := opts.ID
	if id == "" {
		id = randomID()
	} else if !validID(id) {
		return nil, fmt.Errorf("creating bundle %s: invalid id %q", path, id)
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	if !validVolumeName(base) {
		return nil, fmt.Errorf("creating bundle %s: unsupported file name %q", path, base)
	}
	w := &Writer{dir: dir, base: base, opts: opts, id: id,
		mtime: time.Now().Truncate(time.Second), names: map[string]bool{}}
	if err := w.claim(path); err != nil {
		var locked *LockedError
		if !errors.As(err, &locked) {
			err = fmt.Errorf("creating bundle %s: %w", path, err)
		}
		return nil, errors.Join(err, w.releaseLock())
	}
	if _, err := w.newVolume(); err != nil {
		return nil, errors.Join(fmt.Errorf("creating bundle %s: %w", path, err), w.Abort())
	}
	return w, nil
}

// claim locks the output and takes stock of what is there already.
func (w *Writer) claim(path string) error {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%w: it is not replaced, even with Force", &regularfile.KindError{Path: path, Mode: st.Mode().Type(), Want: "a bundle file"})
	}
	lock, err := acquireLock(w.dir, w.base, time.Now())
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		w.warn(fmt.Sprintf("cannot lock %s (%v): make sure no other ferry writes this bundle at the same time", path, err))
	case err != nil:
		return err
	}
	w.lock = lock
	found, err := findVolumes(w.dir, w.base)
	if err != nil {
		return err
	}
	if len(found.foreign) > 0 {
		w.warn("left alone, as they are not ferry volumes: " + strings.Join(found.foreign, ", "))
	}
	if len(found.existing) > 0 && !w.opts.Force {
		return fmt.Errorf("found %s of an existing bundle, which is not overwritten without Force: %w",
			strings.Join(found.existing, ", "), fs.ErrExist)
	}
	w.stale = found.existing
	return w.removeLeftovers(found.partials)
}

// releaseLock gives the output's lock up; nil when it is not held.
func (w *Writer) releaseLock() error {
	err := w.lock.release()
	w.lock = nil
	return err
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// foundVolumes is what findVolumes found beside a bundle.
type foundVolumes struct {
	// existing are base itself and the data volumes of a ferry bundle.
	existing []string
	// partials are the .partial files an interrupted writer left.
	partials []string
	// foreign are files named like data volumes that no ferry wrote: they
	// are neither removed nor overwritten.
	foreign []string
}

// findVolumes lists the files in dir that are volumes of the bundle base
// (base itself and base.NNN.tar), and the .partial files of such volumes.
// For a data volume a name is not enough: it must start with a ferry
// volume marker. A .partial file is taken by its name, which only ferry
// gives: one left by a crash may hold nothing readable, and must not stop
// every later run.
func findVolumes(dir, base string) (foundVolumes, error) {
	var found foundVolumes
	entries, err := os.ReadDir(dir)
	if err != nil {
		return found, err
	}
	for _, e := range entries {
		name, path := e.Name(), filepath.Join(dir, e.Name())
		p, isPartial := strings.CutSuffix(name, partialSuffix)
		switch {
		case isPartial && isVolumeOf(base, p):
			found.partials = append(found.partials, name)
		case name == base:
			found.existing = append(found.existing, name)
		case isVolumeOf(base, name):
			if isDataVolume(path) {
				found.existing = append(found.existing, name)
			} else {
				found.foreign = append(found.foreign, name)
			}
		}
	}
	return found, nil
}

// isDataVolume reports whether path is a regular file whose first entry is
// the marker of a data volume (reading at most the marker's bounded size).
func isDataVolume(path string) bool {
	v, err := openVolumeFile(path)
	if err != nil {
		return false
	}
	defer v.f.Close()
	m, err := readMarker(v)
	return err == nil && m.Volume > 0
}

func (w *Writer) removeLeftovers(partials []string) error {
	if len(partials) == 0 {
		return nil
	}
	for _, p := range partials {
		if err := os.Remove(filepath.Join(w.dir, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing leftover %s: %w", p, err)
		}
	}
	w.warn("removed leftovers of an interrupted pack: " + strings.Join(partials, ", "))
	return nil
}

// volumeName names data volume n of the bundle base: the number goes
// before a .tar extension, or at the end when there is none.
func volumeName(base string, n int) string {
	if stem, ok := strings.CutSuffix(base, ".tar"); ok {
		return fmt.Sprintf("%s.%03d.tar", stem, n)
	}
	return fmt.Sprintf("%s.%03d", base, n)
}

// isVolumeOf reports whether name is volume 0 or a data volume of base.
func isVolumeOf(base, name string) bool {
	if name == base {
		return true
	}
	stem, ext := base, ""
	if s, ok := strings.CutSuffix(base, ".tar"); ok {
		stem, ext = s, ".tar"
	}
	num, ok := strings.CutPrefix(name, stem+".")
	if !ok {
		return false
	}
	if num, ok = strings.CutSuffix(num, ext); !ok || len(num) < 3 {
		return false
	}
	return strings.Trim(num, "0123456789") == ""
}

func (w *Writer) warn(msg string) {
	if w.opts.Warn != nil {
		w.opts.Warn(msg)
	}
}

// ID returns the bundle's id.
func (w *Writer) ID() string { return w.id }

// Paths returns the final paths of the volumes created so far, volume 0
// first.
func (w *Writer) Paths() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	paths := make([]string, len(w.vols))
	for i, v := range w.vols {
		paths[i] = v.path
	}
	return paths
}

// usable reports why the writer cannot take more work, if it cannot.
// Called with w.mu held.
func (w *Writer) usable() error {
	switch {
	case w.state == stateFinished:
		return fmt.Errorf("bundle %s: already finished", w.base)
	case w.state == stateAborted:
		return fmt.Errorf("bundle %s: aborted", w.base)
	case w.err != nil:
		return fmt.Errorf("bundle %s: failed earlier: %w", w.base, w.err)
	}
	return nil
}

// fail records an I/O failure: the volumes may be inconsistent now, so
// only Abort is allowed afterwards. Called with w.mu held.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// newVolume creates the next volume's .partial file and writes its marker.
// Called with w.mu held (or before w is shared).
func (w *Writer) newVolume() (*volume, error) {
	n := len(w.vols)
	name := w.base
	if n > 0 {
		name = volumeName(w.base, n)
	}
	v := &volume{num: n, name: name, path: filepath.Join(w.dir, name)}
	if err := w.checkVolumeName(v); err != nil {
		return nil, w.fail(err)
	}
	f, err := os.OpenFile(v.path+partialSuffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, w.fail(fmt.Errorf("creating volume %d: %w", n, err))
	}
	v.f = f
	v.cache = &cacheDropper{f: f}
	w.vols = append(w.vols, v)
	marker, err := json.Marshal(volumeMarker{Bundle: w.id, Volume: n})
	if err != nil {
		return nil, w.fail(err)
	}
	if err := w.appendFile(v, VolumeMarkerName, marker); err != nil {
		return nil, err
	}
	return v, nil
}

// checkVolumeName refuses to create a data volume whose name is taken by
// a file that is not a volume of the bundle being replaced: publishing the
// volume would overwrite it. Called with w.mu held.
func (w *Writer) checkVolumeName(v *volume) error {
	if v.num == 0 || slices.Contains(w.stale, v.name) {
		return nil
	}
	if _, err := os.Lstat(v.path); err == nil {
		return fmt.Errorf("creating volume %d: %s exists and is not a ferry volume: it is not overwritten; move it away or write the bundle elsewhere", v.num, v.path)
	}
	return nil
}

// header returns the exact tar header bytes (PAX when the size or name
// needs it) that precede an entry's data.
func (w *Writer) header(name string, size int64, pax map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mode := int64(0o644)
	if name == SelfName {
		mode = 0o755 // runs straight out of `tar -xf`
	}
	err := tw.WriteHeader(&tar.Header{
		Typeflag:   tar.TypeReg,
		Name:       name,
		Mode:       mode,
		Size:       size,
		ModTime:    w.mtime,
		PAXRecords: pax,
	})
	if err != nil {
		return nil, fmt.Errorf("tar header for %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// appendFile writes a small entry at the end of v and records it.
// Called with w.mu held.
func (w *Writer) appendFile(v *volume, name string, data []byte) error {
	hdr, err := w.header(name, int64(len(data)), nil)
	if err != nil {
		return err
	}
	off, err := w.writeEntry(v, hdr, data, int64(len(data)))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	w.files = append(w.files, File{Name: name, Size: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), Volume: v.num, Offset: off})
	return nil
}

// writeEntry writes hdr at the end of v, then data (which may be shorter
// than size when the rest is filled later), then the padding after size
// bytes, and returns the data offset. Called with w.mu held.
func (w *Writer) writeEntry(v *volume, hdr, data []byte, size int64) (int64, error) {
	off := v.end + int64(len(hdr))
	pad := make([]byte, paddedSize(size)-size)
	for _, c := range []struct {
		b   []byte
		off int64
	}{{hdr, v.end}, {data, off}, {pad, off + size}} {
		if len(c.b) == 0 {
			continue
		}
		if _, err := v.f.WriteAt(c.b, c.off); err != nil {
			return 0, w.fail(fmt.Errorf("writing volume %s: %w", v.name, err))
		}
	}
	v.end = off + paddedSize(size)
	return off, nil
}

// AddFile writes a small file held in memory (a manifest, a signature, a
// ConfigMap, a layout file) to volume 0.
func (w *Writer) AddFile(name string, data []byte) error {
	if err := checkEntryName(name); err != nil {
		return fmt.Errorf("adding %q to the bundle: %w", name, err)
	}
	if hex, ok := blobHex(name); ok {
		if sum := sha256.Sum256(data); hexOf(sum) != hex {
			return fmt.Errorf("adding %s: %w: got sha256 %s", name, ErrDigestMismatch, hexOf(sum))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if w.names[name] {
		return fmt.Errorf("adding %s: already in the bundle", name)
	}
	if err := w.appendFile(w.vols[0], name, data); err != nil {
		return fmt.Errorf("adding %s: %w", name, err)
	}
	w.names[name] = true
	return nil
}

// checkEntryName accepts the names a caller may add: the markers are the
// writer's own.
func checkEntryName(name string) error {
	if name == VolumeMarkerName {
		return errors.New("the volume marker is written by the bundle writer")
	}
	return checkName(name)
}

func hexOf(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:]) }

// Reserve writes the header of an entry of size bytes and returns the Slot
// its data goes to. sha256hex is the expected digest, checked by Commit;
// for a blob name it defaults to the name's digest, otherwise empty means
// any content. With volumes, reservations go to the data volumes.
func (w *Writer) Reserve(name string, size int64, sha256hex string) (*Slot, error) {
	if err := checkEntryName(name); err != nil {
		return nil, fmt.Errorf("reserving %q: %w", name, err)
	}
	if size < 0 || size > maxOffset {
		return nil, fmt.Errorf("reserving %s: size %d out of range", name, size)
	}
	if sha256hex != "" && !isSHA256Hex(sha256hex) {
		return nil, fmt.Errorf("reserving %s: sha256 %q is not 64 lower-case hex digits", name, sha256hex)
	}
	if hex, ok := blobHex(name); ok {
		if sha256hex != "" && sha256hex != hex {
			return nil, fmt.Errorf("reserving %s: expected sha256 %s differs from the name", name, sha256hex)
		}
		sha256hex = hex
	}
	hdr, err := w.header(name, size, nil)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return nil, err
	}
	if w.names[name] {
		return nil, fmt.Errorf("reserving %s: already in the bundle", name)
	}
	v, err := w.volumeFor(name, size, int64(len(hdr))+paddedSize(size))
	if err != nil {
		return nil, fmt.Errorf("reserving %s: %w", name, err)
	}
	off, err := w.writeEntry(v, hdr, nil, size)
	if err != nil {
		return nil, fmt.Errorf("reserving %s: %w", name, err)
	}
	w.names[name] = true
	s := &Slot{w: w, vol: v, name: name, offset: off, size: size, want: sha256hex, h: sha256.New()}
	w.slots = append(w.slots, s)
	return s, nil
}

// volumeFor picks the volume for an entry taking need bytes (header, data
// and padding): volume 0 without volumes, else the last data volume while
// the entry and the end of archive fit, else a new one. Called with w.mu
// held.
func (w *Writer) volumeFor(name string, size, need int64) (*volume, error) {
	limit := w.opts.VolumeSize
	if limit == 0 || name == SelfName {
		return w.vols[0], nil // ferry's binary opens the first volume, for tar -xf
	}
	if last := w.vols[len(w.vols)-1]; last.num > 0 && last.end+need+endOfArchive <= limit {
		return last, nil
	}
	v, err := w.newVolume()
	if err != nil {
		return nil, err
	}
	if v.end+need+endOfArchive > limit {
		w.warn(fmt.Sprintf("%s (%d bytes) does not fit in a volume of %d bytes: it gets volume %s of its own",
			name, size, limit, v.name))
	}
	return v, nil
}
