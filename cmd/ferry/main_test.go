package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
)

// ferry runs one command line in-process and returns its exit code and output.
// Never from parallel tests: urfave/cli keeps its help and version flags in
// package variables, which concurrent runs race on.
func ferry(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out bytes.Buffer
	var errOut lockedBuffer
	code = run(context.Background(), append([]string{"ferry"}, args...), newEnvironment(strings.NewReader(""), &out, &errOut))
	// run pointed logrus's standard logger, which containers/image logs
	// through, at errOut; so do the registries these tests run in this
	// process, whose handlers can still be answering a request the
	// command gave up on. Their late lines go nowhere.
	logrus.SetOutput(io.Discard)
	return code, out.String(), errOut.String()
}

// lockedBuffer is a bytes.Buffer safe for the command's writes and those
// of the in-process registries' logrus at the same time.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mustFerry runs a command that must succeed.
func mustFerry(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := ferry(t, args...)
	if code != 0 {
		t.Fatalf("ferry %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fixture is a path in the project's shared real-world fixtures, which CI
// places beside the checkout.
func fixture(t *testing.T, parts ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(append([]string{filepath.Dir(file), "..", "..", "..", "shared", "fixtures"}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture %s is missing (shared/ must sit beside the checkout): %v", p, err)
	}
	return p
}

// writeTemp writes data to a new file in a test directory.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// assertEmptyDir fails unless dir is missing or holds nothing.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("%s should hold nothing, holds %v", dir, names)
	}
}

func TestVersionAndUsageErrors(t *testing.T) {
	out := mustFerry(t, "version")
	for _, want := range []string{"ferry ", "commit:", "go: go1", "bundle format: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	if code, _, _ := ferry(t, "pack", "--no-such-flag", "4.15.0"); code != exitUsage {
		t.Errorf("unknown flag: exit %d, want %d", code, exitUsage)
	}
	if code, _, errOut := ferry(t, "signatures"); code != exitUsage || !strings.Contains(errOut, "RELEASE") {
		t.Errorf("missing argument: exit %d, want %d, stderr %q", code, exitUsage, errOut)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "4GiB": 4 << 30, "700MB": 700e6, "1048576": 1 << 20, "1.5k": 1536, "2 mib": 2 << 20} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"lots", "-1GiB", "0", "4XB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) succeeded", bad)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	if out := mustFerry(t, "completion", "bash"); !strings.Contains(out, "complete -o default -o bashdefault -F _ferry_complete ferry") {
		t.Errorf("bash script:\n%s", out)
	}
	if out := mustFerry(t, "completion", "zsh"); !strings.Contains(out, "compdef _ferry ferry") {
		t.Errorf("zsh script:\n%s", out)
	}
	if code, _, errOut := ferry(t, "completion", "fish"); code != exitUsage || !strings.Contains(errOut, "fish") {
		t.Errorf("unknown shell: exit %d\n%s", code, errOut)
	}
}

func TestLogFormatJSON(t *testing.T) {
	// verify logs the keys it trusts, then refuses what is not a bundle.
	notBundle := writeTemp(t, "notes.tar", []byte("not a tar at all"))
	code, _, errOut := ferry(t, "--log-format", "json", "verify", notBundle)
	if code != exitVerification {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	first, _, _ := strings.Cut(errOut, "\n")
	var line struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
	}
	if err := json.Unmarshal([]byte(first), &line); err != nil || line.Level != "INFO" || !strings.Contains(line.Msg, "release signatures verified with") {
		t.Errorf("first stderr line is not the JSON log line expected (%v): %q", err, first)
	}
	if code, _, errOut := ferry(t, "--log-format", "yaml", "version"); code != exitUsage || !strings.Contains(errOut, "yaml") {
		t.Errorf("bad --log-format: exit %d\n%s", code, errOut)
	}
}
