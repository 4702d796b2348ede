package main

import (
	"context"
	"errors"
)

// Exit codes scripts can rely on (documented in the README).
const (
	exitOK           = 0 // everything done
	exitFailure      = 1 // an operation failed (network, disk, registry, cluster)
	exitUsage        = 2 // the command line is wrong
	exitVerification = 3 // something did not verify: signature, digest, bundle content
	exitInterrupted  = 130
)

// codedError carries an exit code through the error chain.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// usageError marks err as a command-line mistake (exit 2).
func usageError(err error) error { return &codedError{code: exitUsage, err: err} }

// verificationError marks err as a failed verification (exit 3).
func verificationError(err error) error { return &codedError{code: exitVerification, err: err} }

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var coded *codedError
	if errors.As(err, &coded) {
		return coded.code
	}
	if errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	return exitFailure
}
