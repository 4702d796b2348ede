package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferryhq/ferry/mirror/registry"
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

// hints are what a user can do about a library's classified error, in the
// CLI's words: the libraries name no flags.
var hints = []struct {
	target error
	hint   string
}{
	{registry.ErrUnauthorized, "check --authfile or the pull secret"},
	{registry.ErrTLS, "give the registry's CA with --cert-dir, or use --src-tls-verify=false / --dest-tls-verify=false for a test registry"},
}

// withHint appends to err what to do about it, when ferry knows.
func withHint(err error) error {
	for _, h := range hints {
		if errors.Is(err, h.target) {
			return fmt.Errorf("%w\nhint: %s", err, h.hint)
		}
	}
	return err
}
