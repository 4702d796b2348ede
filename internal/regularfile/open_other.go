//go:build !unix

package regularfile

import (
	"errors"
	"os"
)

// Open opens path for reading if it is a regular file, and returns a
// *KindError naming what it is otherwise; want names what the path should
// be ("a bundle file"). Named pipes do not block an open on these systems.
func Open(path, want string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	if !st.Mode().IsRegular() {
		return nil, errors.Join(&KindError{Path: path, Mode: st.Mode().Type(), Want: want}, f.Close())
	}
	return f, nil
}
