//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
)

// This file holds pack and apply to failing before their work, with a
// message that names the cause: a second pack of the same output while the
// first runs, a named pipe given as a bundle, a volume or an inventory, an
// output that is a directory or a file, a disk too small, and a layer size
// no registry could mean.

// holdBlob makes the proxy hold every GET of blob d until release is
// called: arrived is closed when the first such request comes in. The hold
// ends when the test does, whatever happened.
func holdBlob(t *testing.T, p *testbed.FaultProxy, d digest.Digest) (arrived <-chan struct{}, release func()) {
	t.Helper()
	in, out := make(chan struct{}), make(chan struct{})
	var inOnce, outOnce sync.Once
	release = func() { outOnce.Do(func() { close(out) }) }
	p.OnRequest(func(_ int64, r *http.Request) bool {
		if isBlobGet(r) && strings.HasSuffix(r.URL.Path, d.String()) {
			inOnce.Do(func() { close(in) })
			<-out
		}
		return true
	})
	t.Cleanup(func() {
		release()
		p.OnRequest(nil)
	})
	return in, release
}

// TestWriterOneAtATime: while one pack writes a bundle (held by the proxy in
// the middle of its blobs), a second pack of the same output, with or
// without --force, fails at once naming the first one's pid and touches none
// of its files; the first then finishes a bundle that verifies.
func TestWriterOneAtATime(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 2})
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle.tar")
	arrived, release := holdBlob(t, b.proxy, componentLayer(t, b.rel))

	var stdout, stderr bytes.Buffer
	first := exec.CommandContext(t.Context(), ferryBin, b.packArgs(out)...)
	first.Dir, first.Stdout, first.Stderr = dir, &stdout, &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = first.Wait(); close(exited) }()
	t.Cleanup(func() { release(); <-exited })
	select {
	case <-arrived:
	case <-exited:
		t.Fatalf("the first pack ended (%v) before fetching the held layer:\n%s", waitErr, lastLines(stderr.String(), 20))
	}
	before := listFiles(t, dir)
	if !slices.Contains(before, "bundle.tar.partial") || !slices.Contains(before, bundle.LockName("bundle.tar")) {
		t.Fatalf("while the first pack runs the directory holds %v, want its .partial and lock files", before)
	}

	holder := fmt.Sprintf("pid %d", first.Process.Pid)
	for _, extra := range [][]string{nil, {"--force"}} {
		what := "a second pack " + strings.Join(extra, " ")
		wantExit(t, what, ferryIn(t, dir, b.packArgs(out, extra...)...), codeFailure,
			"bundle "+out+" is being written by another ferry", holder)
		if got := listFiles(t, dir); !slices.Equal(got, before) {
			t.Errorf("%s changed the directory: %v, was %v", what, got, before)
		}
	}

	release()
	<-exited
	if waitErr != nil {
		t.Fatalf("the first pack: %v\n%s", waitErr, lastLines(stderr.String(), 20))
	}
	wantExit(t, "verify of the first pack's bundle", ferryIn(t, dir, "verify", "bundle.tar", "--keyring", b.keyFile, "--quiet"), codeOK)
	if got := listFiles(t, dir); !slices.Equal(got, []string{"bundle.tar"}) {
		t.Errorf("after the first pack the directory holds %v, want bundle.tar alone", got)
	}
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWriterNamedPipes: a named pipe given where a bundle, a volume, an
// inventory or a signature file belongs is refused at once as a usage error naming it (ferry
// used to block in open for ever); one found beside a bundle as its volume
// makes the bundle fail to verify. Nothing is pushed.
func TestWriterNamedPipes(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 2})
	good := b.pack(t, "--volume-size", "64KiB", "--no-self")
	fifo := mkfifo(t, filepath.Join(t.TempDir(), "bundle.tar"))
	target := testbed.NewMemoryRegistry(t)
	says := fifo + " is a named pipe, not a bundle file"

	wantExit(t, "verify of a named pipe", ferryRun(t, "verify", fifo, "--keyring", b.keyFile, "--quiet"), codeUsage, says)
	wantExit(t, "inspect of a named pipe", ferryRun(t, "inspect", fifo), codeUsage, says)
	wantExit(t, "apply of a named pipe", ferryRun(t, applyArgs(t, fifo, b.keyFile, target.Host)...), codeUsage, says)
	wantExit(t, "verify with a named pipe as a volume", ferryRun(t, "verify", good, fifo, "--keyring", b.keyFile, "--quiet"), codeUsage, says)
	wantExit(t, "pack --since a named pipe", ferryRun(t, b.packArgs(filepath.Join(t.TempDir(), "b.tar"), "--since", fifo)...), codeUsage,
		fifo+" is a named pipe, not an inventory file")
	wantExit(t, "verify --keyring a named pipe", ferryRun(t, "verify", good, "--keyring", fifo, "--quiet"), codeUsage,
		fifo+" is a named pipe, not a keyring file")
	wantExit(t, "pack -f a named pipe", ferryRun(t, "pack", "-f", fifo, "--print-config"), codeUsage,
		fifo+" is a named pipe, not a ferry.yaml file")
	wantExit(t, "signatures verify of a named pipe", ferryRun(t, "signatures", "verify", "--digest", b.rel.Digest.String(), "--keyring", b.keyFile, fifo),
		codeUsage, fifo+" is a named pipe, not a signature file")

	// A data volume replaced by a named pipe, found beside the bundle.
	vol1 := filepath.Join(filepath.Dir(good), "bundle.001.tar")
	if err := os.Remove(vol1); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, vol1)
	wantExit(t, "verify with volume 1 a named pipe", ferryRun(t, "verify", good, "--keyring", b.keyFile, "--quiet"), codeVerification,
		vol1+" is a named pipe, not a bundle file")
	wantExit(t, "apply with volume 1 a named pipe", ferryRun(t, applyArgs(t, good, b.keyFile, target.Host)...), codeVerification,
		vol1+" is a named pipe")
	if repos, err := target.Catalog(context.Background()); err != nil || len(repos) != 0 {
		t.Errorf("the target holds %v (%v), want nothing pushed", repos, err)
	}
}

// TestWriterOutputChecksFirst: -o naming a directory, or a file in a
// missing directory, fails before a single request, with or without
// --force; apply --output-dir naming a file fails before anything is
// pushed.
func TestWriterOutputChecksFirst(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 2})
	dir := t.TempDir()
	// A directory named as the bundle is a wrong argument (2); a missing
	// directory is a missing path, like a missing bundle (1).
	for _, tc := range []struct {
		name, out string
		extra     []string
		code      int
		says      string
	}{
		{"-o a directory", dir, nil, codeUsage, "-o " + dir + " is a directory"},
		{"-o a directory with --force", dir, []string{"--force"}, codeUsage, "-o " + dir + " is a directory"},
		{"-o in a missing directory", filepath.Join(dir, "missing", "b.tar"), nil, codeFailure, filepath.Join(dir, "missing")},
	} {
		b.proxy.ResetStats()
		b.storeProxy.ResetStats()
		wantExit(t, "pack "+tc.name, ferryRun(t, b.packArgs(tc.out, tc.extra...)...), tc.code, tc.says)
		if n, m := b.proxy.Stats().Requests, b.storeProxy.Stats().Requests; n+m != 0 {
			t.Errorf("pack %s: %d registry and %d signature store requests before failing, want none", tc.name, n, m)
		}
	}

	good := b.pack(t)
	target := testbed.NewMemoryRegistry(t)
	file := filepath.Join(t.TempDir(), "manifests")
	if err := os.WriteFile(file, []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, outDir := range []string{file, filepath.Join(file, "below")} {
		args := append(applyArgs(t, good, b.keyFile, target.Host), "--output-dir", outDir)
		wantExit(t, "apply --output-dir "+outDir, ferryRun(t, args...), codeUsage, file+" is a regular file, not a directory")
	}
	if repos, err := target.Catalog(context.Background()); err != nil || len(repos) != 0 {
		t.Errorf("the target holds %v (%v), want nothing pushed", repos, err)
	}
}

// TestWriterDiskSpace: on a 1 MiB file system pack fails once it knows the
// plan, before any component layer is fetched, naming what it needs and
// what is free; --dry-run says so too, and succeeds.
func TestWriterDiskSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (mount -t tmpfs -o size=1m)")
	}
	t.Parallel()
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 2})
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", small).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", small, err, out)
		}
	})
	layer := componentLayer(t, b.rel)
	var mu sync.Mutex
	var fetched []string
	b.proxy.OnRequest(func(_ int64, r *http.Request) bool {
		if isBlobGet(r) {
			mu.Lock()
			fetched = append(fetched, r.URL.Path)
			mu.Unlock()
		}
		return true
	})
	defer b.proxy.OnRequest(nil)

	res := ferryRun(t, b.packArgs(filepath.Join(small, "bundle.tar"))...)
	wantExit(t, "pack onto a 1 MiB file system", res, codeFailure,
		"not enough free space in "+small+" for the bundle: it needs", "(1048576 bytes) free")
	mu.Lock()
	for _, p := range fetched {
		if strings.HasSuffix(p, layer.String()) {
			t.Errorf("pack fetched the component layer %s before failing", layer)
		}
	}
	mu.Unlock()
	if got := listFiles(t, small); len(got) != 0 {
		t.Errorf("left on the small file system: %v", got)
	}
	wantExit(t, "pack --dry-run onto a 1 MiB file system", ferryRun(t, b.packArgs(filepath.Join(small, "bundle.tar"), "--dry-run")...), codeOK,
		"not enough free space in "+small)
}

// TestWriterAbsurdLayer: a cosign .sig manifest beside the release declares
// a 1 TiB layer (its digest that of a real small blob, so only the size is
// wrong). The planner's Sigstore bounds refuse it by name, with its size,
// before any layer is fetched and before the free-space check could
// mistake it for a full disk; --dry-run says the same. (Absurd sizes in
// images that pass those bounds: TestAbsurdBlob in cmd/ferry.)
func TestWriterAbsurdLayer(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 2})
	ctx := context.Background()
	repo := b.rel.Repository
	small, err := b.reg.PushBlob(ctx, repo, []byte(`{"critical":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	config, err := b.reg.PushBlob(ctx, repo, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: config, Size: 2},
		Layers:    []ocispec.Descriptor{{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: small, Size: 1 << 40}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tag := "sha256-" + b.rel.Digest.Encoded() + ".sig"
	if _, err := b.reg.PushManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, manifest); err != nil {
		t.Fatalf("push the hostile .sig manifest: %v", err)
	}
	b.proxy.ResetStats()

	says := []string{tag, "is not a cosign signature: layer " + small.String() + " is 1099511627776 bytes"}
	out := filepath.Join(t.TempDir(), "bundle.tar")
	wantExit(t, "pack of a release with a 1 TiB .sig layer", ferryRun(t, b.packArgs(out)...), codeFailure, says...)
	assertNoBundle(t, filepath.Dir(out), "bundle.tar")
	wantExit(t, "pack --dry-run of it", ferryRun(t, b.packArgs(out, "--dry-run")...), codeFailure, says...)
}
