//go:build unix

package regularfile

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// Open opens path (following symbolic links) for reading if it is a
// regular file, and returns a *KindError naming what it is otherwise;
// want names what the path should be ("a bundle file"). The type is checked
// before opening, and again on the opened descriptor, which is opened
// non-blocking so that a file swapped for a named pipe in between cannot
// block either; the descriptor is made blocking again once it is known to be
// a regular file.
func Open(path, want string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &KindError{Path: path, Mode: st.Mode().Type(), Want: want}
	}
	fd, err := openNonblocking(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var sst syscall.Stat_t
	if err := syscall.Fstat(fd, &sst); err != nil {
		return nil, errors.Join(&fs.PathError{Op: "stat", Path: path, Err: err}, syscall.Close(fd))
	}
	if mode := typeOf(uint32(sst.Mode)); mode != 0 { // Mode is uint16 on darwin
		return nil, errors.Join(&KindError{Path: path, Mode: mode, Want: want}, syscall.Close(fd))
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		return nil, errors.Join(&fs.PathError{Op: "open", Path: path, Err: err}, syscall.Close(fd))
	}
	return os.NewFile(uintptr(fd), path), nil
}

func openNonblocking(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// typeOf maps the S_IFMT bits of a stat to the fs.FileMode type bits; a
// regular file gives 0.
func typeOf(m uint32) fs.FileMode {
	switch m & syscall.S_IFMT {
	case syscall.S_IFREG:
		return 0
	case syscall.S_IFDIR:
		return fs.ModeDir
	case syscall.S_IFIFO:
		return fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		return fs.ModeSocket
	case syscall.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		return fs.ModeDevice
	case syscall.S_IFLNK:
		return fs.ModeSymlink
	}
	return fs.ModeIrregular
}
