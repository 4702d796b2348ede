//go:build unix

package serve

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFileName is the lock a writing server and the garbage collector
// take on a root (flock, exclusive), with the holder's pid and name in it.
const lockFileName = "serve.lock"

// maxLockFile caps what is read of the lock file: a pid and a name.
const maxLockFile = 4 << 10

// rootLock is an exclusive flock on a root's lock file; the kernel drops it
// when the process ends, however it ends.
type rootLock struct{ f *os.File }

// ErrRootInUse is returned when another process holds a root's lock.
var ErrRootInUse = errors.New("registry root in use")

// lockRoot takes the root's lock for holder (say "ferry serve"), or fails
// at once with ErrRootInUse naming the process that holds it.
func lockRoot(root, holder string) (*rootLock, error) {
	path := filepath.Join(root, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		data, _ := io.ReadAll(io.LimitReader(f, maxLockFile))
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := strings.TrimSpace(string(data))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("%w: %s holds %s", ErrRootInUse, who, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Who holds it is for the message of whoever is refused; failing to
	// write it does not weaken the lock.
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%s (pid %d)\n", holder, os.Getpid())
	return &rootLock{f: f}, nil
}

// unlock releases the lock; the file stays, so that it never names a
// process that is gone while someone else holds it.
func (l *rootLock) unlock() {
	_ = l.f.Truncate(0)
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
}
