package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/internal/strictjson"
)

const (
	// maxLockAttempts bounds how often Create opens the lock file again
	// because the writer before it removed the file between Create's open
	// and its lock: once is common when runs follow each other closely;
	// more than a few times in a row means something keeps removing it.
	maxLockAttempts = 5
	// maxLockFileSize caps what is read of a lock file for the message: a
	// holder's record is under 200 bytes.
	maxLockFileSize = 4 << 10
)

// LockName is the name of the lock file of the bundle base, beside it.
// It is hidden so that ls and a glob over the volumes (bundle*.tar) do not
// pick it up.
func LockName(base string) string { return "." + base + ".lock" }

// LockHolder is the writer holding a bundle's lock, as it recorded itself
// in the lock file.
type LockHolder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

// LockedError is returned by Create when another writer, in this process
// or another one, is writing a bundle of the same path.
type LockedError struct {
	// Path is the bundle's volume 0, Lock the lock file.
	Path, Lock string
	// Holder is nil when the holder has not recorded itself yet.
	Holder *LockHolder
}

func (e *LockedError) Error() string {
	who := "another writer (which has not recorded its pid yet)"
	if h := e.Holder; h != nil {
		who = fmt.Sprintf("another ferry, pid %d on %s, running since %s", h.PID, h.Host, h.Started.Format(time.RFC3339))
	}
	return fmt.Sprintf("bundle %s is being written by %s: wait for it to end, or write to another path (lock %s)", e.Path, who, e.Lock)
}

// outputLock is an exclusive flock(2) on the lock file of one bundle path,
// held for a Writer's life. The kernel releases it when the process dies,
// so a crash never leaves a lock that blocks; the file itself may stay.
type outputLock struct {
	f    *os.File
	path string
}

// acquireLock takes the lock of the bundle base in dir without waiting. A
// held lock gives a *LockedError; a file system without locks gives an
// error wrapping errors.ErrUnsupported.
func acquireLock(dir, base string, started time.Time) (*outputLock, error) {
	path := filepath.Join(dir, LockName(base))
	for range maxLockAttempts {
		f, err := openLockFile(path)
		if err != nil {
			return nil, err
		}
		held, err := tryLock(f)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("locking %s: %w", path, err), f.Close())
		}
		if !held {
			holder := readHolder(f)
			return nil, errors.Join(&LockedError{Path: filepath.Join(dir, base), Lock: path, Holder: holder}, f.Close())
		}
		// The writer before us removes the file, then unlocks it: if it
		// did so after our open, we hold a lock on a file nobody else
		// will find. Only a lock on the file the path names counts.
		if same, err := namesFile(path, f); err != nil || !same {
			if err := errors.Join(err, f.Close()); err != nil {
				return nil, fmt.Errorf("locking %s: %w", path, err)
			}
			continue
		}
		l := &outputLock{f: f, path: path}
		if err := l.record(started); err != nil {
			return nil, errors.Join(fmt.Errorf("locking %s: %w", path, err), l.release())
		}
		return l, nil
	}
	return nil, fmt.Errorf("locking %s: the file was replaced %d times while being locked: is something removing it?", path, maxLockAttempts)
}

func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|noFollow|noBlock, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opening lock file: %w", err), f.Close())
	}
	if !st.Mode().IsRegular() {
		return nil, errors.Join(fmt.Errorf("lock file %s is not a regular file", path), f.Close())
	}
	return f, nil
}

// namesFile reports whether path still names the open file f.
func namesFile(path string, f *os.File) (bool, error) {
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	cur, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(st, cur), nil
}

// record writes who holds the lock into the lock file, for the message a
// second writer gives.
func (l *outputLock) record(started time.Time) error {
	host, _ := os.Hostname() // only for the message; empty is fine
	data, err := json.Marshal(LockHolder{PID: os.Getpid(), Host: host, Started: started})
	if err != nil {
		return err
	}
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err = l.f.WriteAt(data, 0)
	return err
}

// readHolder reads the holder's record; nil when there is none yet or it
// cannot be read.
func readHolder(f *os.File) *LockHolder {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, maxLockFileSize))
	if err != nil || len(data) == 0 {
		return nil
	}
	var h LockHolder
	if strictjson.Decode(data, &h) != nil {
		return nil
	}
	return &h
}

// release removes the lock file and then unlocks it. Removing it while
// still holding the lock is what makes the removal safe: a writer that
// opened the file before the removal gets the lock only afterwards, sees
// that the path no longer names its file, and starts again.
func (l *outputLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	err = errors.Join(err, l.f.Close()) // closing the last descriptor unlocks
	l.f = nil
	return err
}

// CheckLock reports, with a *LockedError, whether a writer holds the lock
// of the bundle at path right now. It takes the lock for an instant only
// and creates no file; a caller uses it to fail before slow work that
// Create would then refuse. Create remains the check that counts.
func CheckLock(path string) error {
	dir, base := filepath.Dir(path), filepath.Base(path)
	lock := filepath.Join(dir, LockName(base))
	f, err := os.OpenFile(lock, os.O_RDONLY|noFollow|noBlock, 0)
	if err != nil {
		return nil // no lock file: nobody holds it; anything odd is Create's to report
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	held, err := tryLock(f)
	if err != nil || held {
		return nil // closing f drops the lock just taken
	}
	return &LockedError{Path: path, Lock: lock, Holder: readHolder(f)}
}
