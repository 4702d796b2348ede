//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// freeSpace is the bytes an unprivileged user may still write on the file
// system holding dir.
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// writable reports whether files can be created in dir (a read-only mount
// or missing permission gives an error), without creating one.
func writable(dir string) error {
	const wantWriteSearch = 0x2 | 0x1 // W_OK | X_OK
	return syscall.Access(dir, wantWriteSearch)
}
