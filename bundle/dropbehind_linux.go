package bundle

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback starts writing the dirty pages of [off, off+n) of f to
// disk without waiting for them.
func startWriteback(f *os.File, off, n int64) error {
	return withFd(f, func(fd int) error {
		return syncRangeErr(unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE))
	})
}

// writeBackAndDrop waits until [off, off+n) of f is on disk, then drops
// it from the page cache.
func writeBackAndDrop(f *os.File, off, n int64) error {
	return withFd(f, func(fd int) error {
		const all = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
		if err := unix.SyncFileRange(fd, off, n, all); err != nil {
			return syncRangeErr(err)
		}
		// Advice only: it never changes the data, and where it is refused
		// the pages merely stay cached.
		_ = unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
		return nil
	})
}

// syncRangeErr makes a file system's refusal of sync_file_range an
// errors.ErrUnsupported; anything else is a write failure.
func syncRangeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL), errors.Is(err, unix.ESPIPE), errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("sync_file_range: %w: %w", errors.ErrUnsupported, err)
	}
	return fmt.Errorf("writing back: %w", err)
}

// withFd runs op on f's descriptor, which stays open meanwhile even if f
// is closed by another goroutine.
func withFd(f *os.File, op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = op(int(fd)) }); err != nil {
		return err
	}
	return opErr
}
