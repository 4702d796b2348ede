package e2e

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/signature"
)

// This file proves that no network wait of ferry is unbounded: registries,
// signature stores and Kubernetes API servers that accept the connection
// and then go silent (never answer, stop in the middle of a body, or
// trickle a byte at a time) make every command fail, in bounded time and
// naming the host and what stalled, or, when the silence passes, succeed
// through the retries. The bounds are set short by flag; no test waits on a
// default.

// shortBounds are the bounds the tests give ferry.
var shortBounds = []string{"--timeout", "2s", "--stall-timeout", "1s"}

// onBlob matches the requests for one blob.
func onBlob(d digest.Digest) func(*http.Request) bool {
	return func(r *http.Request) bool { return strings.Contains(r.URL.Path, d.String()) }
}

// silentAPIServer is a Kubernetes API server stand-in that accepts TLS
// and never answers: each request is held until its client goes away or
// the test ends. It returns a kubeconfig for it and its URL.
func silentAPIServer(t *testing.T) (kubeconfig, url string) {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) }) // runs first: Close waits for the handlers
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return writeKubeconfig(t, srv.URL, "silent-token", ca), srv.URL
}

// TestStallPack: pack against a registry, a blob and a signature store
// that go silent fails with the host or blob and the bound named, leaving
// no bundle; a blob that stalls only twice is packed through the retries.
func TestStallPack(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(b *faultBed, layer digest.Digest)
		code  int
		wants func(b *faultBed, layer digest.Digest) []string
		check func(t *testing.T, b *faultBed, out string)
	}{
		{name: "registry never answers",
			setup: func(b *faultBed, _ digest.Digest) { b.proxy.SetFaults(testbed.Faults{Hangs: 1}) },
			code:  codeFailure,
			wants: func(b *faultBed, _ digest.Digest) []string {
				return []string{"no answer from " + b.proxy.Host + " within 2s (timed out)", fmtAttempts(), b.rel.Digest.String()}
			}},
		{name: "a blob stops in the middle for ever",
			setup: func(b *faultBed, l digest.Digest) { b.proxy.SetFaults(testbed.Faults{Stalls: 1, Match: onBlob(l)}) },
			code:  codeFailure,
			wants: func(b *faultBed, l digest.Digest) []string {
				return []string{l.String() + ": no data from " + b.proxy.Host + " for 1s (stalled)", fmtAttempts()}
			}},
		{name: "signature store trickles",
			setup: func(b *faultBed, _ digest.Digest) {
				b.storeProxy.SetFaults(testbed.Faults{Trickles: 1, TrickleInterval: testbed.MinTrickleInterval * 10})
			},
			code: codeFailure,
			wants: func(b *faultBed, _ digest.Digest) []string {
				return []string{"no complete answer within 2s (timed out)", `op="fetch signature `, b.storeProxy.Host, "no signature store served"}
			}},
		{name: "a blob stalls twice, then flows",
			setup: func(b *faultBed, l digest.Digest) {
				b.proxy.SetFaults(testbed.Faults{Stalls: 1, Times: 2, Match: onBlob(l)})
			},
			code:  codeOK,
			wants: func(b *faultBed, l digest.Digest) []string { return []string{"retrying", "(stalled)"} },
			check: func(t *testing.T, b *faultBed, out string) {
				if s := b.proxy.Stats(); s.Stalls != 2 {
					t.Errorf("%d stalls injected, want 2", s.Stalls)
				}
				wantExit(t, "verify", ferryRun(t, "verify", out, "--keyring", b.keyFile, "--quiet"), codeOK)
			}},
	}
	type packRun struct {
		bed   *faultBed
		layer digest.Digest
		dir   string
		run   *bgFerry
	}
	runs := make([]packRun, len(cases))
	for i, tc := range cases {
		bed := newFaultBed(t, smallRelease)
		layer := componentLayer(t, bed.rel)
		tc.setup(bed, layer)
		dir := t.TempDir()
		runs[i] = packRun{bed, layer, dir, startFerry(t, dir, bed.packArgs(filepath.Join(dir, "bundle.tar"), shortBounds...)...)}
	}
	for i, tc := range cases {
		r := runs[i]
		t.Run(tc.name, func(t *testing.T) {
			res := r.run.wait(t)
			wantExit(t, "pack", res, tc.code, tc.wants(r.bed, r.layer)...)
			if tc.code != codeOK {
				assertNoBundle(t, r.dir, "bundle.tar")
			}
			if tc.check != nil && res.code == codeOK {
				tc.check(t, r.bed, filepath.Join(r.dir, "bundle.tar"))
			}
		})
	}
}

// fmtAttempts is how ferry says it gave up after its retries.
func fmtAttempts() string { return fmt.Sprintf("(after %d attempts)", retryAttempts) }

// TestStallApply: apply into a registry that never answers fails naming
// it and tags nothing; apply without --keyring against a cluster that
// never answers does not hang: it falls back from the cluster's keys as
// for any unreadable cluster, and a cluster that never takes the
// manifests fails the run after the push, naming the cluster's timeout.
func TestStallApply(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	bundlePath := b.pack(t)

	target := testbed.NewMemoryRegistry(t)
	silentTarget := testbed.NewFaultProxy(t, target.URL)
	silentTarget.SetFaults(testbed.Faults{Hangs: 1})
	intoSilent := startFerry(t, t.TempDir(), append(applyArgs(t, bundlePath, b.keyFile, silentTarget.Host), shortBounds...)...)

	kubeconfig, apiURL := silentAPIServer(t)
	noKeyring := startFerry(t, t.TempDir(), append([]string{"apply", bundlePath, "--to", testbed.NewMemoryRegistry(t).Host + "/" + targetRepo,
		"--dest-tls-verify=false", "--kubeconfig", kubeconfig, "--output-dir", filepath.Join(t.TempDir(), "manifests"), "--quiet"}, shortBounds...)...)

	pushed := testbed.NewMemoryRegistry(t)
	withKeyring := startFerry(t, t.TempDir(), append([]string{"apply", bundlePath, "--to", pushed.Host + "/" + targetRepo,
		"--dest-tls-verify=false", "--keyring", b.keyFile, "--kubeconfig", kubeconfig,
		"--output-dir", filepath.Join(t.TempDir(), "manifests"), "--quiet"}, shortBounds...)...)

	t.Run("registry never answers", func(t *testing.T) {
		wantExit(t, "apply", intoSilent.wait(t), codeFailure, "no answer from "+silentTarget.Host+" within 2s (timed out)", fmtAttempts())
		if tags := targetState(t, target, targetRepo); len(tags) > 0 {
			t.Errorf("a failed apply left tags: %v", tags)
		}
	})
	t.Run("no keyring, cluster never answers", func(t *testing.T) {
		// The cluster's keys cannot be read, so apply falls back to Red
		// Hat's release key (where RHEL installs it, else built in), which
		// does not sign the test release.
		wants := []string{"cannot use the cluster's release-verification keys", apiURL, "did not answer within 2s (timed out"}
		if _, err := os.Stat(signature.DefaultKeyPath); err != nil {
			wants = append(wants, signature.RedHatReleaseKeyFingerprint+`" source=built-in`)
		}
		wantExit(t, "apply", noKeyring.wait(t), codeVerification, wants...)
	})
	t.Run("cluster never takes the manifests", func(t *testing.T) {
		wantExit(t, "apply", withKeyring.wait(t), codeFailure, "images are pushed", apiURL, "did not answer within 2s (timed out")
		assertTagsComplete(t, pushed, targetRepo)
	})
}

// TestStallInventoryAndSignatures: inventory against a registry and
// signatures against a store that never answer fail naming the host.
func TestStallInventoryAndSignatures(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	b.proxy.SetFaults(testbed.Faults{Hangs: 1})
	b.storeProxy.SetFaults(testbed.Faults{Hangs: 1})
	dir := t.TempDir()
	inv := startFerry(t, dir, append([]string{"inventory", "--to", b.proxy.Host + "/" + targetRepo, "--dest-tls-verify=false",
		"-o", filepath.Join(dir, "inventory.json")}, shortBounds...)...)
	sigs := startFerry(t, dir, append([]string{"signatures", b.rel.DigestSpec(), "--keyring", b.keyFile,
		"--signature-store", b.storeURL, "-o", filepath.Join(dir, "mirror")}, shortBounds...)...)

	t.Run("inventory", func(t *testing.T) {
		wantExit(t, "inventory", inv.wait(t), codeFailure, "listing tags of "+b.proxy.Host+"/"+targetRepo,
			"no answer from "+b.proxy.Host+" within 2s (timed out)", fmtAttempts())
		if _, err := os.Stat(filepath.Join(dir, "inventory.json")); err == nil {
			t.Error("a failed inventory wrote its file")
		}
	})
	t.Run("signatures", func(t *testing.T) {
		wantExit(t, "signatures", sigs.wait(t), codeFailure, b.storeProxy.Host, "no complete answer within 2s (timed out)", `op="fetch signature `)
		if _, err := os.Stat(filepath.Join(dir, "mirror")); err == nil {
			t.Error("a failed signatures run wrote its output")
		}
	})
}
