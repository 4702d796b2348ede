//go:build !linux

package bundle

import (
	"errors"
	"os"
)

// startWriteback is Linux's sync_file_range; elsewhere the page cache is
// left to the kernel.
func startWriteback(*os.File, int64, int64) error { return errors.ErrUnsupported }

func writeBackAndDrop(*os.File, int64, int64) error { return errors.ErrUnsupported }
