package graphdata

import (
	"fmt"

	"github.com/ferryhq/ferry/mirror/internal/httpget"
)

// StatusError is an HTTP answer other than 200: URL, Status (e.g. "503
// Service Unavailable") and Code. Package graph's StatusError is the same
// type.
type StatusError = httpget.StatusError

// TooLargeError means the tarball is larger than MaxCompressedSize. Its
// fields are URL, where it was read from, and Limit, the cap in bytes.
type TooLargeError httpget.TooLargeError

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: graph-data tarball larger than the %d-byte limit (graphdata.MaxCompressedSize)", e.URL, e.Limit)
}

// BoundError means the graph data goes past one of the package's bounds
// while it is read: Bound names the constant (MaxUncompressedSize,
// MaxEntries) and Limit is its value.
type BoundError struct {
	Bound string
	Limit int64
}

func (e *BoundError) Error() string {
	if e.Bound == "MaxEntries" {
		return fmt.Sprintf("more than %d entries (graphdata.%s)", e.Limit, e.Bound)
	}
	return fmt.Sprintf("more than %d bytes unpacked (graphdata.%s)", e.Limit, e.Bound)
}

// UnsafeEntryError is an archive or directory entry that ferry refuses to
// carry because it could reach outside the data: a symbolic or hard link,
// a device, an absolute path or one with "..". Name is the entry as the
// archive spells it.
type UnsafeEntryError struct {
	Name   string
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("entry %q: %s", e.Name, e.Reason)
}

// MalformedError is graph data the update service could not use: not a
// gzip tar, a channel that does not parse, a missing version. File is the
// file at fault, relative to the data's root (e.g.
// "channels/stable-4.15.yaml"; for an archive entry given twice, the
// entry's name), empty for the archive as a whole.
type MalformedError struct {
	File string
	Err  error
}

func (e *MalformedError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("malformed graph data: %v", e.Err)
	}
	return fmt.Sprintf("malformed graph data: %s: %v", e.File, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }
