// Package e2e runs the ferry binary, as users do, against the test bed:
// registries in separate processes, a signature store, keys made here and,
// when built, a real kube-apiserver.
package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// ferryBin is the binary under test: $FERRY_BIN (make test sets it), else
// one built for this run.
var ferryBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ferryBin = os.Getenv("FERRY_BIN")
	if ferryBin == "" {
		dir, err := os.MkdirTemp("", "ferry-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		ferryBin = filepath.Join(dir, "ferry")
		cmd := exec.Command("go", "build", "-o", ferryBin, "./cmd/ferry")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build ferry: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// result is one finished ferry run.
type result struct {
	code           int
	stdout, stderr string
}

// runFerry runs the binary; with echo, the command and its output also go
// to w as they happen (the demo).
func runFerry(t *testing.T, w io.Writer, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(t.Context(), ferryBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if w != nil {
		fmt.Fprintf(w, "\n$ ferry %s\n", strings.Join(args, " "))
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, w), io.MultiWriter(&errOut, w)
	}
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run ferry: %v", err)
	}
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func mustRun(t *testing.T, w io.Writer, args ...string) result {
	t.Helper()
	res := runFerry(t, w, args...)
	if res.code != 0 {
		t.Fatalf("ferry %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}
