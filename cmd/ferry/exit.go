package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/ferryhq/ferry/internal/regularfile"
	"github.com/ferryhq/ferry/mirror/registry"
)

// Exit codes scripts can rely on, by cause (the README's "Exit codes"
// table, which e2e/exitcodes_test.go holds the binary to). A command checks
// its arguments first, then the local files they name, then the network and
// the cluster, so that the first mistake is the one reported.
const (
	exitOK = 0 // everything done
	// exitFailure: an operation failed: the network, a registry, the
	// cluster, the disk, or a file the command line names that does not
	// exist or cannot be read or written.
	exitFailure = 1
	// exitUsage: the command line is wrong as written: an unknown command
	// or flag, a missing argument, a value of the wrong form (a file that
	// exists but does not parse is one), a path naming the wrong kind of
	// file, an output that exists without --force.
	exitUsage = 2
	// exitVerification: something was checked and refused: a signature,
	// a digest, a bundle's content.
	exitVerification = 3
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

// fileArgError classifies the failure to use a file the command line
// names: one that does not exist or cannot be opened or read (an
// *fs.PathError) is an operation that failed (exit 1), as the same
// command line may work once the file is there; one that is there but is
// the wrong kind of file, or does not parse, is a usage error (exit 2).
func fileArgError(err error) error {
	var pathErr *fs.PathError
	var kindErr *regularfile.KindError
	if errors.As(err, &pathErr) && !errors.As(err, &kindErr) {
		return err
	}
	return usageError(err)
}

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
