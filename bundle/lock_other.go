//go:build !unix

package bundle

import (
	"errors"
	"os"
)

const (
	noFollow = 0
	noBlock  = 0
)

// tryLock reports that these systems get no lock: Create warns and writes
// without one.
func tryLock(*os.File) (bool, error) { return false, errors.ErrUnsupported }
