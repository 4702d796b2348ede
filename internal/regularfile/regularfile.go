// Package regularfile opens a path a user named only when it is a regular
// file, and never blocks doing so: a named pipe given where a bundle, a
// volume or an inventory belongs would otherwise hang open(2) until some
// other process writes to it, and a device would be read as if it were data.
package regularfile

import (
	"fmt"
	"io/fs"
)

// KindError says that a path names something other than a regular file.
type KindError struct {
	Path string
	// Mode is the file's type bits (fs.ModeNamedPipe, fs.ModeDir, ...).
	Mode fs.FileMode
	// Want names what the path should have been, e.g. "a bundle file".
	Want string
}

func (e *KindError) Error() string {
	return fmt.Sprintf("%s is %s, not %s", e.Path, Describe(e.Mode), e.Want)
}

// Describe names the type of a file mode for messages: "a named pipe",
// "a directory", ...
func Describe(mode fs.FileMode) string {
	switch t := mode.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a block device"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file (" + mode.Type().String() + ")"
}
