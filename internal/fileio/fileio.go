// Package fileio holds the one way ferry writes a small output file and the
// one way it folds a Close error into a function's result.
package fileio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteAtomic writes data to path so that a reader sees either the old file
// or the whole new one: a temporary file with a unique name in the same
// directory (so two writers never share it), written, synced, given perm and
// renamed into place. On failure the temporary file is removed and path is
// untouched. The directory must exist.
func WriteAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreClosed(f.Close()))
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	// CreateTemp makes 0600 whatever the umask; the file is meant to be
	// as readable as any other output.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// CloseInto closes c and, when the function has not failed yet, makes a
// close failure its error: use it as `defer fileio.CloseInto(&err, f, path)`
// with a named result.
func CloseInto(errp *error, c io.Closer, what string) {
	if err := c.Close(); err != nil && *errp == nil {
		*errp = fmt.Errorf("close %s: %w", what, err)
	}
}
