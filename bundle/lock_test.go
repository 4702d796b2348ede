package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondWriterFailsAtOnce: while one writer writes a path, a second
// one fails at once, naming the first, and touches none of its files; the
// first then finishes a bundle that verifies.
func TestSecondWriterFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	first, err := Create(path, WriteOptions{VolumeSize: MinVolumeSize})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Abort() }()
	data := make([]byte, 40<<10)
	slot, err := first.Reserve("mirror/data", int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	before := listDir(t, dir)

	for _, opts := range []WriteOptions{{}, {Force: true}, {VolumeSize: MinVolumeSize, Force: true}} {
		second, err := Create(path, opts)
		if err == nil {
			_ = second.Abort()
			t.Fatalf("a second writer with %+v was created", opts)
		}
		var locked *LockedError
		if !errors.As(err, &locked) || locked.Holder == nil || locked.Holder.PID != os.Getpid() {
			t.Fatalf("second writer with %+v: %v, want a *LockedError naming pid %d", opts, err, os.Getpid())
		}
		for _, want := range []string{path, fmt.Sprintf("pid %d", os.Getpid()), "being written by another ferry"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
	}
	if err := CheckLock(path); !errors.As(err, new(*LockedError)) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("CheckLock while a writer holds the lock: %v", err)
	}
	if got := listDir(t, dir); !slicesEqual(got, before) {
		t.Fatalf("the second writers changed the directory: %v, was %v", got, before)
	}
	if err := fill(slot, data); err != nil {
		t.Fatal(err)
	}
	if err := first.Finish(&Index{}); err != nil {
		t.Fatal(err)
	}
	if rep, err := openVerify(t, path, ReadOptions{}); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Err())
	}
	if _, err := os.Lstat(filepath.Join(dir, LockName("bundle.tar"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock file is still there after Finish: %v", err)
	}
	if err := CheckLock(path); err != nil {
		t.Errorf("CheckLock after Finish: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, LockName("bundle.tar"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckLock left a lock file: %v", err)
	}
	// Released: the next writer gets the path (and needs Force).
	next, err := Create(path, WriteOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Abort(); err != nil {
		t.Fatal(err)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// TestLockReleasedByAbort: Abort, like Finish, gives the path up.
func TestLockReleasedByAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	w, err := Create(path, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Fatalf("left behind by Abort: %v", got)
	}
	w, err = Create(path, WriteOptions{})
	if err != nil {
		t.Fatalf("create after an abort: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
}

// TestStaleLockFileDoesNotBlock: a lock file left by a writer that died
// (the kernel dropped its lock) is taken over, whatever it holds.
func TestStaleLockFileDoesNotBlock(t *testing.T) {
	for name, content := range map[string]string{
		"a dead writer's record": `{"pid":999999,"host":"gone","started":"2020-01-02T03:04:05Z"}`,
		"garbage":                "\x00not json",
		"empty":                  "",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, LockName("b.tar")), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := Create(filepath.Join(dir, "b.tar"), WriteOptions{})
			if err != nil {
				t.Fatalf("create beside a stale lock file: %v", err)
			}
			if err := w.Finish(&Index{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLockOfRemovedFileIsRetaken: a writer that opened the lock file just
// before the holder removed it (at Finish) and then got the lock holds a
// lock nobody else sees; acquireLock notices and starts again, so that it
// and a third writer cannot both believe they hold the path.
func TestLockOfRemovedFileIsRetaken(t *testing.T) {
	dir := t.TempDir()
	started := time.Now()
	held, err := acquireLock(dir, "b.tar", started)
	if err != nil {
		t.Fatal(err)
	}
	early, err := openLockFile(filepath.Join(dir, LockName("b.tar")))
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	if err := held.release(); err != nil {
		t.Fatal(err)
	}
	if ok, err := tryLock(early); err != nil || !ok {
		t.Fatalf("locking the removed file: %v %v", ok, err)
	}
	if same, err := namesFile(filepath.Join(dir, LockName("b.tar")), early); err != nil || same {
		t.Fatalf("namesFile of a removed lock file: %v %v, want false", same, err)
	}
	// A new writer locks a new file, which the early one's lock does not
	// cover, and a third writer is refused.
	next, err := acquireLock(dir, "b.tar", started)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = next.release() }()
	if _, err := acquireLock(dir, "b.tar", started); !errors.As(err, new(*LockedError)) {
		t.Fatalf("third writer: %v, want a *LockedError", err)
	}
}

// TestLockFileIsNotFollowed: a symbolic link planted as the lock file is
// not followed (ferry would truncate its target).
func TestLockFileIsNotFollowed(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, LockName("b.tar"))); err != nil {
		t.Fatal(err)
	}
	if w, err := Create(filepath.Join(dir, "b.tar"), WriteOptions{}); err == nil {
		_ = w.Abort()
		t.Fatal("created a bundle through a symbolic link as its lock file")
	}
	if data, err := os.ReadFile(victim); err != nil || string(data) != "keep me" {
		t.Fatalf("the link's target: %q %v", data, err)
	}
}
