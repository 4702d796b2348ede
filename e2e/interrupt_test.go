//go:build unix

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// This file kills ferry with SIGKILL at many points of pack and apply, as a
// power cut or the OOM killer would, and reruns it: the rerun completes with
// exactly the fault-free result; a cut-short bundle never passes `ferry
// verify`, even renamed to look finished; a cut-short apply never leaves a
// tag naming an image whose blobs are missing. The kill points are requests
// to the registry, counted by the fault proxy: the process is killed as that
// request arrives, and the request is dropped, as if the process had died
// just before sending it.

// killPoints spreads n points over requests 1..total, both ends included.
func killPoints(total int64, n int) []int64 {
	points := make([]int64, n)
	for i := range n {
		points[i] = 1 + int64(i)*(total-1)/int64(n-1)
	}
	return points
}

// killWhen runs ferry with args in dir and kills it with SIGKILL when kill
// returns true for a request arriving at p (n counts from 1 for this run).
// That request and every later one are dropped. It reports whether the
// process was killed (false: it finished first) and its output, and returns
// once every request the process had sent is through the proxy.
func killWhen(t *testing.T, p *testbed.FaultProxy, kill func(n int64, r *http.Request) bool, dir string, args ...string) (bool, result) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(t.Context(), ferryBin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errOut
	var proc atomic.Pointer[os.Process]
	var killed, dead atomic.Bool
	started := make(chan struct{})
	p.ResetStats()
	p.OnRequest(func(n int64, r *http.Request) bool {
		if dead.Load() {
			return false
		}
		if !kill(n, r) {
			return true
		}
		<-started // the request may beat Start's return
		if pr := proc.Load(); pr != nil && !dead.Swap(true) {
			killed.Store(pr.Signal(syscall.SIGKILL) == nil)
		}
		return false
	})
	defer p.OnRequest(nil)
	err := cmd.Start()
	if err == nil {
		proc.Store(cmd.Process)
	}
	close(started)
	if err != nil {
		t.Fatalf("start ferry: %v", err)
	}
	err = cmd.Wait()
	p.WaitIdle()
	res := result{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.code = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return killed.Load(), res
		}
	} else if err != nil {
		t.Fatalf("run ferry: %v", err)
	}
	return false, res
}

// atRequest kills at the k-th request of the run.
func atRequest(k int64) func(int64, *http.Request) bool {
	return func(n int64, _ *http.Request) bool { return n >= k }
}

// assertCutShortRefused checks what a killed pack left in dir: no file under
// a finished bundle's name, and nothing that `ferry verify` accepts, whether
// under its own name or with the .partial suffixes taken off, as a user
// might, and then verify also refuses it.
func assertCutShortRefused(t *testing.T, dir, keyFile, when string) {
	t.Helper()
	left := bundleFiles(t, dir, "bundle.tar")
	renamed := t.TempDir()
	for _, name := range left {
		final, ok := strings.CutSuffix(name, ".partial")
		if !ok {
			t.Errorf("%s: %s is left under a finished bundle's name", when, name)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(renamed, final), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Only .partial files are left: there is no bundle to verify.
	wantExit(t, when+": verify", ferryIn(t, dir, "verify", "bundle.tar", "--keyring", keyFile, "--quiet"), codeFailure,
		"bundle bundle.tar: no such file or directory")
	if _, err := os.Stat(filepath.Join(renamed, "bundle.tar")); err == nil {
		wantExit(t, when+": verify of the .partial files renamed", ferryIn(t, renamed, "verify", "bundle.tar", "--keyring", keyFile, "--quiet"),
			codeVerification, "not ferry-index.json")
	}
}

// TestInterruptPack kills one pack at 10 points spread over its requests,
// each run starting over in the same directory (so each also cleans up
// after the previous one), then lets it finish.
func TestInterruptPack(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	want := readBundleContent(t, b.pack(t))
	total := int64(b.proxy.Stats().Requests)
	if total < 30 {
		t.Fatalf("a pack makes only %d requests", total)
	}
	dir := t.TempDir()
	args := b.packArgs(filepath.Join(dir, "bundle.tar"), "--volume-size", "128KiB")
	partials := 0
	for _, k := range killPoints(total, 10) {
		when := fmt.Sprintf("killed at request %d of %d", k, total)
		killed, res := killWhen(t, b.proxy, atRequest(k), dir, args...)
		if !killed {
			t.Fatalf("%s: pack was not killed (exit %d):\n%s", when, res.code, res.stderr)
		}
		partials += len(bundleFiles(t, dir, "bundle.tar"))
		assertCutShortRefused(t, dir, b.keyFile, when)
	}
	if partials == 0 {
		t.Error("no kill left a .partial file: none came during the writing")
	}
	res := ferryIn(t, dir, args...)
	wantExit(t, "pack after the kills", res, codeOK, "removed leftovers of an interrupted pack")
	for _, name := range bundleFiles(t, dir, "bundle.tar") {
		if strings.HasSuffix(name, ".partial") {
			t.Errorf("%s left after a finished pack", name)
		}
	}
	assertSameContent(t, readBundleContent(t, filepath.Join(dir, "bundle.tar")), want)
	wantExit(t, "verify", ferryIn(t, dir, "verify", "bundle.tar", "--keyring", b.keyFile, "--quiet"), codeOK)
}

// TestInterruptPackWithCache kills a pack with --cache-dir twice in the
// middle of its blobs: the reruns take what the cache verifiably holds,
// fetch the rest, and the bundle is the fault-free one.
func TestInterruptPackWithCache(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	want := readBundleContent(t, b.pack(t))
	dir, cache := t.TempDir(), t.TempDir()
	args := b.packArgs(filepath.Join(dir, "bundle.tar"), "--cache-dir", cache, "--parallel", "2")
	afterBlobs := func(n int64) func(int64, *http.Request) bool {
		var blobs atomic.Int64
		return func(_ int64, r *http.Request) bool { return isBlobGet(r) && blobs.Add(1) > n }
	}
	for i := range 2 {
		if killed, res := killWhen(t, b.proxy, afterBlobs(8), dir, args...); !killed {
			t.Fatalf("run %d was not killed (exit %d):\n%s", i+1, res.code, res.stderr)
		}
		assertCutShortRefused(t, dir, b.keyFile, fmt.Sprintf("run %d", i+1))
	}
	b.proxy.ResetStats()
	mustFerry(t, args...)
	assertSameContent(t, readBundleContent(t, filepath.Join(dir, "bundle.tar")), want)
	if fetched := b.proxy.Stats().BlobBytes; fetched >= b.rel.Bytes {
		t.Errorf("the last run fetched %d bytes of blobs, all %d of them: the cache was not used", fetched, b.rel.Bytes)
	}
	// Whatever the kills interrupted, every blob the cache holds under a
	// digest is that digest's content.
	err := filepath.WalkDir(cache, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		if got := sha256File(t, path); got != d.Name() {
			t.Errorf("cache entry %s holds content with sha256 %s", path, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestInterruptApply kills apply at 10 points spread over its requests, each
// into a target of its own: no kill leaves a tag naming an incomplete image,
// and a rerun completes the target as a fault-free apply does.
func TestInterruptApply(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	bundlePath := b.pack(t)
	clean := testbed.NewMemoryRegistry(t)
	cp := testbed.NewFaultProxy(t, clean.URL)
	mustFerry(t, applyArgs(t, bundlePath, b.keyFile, cp.Host)...)
	total := int64(cp.Stats().Requests)
	want := targetState(t, clean, targetRepo)
	if total < 100 {
		t.Fatalf("an apply makes only %d requests", total)
	}
	for _, k := range killPoints(total, 10) {
		t.Run(fmt.Sprintf("request %d of %d", k, total), func(t *testing.T) {
			t.Parallel()
			target := testbed.NewMemoryRegistry(t)
			p := testbed.NewFaultProxy(t, target.URL)
			args := applyArgs(t, bundlePath, b.keyFile, p.Host)
			if killed, res := killWhen(t, p, atRequest(k), t.TempDir(), args...); !killed {
				t.Fatalf("apply was not killed (exit %d):\n%s", res.code, res.stderr)
			}
			assertTagsComplete(t, target, targetRepo)
			mustFerry(t, args...)
			assertSameTarget(t, target, want)
		})
	}
}
