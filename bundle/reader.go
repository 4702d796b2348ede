package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/internal/regularfile"
	"github.com/ferryhq/ferry/internal/strictjson"
)

const (
	// MaxManifestSize caps a manifest read into memory; registries refuse
	// larger ones too.
	MaxManifestSize = 4 << 20
	// maxMarkerSize caps a volume marker; a real one is under 100 bytes.
	maxMarkerSize = 4 << 10
)

// ReadOptions tune Open.
type ReadOptions struct {
	// Volumes are paths of data volumes in any order, matched by their
	// markers; a volume not given is looked for beside volume 0 under its
	// name in the index.
	Volumes []string
}

// Reader gives access to the files of a bundle. Its methods may be called
// concurrently; the section readers it returns are independent.
type Reader struct {
	idx     *Index
	vols    []*openVolume
	files   map[string]File // by name; the marker is volume 0's
	markers []File          // by volume

	// where the index's data is in volume 0
	indexOffset, indexSize int64
	// the index signature entry, its bytes and the index bytes it signs;
	// nil when the bundle is not signed
	indexSig                  *headerAt
	indexBytes, indexSigBytes []byte
	closed                    bool
}

type openVolume struct {
	path string
	f    *os.File
	size int64
}

// Open opens the bundle whose volume 0 is at path: it finds the index (the
// last entry), parses and checks it, and opens every data volume, checking
// that each one's marker names this bundle and the right volume number.
// Nothing is extracted; reads go to the files' offsets.
func Open(path string, opts ReadOptions) (*Reader, error) {
	v0, err := openVolumeFile(path)
	if err != nil {
		return nil, fmt.Errorf("opening bundle: %w", err)
	}
	r := &Reader{vols: []*openVolume{v0}}
	if err := r.open(filepath.Dir(path), opts); err != nil {
		return nil, errors.Join(fmt.Errorf("opening bundle %s: %w", path, err), r.Close())
	}
	return r, nil
}

func (r *Reader) open(dir string, opts ReadOptions) error {
	if err := r.readIndex(); err != nil {
		return err
	}
	if err := r.checkMarker(r.vols[0], 0); err != nil {
		return err
	}
	r.vols = append(r.vols, make([]*openVolume, len(r.idx.Volumes)-1)...)
	if err := r.openDataVolumes(dir, opts.Volumes); err != nil {
		return err
	}
	r.files = make(map[string]File, len(r.idx.Files))
	r.markers = make([]File, len(r.idx.Volumes))
	for _, f := range r.idx.Files {
		if f.Name == VolumeMarkerName {
			r.markers[f.Volume] = f
		} else {
			r.files[f.Name] = f
		}
	}
	r.files[VolumeMarkerName] = r.markers[0]
	return nil
}

// openVolumeFile opens a volume only if it is a regular file, without
// blocking on a named pipe or a device (a *regularfile.KindError).
func openVolumeFile(path string) (*openVolume, error) {
	f, err := regularfile.Open(path, "a bundle file")
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return &openVolume{path: path, f: f, size: st.Size()}, nil
}

// readIndex walks volume 0's headers, seeking over the data, and reads
// the index: the last entry, or the one before a last IndexSignatureName.
func (r *Reader) readIndex() error {
	v := r.vols[0]
	entries, err := lastEntries(v)
	if err != nil {
		return err
	}
	index, last := entries[0], entries[1]
	if last.hdr.Name == IndexSignatureName {
		r.indexSig = &last
	} else {
		index = last
	}
	if index.hdr == nil || index.hdr.Name != IndexName || index.hdr.Typeflag != tar.TypeReg {
		name := ""
		if index.hdr != nil {
			name = index.hdr.Name
		}
		return fmt.Errorf("volume 0: the last entry is %q, not %s: the bundle is incomplete or altered", name, IndexName)
	}
	data, err := readIndexData(v, index.hdr, index.offset)
	if err != nil {
		return err
	}
	idx, err := ParseIndex(bytes.NewReader(data))
	if err != nil {
		return err
	}
	r.idx, r.indexOffset, r.indexSize = idx, index.offset, index.hdr.Size
	if r.indexSig != nil {
		if err := r.readIndexSignature(data); err != nil {
			return err
		}
	}
	return nil
}

// headerAt is an entry's header and where its data starts.
type headerAt struct {
	hdr    *tar.Header
	offset int64
}

// lastEntries walks volume 0's headers and returns its last two entries,
// the last one second.
func lastEntries(v *openVolume) ([2]headerAt, error) {
	var last [2]headerAt
	sr := io.NewSectionReader(v.f, 0, v.size)
	tr := tar.NewReader(sr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if prev := last[1]; prev.hdr != nil {
				// Name the entry it broke after: a header declaring
				// more data than the volume holds (a tar bomb) shows.
				return last, fmt.Errorf("volume 0: the tar is damaged or truncated after %q (data at offset %d, %d bytes): %w", prev.hdr.Name, prev.offset, prev.hdr.Size, err)
			}
			return last, fmt.Errorf("volume 0: the tar is damaged or truncated: %w", err)
		}
		if last[1].hdr == nil && hdr.Name != VolumeMarkerName {
			return last, fmt.Errorf("volume 0: not a ferry bundle: the first entry is %q, not %s", hdr.Name, VolumeMarkerName)
		}
		// tar.Reader has read exactly the header blocks: the position is
		// the data's offset.
		off, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return last, err
		}
		last[0], last[1] = last[1], headerAt{hdr: hdr, offset: off}
	}
	if last[1].hdr == nil {
		return last, errors.New("volume 0: not a ferry bundle: no entries")
	}
	return last, nil
}

// readIndexSignature reads the index's detached signature and keeps it with
// the index bytes it signs, for IndexSignature.
func (r *Reader) readIndexSignature(index []byte) error {
	hdr := r.indexSig.hdr
	if hdr.Typeflag != tar.TypeReg || hdr.Size <= 0 || hdr.Size > MaxIndexSignatureSize {
		return fmt.Errorf("volume 0: %s is not a regular file of 1 to %d bytes", IndexSignatureName, MaxIndexSignatureSize)
	}
	sig := make([]byte, hdr.Size)
	if _, err := io.ReadFull(io.NewSectionReader(r.vols[0].f, r.indexSig.offset, hdr.Size), sig); err != nil {
		return fmt.Errorf("volume 0: reading %s: %w", IndexSignatureName, err)
	}
	r.indexBytes, r.indexSigBytes = index, sig
	return nil
}

// IndexSignature returns the index's exact bytes and its detached
// signature, or nil, nil when the bundle is not signed. Checking the
// signature is the caller's part: this package holds no keys.
func (r *Reader) IndexSignature() (index, sig []byte) {
	return r.indexBytes, r.indexSigBytes
}

// readIndexData reads the index entry and checks it against the sha256
// its header carries.
func readIndexData(v *openVolume, hdr *tar.Header, off int64) ([]byte, error) {
	if hdr.Size > MaxIndexSize {
		return nil, fmt.Errorf("index is %d bytes, more than the %d allowed", hdr.Size, MaxIndexSize)
	}
	want, ok := strings.CutPrefix(hdr.PAXRecords[paxComment], indexSumPrefix)
	if !ok {
		return nil, errors.New("index entry carries no checksum: not written by ferry")
	}
	data, err := io.ReadAll(io.NewSectionReader(v.f, off, hdr.Size))
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	if int64(len(data)) != hdr.Size {
		return nil, fmt.Errorf("index truncated: %d of %d bytes", len(data), hdr.Size)
	}
	if got := hexOf(sha256.Sum256(data)); got != want {
		return nil, fmt.Errorf("index altered or damaged: sha256 %s, its header says %s", got, want)
	}
	return data, nil
}

// readMarker reads a volume's first entry, which must be its marker.
func readMarker(v *openVolume) (volumeMarker, error) {
	var m volumeMarker
	tr := tar.NewReader(io.NewSectionReader(v.f, 0, v.size))
	hdr, err := tr.Next()
	if err == io.EOF {
		return m, fmt.Errorf("%s: not a ferry volume: empty", v.path)
	}
	if err != nil {
		return m, fmt.Errorf("%s: not a ferry volume: %w", v.path, err)
	}
	if hdr.Name != VolumeMarkerName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxMarkerSize {
		return m, fmt.Errorf("%s: not a ferry volume: the first entry is %q, not %s", v.path, hdr.Name, VolumeMarkerName)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return m, fmt.Errorf("%s: reading volume marker: %w", v.path, err)
	}
	if err := strictjson.Decode(data, &m); err != nil || !validID(m.Bundle) {
		return m, fmt.Errorf("%s: invalid volume marker %q", v.path, data)
	}
	return m, nil
}

// checkMarker checks that v is volume num of this bundle.
func (r *Reader) checkMarker(v *openVolume, num int) error {
	m, err := readMarker(v)
	if err != nil {
		return err
	}
	if m.Bundle != r.idx.ID {
		return fmt.Errorf("%s belongs to bundle %s, not to %s", v.path, m.Bundle, r.idx.ID)
	}
	if m.Volume != num {
		return fmt.Errorf("%s holds volume %d, expected volume %d (%s): renamed?", v.path, m.Volume, num, r.idx.Volumes[num].Name)
	}
	return nil
}

// openDataVolumes opens the explicit volumes, placing each by its marker,
// then looks for the rest beside volume 0. It reports every problem.
func (r *Reader) openDataVolumes(dir string, explicit []string) error {
	var errs []error
	for _, p := range explicit {
		if err := r.placeVolume(p); err != nil {
			errs = append(errs, err)
		}
	}
	for i := 1; i < len(r.vols); i++ {
		if r.vols[i] != nil {
			continue
		}
		name := r.idx.Volumes[i].Name
		v, err := openVolumeFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("volume %d (%s) is missing: %w", i, name, err))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("volume %d: %w", i, err))
			continue
		}
		if err := r.checkMarker(v, i); err != nil {
			errs = append(errs, errors.Join(err, v.f.Close()))
			continue
		}
		r.vols[i] = v
	}
	return errors.Join(errs...)
}

// placeVolume opens an explicitly given volume and puts it where its
// marker says.
func (r *Reader) placeVolume(p string) error {
	v, err := openVolumeFile(p)
	if err != nil {
		return fmt.Errorf("opening volume: %w", err)
	}
	m, err := readMarker(v)
	if err == nil {
		err = r.placeMarked(v, m)
	}
	if err != nil {
		return errors.Join(err, v.f.Close())
	}
	return nil
}

func (r *Reader) placeMarked(v *openVolume, m volumeMarker) error {
	switch {
	case m.Bundle != r.idx.ID:
		return fmt.Errorf("%s belongs to bundle %s, not to %s", v.path, m.Bundle, r.idx.ID)
	case m.Volume < 0 || m.Volume >= len(r.vols):
		return fmt.Errorf("%s claims volume %d, but the bundle has %d volumes", v.path, m.Volume, len(r.vols))
	case m.Volume == 0:
		if st0, err := r.vols[0].f.Stat(); err == nil {
			if st, err := v.f.Stat(); err == nil && os.SameFile(st0, st) {
				return v.f.Close() // volume 0 named again: harmless
			}
		}
		return fmt.Errorf("volume 0 given twice: %s and %s", r.vols[0].path, v.path)
	case r.vols[m.Volume] != nil:
		return fmt.Errorf("volume %d given twice: %s and %s", m.Volume, r.vols[m.Volume].path, v.path)
	}
	r.vols[m.Volume] = v
	return nil
}

// Index returns the bundle's index; callers must not modify it.
func (r *Reader) Index() *Index { return r.idx }

// Paths returns the paths of the volumes, volume 0 first.
func (r *Reader) Paths() []string {
	paths := make([]string, len(r.vols))
	for i, v := range r.vols {
		paths[i] = v.path
	}
	return paths
}

// Open returns a reader of the named file's bytes, read in place. A name
// not in the index gives an error wrapping fs.ErrNotExist.
func (r *Reader) Open(name string) (*io.SectionReader, error) {
	f, ok := r.files[name]
	if !ok {
		return nil, fmt.Errorf("bundle: %s: %w", name, fs.ErrNotExist)
	}
	return io.NewSectionReader(r.vols[f.Volume].f, f.Offset, f.Size), nil
}

// ReadFile returns the bytes of a small named file, refusing one larger
// than limit before reading it.
func (r *Reader) ReadFile(name string, limit int64) ([]byte, error) {
	sr, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	if sr.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", name, sr.Size(), limit)
	}
	return io.ReadAll(sr)
}

// Blob returns a reader of the blob with digest d and its size.
func (r *Reader) Blob(d digest.Digest) (*io.SectionReader, int64, error) {
	if err := checkDigest(d); err != nil {
		return nil, 0, fmt.Errorf("bundle: blob %w", err)
	}
	sr, err := r.Open(BlobName(d))
	if err != nil {
		return nil, 0, err
	}
	return sr, sr.Size(), nil
}

// ReadImageManifest returns the bytes of the manifest with digest d,
// checked against d, refusing more than MaxManifestSize bytes.
func (r *Reader) ReadImageManifest(d digest.Digest) ([]byte, error) {
	sr, size, err := r.Blob(d)
	if err != nil {
		return nil, err
	}
	if size > MaxManifestSize {
		return nil, fmt.Errorf("bundle: manifest %s is %d bytes, more than the %d allowed", d, size, MaxManifestSize)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(sr, data); err != nil {
		return nil, fmt.Errorf("bundle: reading manifest %s: %w", d, err)
	}
	if got := digest.FromBytes(data); got != d {
		return nil, fmt.Errorf("bundle: manifest %s: %w: got %s", d, ErrDigestMismatch, got)
	}
	return data, nil
}

// Close closes the volumes.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for _, v := range r.vols {
		if v != nil {
			errs = append(errs, v.f.Close())
		}
	}
	return errors.Join(errs...)
}
