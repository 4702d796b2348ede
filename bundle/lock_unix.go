//go:build unix

package bundle

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// noFollow keeps the lock file from being a symbolic link planted to make
// ferry truncate another file.
const noFollow = syscall.O_NOFOLLOW

// noBlock keeps a named pipe planted as the lock file from blocking the
// open; the file is then refused as not regular.
const noBlock = syscall.O_NONBLOCK

// tryLock takes an exclusive flock on f without waiting; false means
// another open file description holds it. flock locks belong to the open
// file description, so two Writers in one process exclude each other too.
func tryLock(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ENOLCK), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
			return false, fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
		}
		return false, err
	}
}
