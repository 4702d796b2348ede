package graphdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// readDir reads the kept files of a graph-data directory (a checkout of
// openshift/cincinnati-graph-data, or the tarball unpacked), within
// MaxUncompressedSize and MaxEntries. A kept file that is a link, or
// anything but a regular file, refuses the directory; what the service
// does not read is not looked at.
func readDir(ctx context.Context, dir string) (_ map[string][]byte, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := root.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	r := &dirReader{root: root, left: MaxUncompressedSize, files: map[string][]byte{}}
	names := []string{versionFile, rawMetadataFile}
	for _, sub := range []string{channelsDir, blockedEdgesDir} {
		listed, err := r.list(sub)
		if err != nil {
			return nil, err
		}
		names = append(names, listed...)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := r.read(name); err != nil {
			return nil, err
		}
	}
	return r.files, nil
}

// dirReader reads files under root within a budget of bytes and entries.
type dirReader struct {
	root    *os.Root
	left    int64 // bytes
	entries int
	files   map[string][]byte
}

// list names the .yaml entries of sub, counting every entry against
// MaxEntries; a missing sub lists nothing.
func (r *dirReader) list(sub string) ([]string, error) {
	f, err := r.root.Open(sub)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close() // read-only: a failed close loses nothing
	entries, err := f.ReadDir(MaxEntries - r.entries + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	r.entries += len(entries)
	if r.entries > MaxEntries {
		return nil, &BoundError{Bound: "MaxEntries", Limit: MaxEntries}
	}
	var names []string
	for _, e := range entries {
		if name := path.Join(sub, e.Name()); kept(name) {
			names = append(names, name)
		}
	}
	return names, nil
}

// read adds the file at name, which must be a regular file (not a link)
// if it exists; a missing one is left for newData to report.
func (r *dirReader) read(name string) error {
	info, err := r.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		return &UnsafeEntryError{Name: name, Reason: "a symbolic link; the graph data has none"}
	}
	if !info.Mode().IsRegular() {
		return &UnsafeEntryError{Name: name, Reason: fmt.Sprintf("not a regular file (%s)", info.Mode().Type())}
	}
	f, err := r.root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close() // read-only: a failed close loses nothing
	data, err := io.ReadAll(io.LimitReader(f, r.left+1))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r.left -= int64(len(data))
	if r.left < 0 {
		return &BoundError{Bound: "MaxUncompressedSize", Limit: MaxUncompressedSize}
	}
	r.files[name] = data
	return nil
}
