//go:build !unix

package serve

import "errors"

// ErrRootInUse is returned when another process holds a root's lock.
var ErrRootInUse = errors.New("registry root in use")

type rootLock struct{}

// lockRoot fails: without flock, a server and the garbage collector could
// not be kept apart.
func lockRoot(root, holder string) (*rootLock, error) {
	return nil, errors.New("ferry serve needs a Unix system (flock) to lock its root")
}

func (l *rootLock) unlock() {}
