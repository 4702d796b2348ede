package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// mirrorArgs mirrors the bed's release straight into host/ocp4/openshift4.
func (b *faultBed) mirrorArgs(t *testing.T, host string, extra ...string) []string {
	return append([]string{"mirror", b.rel.DigestSpec(), "--to", host + "/" + targetRepo, "--src-tls-verify=false", "--dest-tls-verify=false",
		"--keyring", b.keyFile, "--signature-store", b.storeURL, "--no-cluster", "--output-dir", filepath.Join(t.TempDir(), "manifests"), "--quiet"}, extra...)
}

// TestMirror: ferry mirror leaves the target exactly as pack then apply
// do, renders the same objects, resumes on a rerun without copying twice,
// and rides out faults on both wires.
func TestMirror(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	viaBundle := testbed.NewMemoryRegistry(t)
	mustFerry(t, applyArgs(t, b.pack(t, "--no-self"), b.keyFile, viaBundle.Host)...)
	want := targetState(t, viaBundle, targetRepo)

	target := testbed.NewMemoryRegistry(t)
	out := filepath.Join(t.TempDir(), "manifests")
	res := ferryRun(t, b.mirrorArgs(t, target.Host, "--output-dir", out, "--json")...)
	wantExit(t, "mirror", res, codeOK)
	assertSameTarget(t, target, want)
	assertTagsComplete(t, target, targetRepo)
	var sum struct {
		BlobsPushed int      `json:"blobsPushed"`
		NextSteps   []string `json:"nextSteps"`
		Rendered    []string `json:"rendered"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil {
		t.Fatalf("mirror --json: %v\n%s", err, res.stdout)
	}
	if sum.BlobsPushed == 0 || len(sum.NextSteps) != 1 || !strings.HasSuffix(sum.NextSteps[0], "@"+b.rel.Digest.String()) {
		t.Errorf("mirror summary: %+v", sum)
	}
	cm, err := os.ReadFile(filepath.Join(out, "signature-sha256-"+b.rel.Digest.Encoded()[:16]+".yaml"))
	if err != nil || !strings.Contains(string(cm), b.rel.Digest.Encoded()) {
		t.Errorf("mirror did not render the release's signature ConfigMap: %v", err)
	}

	again := ferryRun(t, b.mirrorArgs(t, target.Host, "--json")...)
	wantExit(t, "mirror again", again, codeOK, `"blobsPushed": 0`)

	t.Run("faults on both wires", func(t *testing.T) {
		b.proxy.SetFaults(testbed.Faults{Seed: 31, Errors: 0.1, ErrorStatus: http.StatusServiceUnavailable, Resets: 0.1, Times: 1})
		defer b.proxy.SetFaults(testbed.Faults{})
		faulty := testbed.NewMemoryRegistry(t)
		p := testbed.NewFaultProxy(t, faulty.URL)
		p.SetFaults(testbed.Faults{Seed: 32, Errors: 0.1, Resets: 0.1, Slow: 0.2, SlowDelay: 2 * time.Millisecond, Times: 1})
		wantExit(t, "mirror through faults", ferryRun(t, b.mirrorArgs(t, p.Host)...), codeOK)
		assertSameTarget(t, faulty, want)
		if s := p.Stats(); s.Errors == 0 || s.Resets == 0 {
			t.Errorf("the target's faults were not injected: %+v", s)
		}
	})
	t.Run("from ferry.yaml", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "ferry.yaml")
		cfg := "apiVersion: ferry/v1alpha1\nkind: Bundle\nreleases:\n  - pullSpec: " + b.rel.DigestSpec() +
			"\nkeyrings: [" + b.keyFile + "]\nsignatureStores: [" + b.storeURL + "]\nparallel: 2\n"
		if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		fromFile := testbed.NewMemoryRegistry(t)
		wantExit(t, "mirror -f", ferryRun(t, "mirror", "-f", file, "--to", fromFile.Host+"/"+targetRepo, "--src-tls-verify=false",
			"--dest-tls-verify=false", "--no-cluster", "--output-dir", t.TempDir(), "--quiet"), codeOK)
		assertSameTarget(t, fromFile, want)
	})
	t.Run("a signature by another key", func(t *testing.T) {
		stranger := filepath.Join(t.TempDir(), "stranger.asc")
		if err := os.WriteFile(stranger, testbed.NewKey(t, "stranger").PublicArmored(t), 0o644); err != nil {
			t.Fatal(err)
		}
		empty := testbed.NewMemoryRegistry(t)
		p := testbed.NewFaultProxy(t, empty.URL)
		args := b.mirrorArgs(t, p.Host)
		for i, a := range args {
			if a == b.keyFile {
				args[i] = stranger
			}
		}
		res := ferryRun(t, args...)
		if res.code == codeOK || !strings.Contains(res.stderr, "not in the keyring") {
			t.Errorf("mirror with the wrong key: exit %d\n%s", res.code, res.stderr)
		}
		if n := p.Stats().Requests; n != 0 {
			t.Errorf("mirror sent %d requests to the target before refusing", n)
		}
		assertCatalogEmpty(t, empty)
	})
}
