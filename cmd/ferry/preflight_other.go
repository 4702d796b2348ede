//go:build !unix

package main

import "errors"

// freeSpace is not known on these systems: the check is skipped.
func freeSpace(string) (int64, error) { return 0, errors.ErrUnsupported }

// writable is not checked ahead on these systems.
func writable(string) error { return nil }
