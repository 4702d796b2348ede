//go:build unix

package bundle

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/regularfile"
)

// openBounded runs Open in a goroutine and fails the test, instead of
// hanging it, if Open has not returned by the test's own deadline.
func openBounded(t *testing.T, path string, opts ReadOptions) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		r, err := Open(path, opts)
		if err == nil {
			err = errors.Join(errors.New("opened"), r.Close())
		}
		done <- err
	}()
	deadline, ok := t.Deadline()
	if !ok {
		return <-done
	}
	timer := time.NewTimer(time.Until(deadline) - time.Second)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		t.Fatalf("Open(%s) blocked until the test's deadline", path)
		return nil
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesNamedPipes: a named pipe as the bundle, as a volume found
// by name, or as a volume given explicitly is refused, never opened.
func TestOpenRefusesNamedPipes(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.tar")
	mkfifo(t, fifo)
	err := openBounded(t, fifo, ReadOptions{})
	var kind *regularfile.KindError
	if !errors.As(err, &kind) || kind.Mode != fs.ModeNamedPipe || !strings.Contains(err.Error(), fifo+" is a named pipe, not a bundle file") {
		t.Fatalf("Open of a named pipe: %v", err)
	}

	path := filepath.Join(dir, "bundle.tar")
	idx := writeFixture(t, path, WriteOptions{VolumeSize: 128 << 10}, newFixture(2, [4]int{100 << 10, 90 << 10, 60 << 10, 1}))
	if len(idx.Volumes) < 2 {
		t.Fatalf("%d volumes, want some data volumes", len(idx.Volumes))
	}
	vol1 := filepath.Join(dir, idx.Volumes[1].Name)
	moved := filepath.Join(t.TempDir(), idx.Volumes[1].Name)
	if err := os.Rename(vol1, moved); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, vol1)
	err = openBounded(t, path, ReadOptions{})
	if !errors.As(err, &kind) || !strings.Contains(err.Error(), vol1+" is a named pipe") {
		t.Errorf("Open with volume 1 a named pipe: %v", err)
	}
	err = openBounded(t, path, ReadOptions{Volumes: []string{fifo}})
	if !errors.As(err, &kind) || !strings.Contains(err.Error(), fifo+" is a named pipe") {
		t.Errorf("Open with a named pipe given as a volume: %v", err)
	}
	// The real volume given explicitly still opens the bundle.
	if rep, err := openVerify(t, path, ReadOptions{Volumes: []string{moved}}); err != nil || !rep.OK() {
		t.Errorf("with the real volume given: %v %v", err, rep.Err())
	}
}

// TestCreateRefusesSpecialOutput: a directory, a named pipe or a device
// at the bundle's path is never replaced, even with Force.
func TestCreateRefusesSpecialOutput(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "out.tar")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "pipe.tar")
	mkfifo(t, fifo)
	for _, tc := range []struct{ path, says string }{
		{sub, sub + " is a directory, not a bundle file"},
		{fifo, fifo + " is a named pipe, not a bundle file"},
	} {
		for _, force := range []bool{false, true} {
			w, err := Create(tc.path, WriteOptions{Force: force})
			if err == nil {
				_ = w.Abort()
				t.Fatalf("Create(%s, Force %v) succeeded", tc.path, force)
			}
			if !errors.As(err, new(*regularfile.KindError)) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Create(%s, Force %v): %v, want %q", tc.path, force, err, tc.says)
			}
		}
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"out.tar", "pipe.tar"}) {
		t.Errorf("left in the directory: %v", got)
	}
}

// foreignFiles writes files named like data volumes of a bundle that no
// ferry wrote, and returns their contents by name.
func foreignFiles(t *testing.T, dir string, names ...string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, name := range names {
		data := []byte("the user's own " + name)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	return files
}

func assertUntouched(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q %v, want it untouched", name, got, err)
		}
	}
}

// TestForceRemovesOnlyFerryVolumes: overwriting a bundle with Force
// removes the old bundle's data volumes, found by their markers, and
// leaves files merely named like volumes (and a named pipe) alone.
func TestForceRemovesOnlyFerryVolumes(t *testing.T) {
	for _, base := range []string{"out.tar", "out"} {
		t.Run(base, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, base)
			old := writeFixture(t, path, WriteOptions{VolumeSize: 128 << 10}, newFixture(4, [4]int{100 << 10, 90 << 10, 60 << 10, 1}))
			if len(old.Volumes) < 3 {
				t.Fatalf("%d volumes, want at least 3", len(old.Volumes))
			}
			foreign := foreignFiles(t, dir, volumeName(base, 2024), volumeName(base, 12345))
			pipe := volumeName(base, 7)
			mkfifo(t, filepath.Join(dir, pipe))
			var warnings []string
			writeFixture(t, path, WriteOptions{Force: true, Warn: func(m string) { warnings = append(warnings, m) }}, smallFixture())
			assertUntouched(t, dir, foreign)
			want := []string{base, pipe, volumeName(base, 12345), volumeName(base, 2024)}
			slices.Sort(want)
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Errorf("after the forced overwrite: %v, want %v", got, want)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], volumeName(base, 2024)) || !strings.Contains(warnings[0], pipe) {
				t.Errorf("warnings: %q, want one naming the files left alone", warnings)
			}
			if rep, err := openVerify(t, path, ReadOptions{}); err != nil || !rep.OK() {
				t.Fatalf("verify: %v %v", err, rep.Err())
			}
		})
	}
}

// TestForeignVolumeNameIsNotOverwritten: a file named like volume 1 that
// no ferry wrote is neither taken for an existing bundle nor replaced by a
// new volume 1, with or without Force: a bundle that needs no data volume
// is written beside it, one that needs volume 1 fails before writing into
// that name.
func TestForeignVolumeNameIsNotOverwritten(t *testing.T) {
	for _, base := range []string{"out.tar", "out"} {
		t.Run(base, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, base)
			foreign := foreignFiles(t, dir, volumeName(base, 1))
			// No bundle is there: Create needs no Force.
			writeFixture(t, path, WriteOptions{}, smallFixture())
			assertUntouched(t, dir, foreign)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			for _, force := range []bool{false, true} {
				w, err := Create(path, WriteOptions{VolumeSize: MinVolumeSize, Force: force})
				if err != nil {
					t.Fatal(err)
				}
				_, err = w.Reserve("mirror/data", 40<<10, "")
				if err == nil || !strings.Contains(err.Error(), volumeName(base, 1)+" exists and is not a ferry volume") {
					t.Errorf("Force %v: reserving into a new volume 1: %v", force, err)
				}
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
				assertUntouched(t, dir, foreign)
			}
		})
	}
}
