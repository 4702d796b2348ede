package fileio

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.yaml")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	st, _ := os.Stat(path)
	if err != nil || string(data) != "new" || st.Mode().Perm() != 0o644 {
		t.Fatalf("got %q (%v), mode %v", data, err, st.Mode())
	}
	// A directory in the way: the write fails, nothing is left behind.
	blocked := filepath.Join(dir, "sub")
	if err := os.Mkdir(blocked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(blocked, []byte("x"), 0o644); err == nil {
		t.Fatal("replaced a directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("left behind: %v", entries)
	}
	if err := WriteAtomic(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Fatal("wrote into a missing directory")
	}
}

type failingCloser struct{}

func (failingCloser) Close() error { return errors.New("disk gone") }

func TestCloseInto(t *testing.T) {
	var err error
	CloseInto(&err, failingCloser{}, "f")
	if err == nil || err.Error() != "close f: disk gone" {
		t.Fatalf("got %v", err)
	}
	first := errors.New("first")
	err = first
	CloseInto(&err, failingCloser{}, "f")
	if err != first {
		t.Fatalf("a close error replaced the first error: %v", err)
	}
}
