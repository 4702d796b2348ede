//go:build unix

package regularfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// openBounded runs Open in a goroutine and fails the test, instead of
// hanging it, if Open has not returned by the test's own deadline.
func openBounded(t *testing.T, path string) (*os.File, error) {
	t.Helper()
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := Open(path, "a bundle file")
		done <- result{f, err}
	}()
	deadline, ok := t.Deadline()
	if !ok {
		r := <-done
		return r.f, r.err
	}
	timer := time.NewTimer(time.Until(deadline) - time.Second)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.f, r.err
	case <-timer.C:
		t.Fatalf("Open(%s) blocked until the test's deadline", path)
		return nil, nil
	}
}

func TestOpenRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "bundle.tar")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.tar")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		mode fs.FileMode
		says string
	}{
		{fifo, fs.ModeNamedPipe, fifo + " is a named pipe, not a bundle file"},
		{link, fs.ModeNamedPipe, link + " is a named pipe, not a bundle file"},
		{dir, fs.ModeDir, dir + " is a directory, not a bundle file"},
		{os.DevNull, fs.ModeDevice | fs.ModeCharDevice, os.DevNull + " is a character device, not a bundle file"},
	} {
		f, err := openBounded(t, tc.path)
		var kind *KindError
		if !errors.As(err, &kind) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%s): %v, want a *KindError", tc.path, err)
			continue
		}
		if kind.Mode != tc.mode || err.Error() != tc.says {
			t.Errorf("Open(%s): mode %v, %q; want mode %v, %q", tc.path, kind.Mode, err, tc.mode, tc.says)
		}
	}
}

func TestOpenReadsRegularFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.tar")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, link} {
		f, err := openBounded(t, p)
		if err != nil {
			t.Fatalf("Open(%s): %v", p, err)
		}
		buf := make([]byte, 8)
		n, err := f.ReadAt(buf, 0)
		if string(buf[:n]) != "data" {
			t.Errorf("Open(%s): read %q (%v), want %q", p, buf[:n], err, "data")
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
	if _, err := openBounded(t, filepath.Join(dir, "gone.tar")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file: %v, want fs.ErrNotExist", err)
	}
}
