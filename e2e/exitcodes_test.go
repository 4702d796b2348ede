package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// This file holds every command of the binary to the exit codes the README
// documents: 0 success, 1 an operation failed, 2 a usage error, 3 a
// verification failed.

// TestExitCodesDocumented: the README's table says what the codes mean.
func TestExitCodesDocumented(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile(`^\|\s*(\d+)\s*\|\s*(.+?)\s*\|$`)
	documented := map[string]string{}
	inSection := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			inSection = strings.Contains(strings.ToLower(line), "exit code")
			continue
		}
		if m := row.FindStringSubmatch(line); inSection && m != nil {
			documented[m[1]] = strings.ToLower(m[2])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for code, word := range map[string]string{"0": "success", "1": "fail", "2": "usage", "3": "verification"} {
		if !strings.Contains(documented[code], word) {
			t.Errorf("README exit codes: %s is %q, want it to mention %q (table: %v)", code, documented[code], word, documented)
		}
	}
}

// exitCase is one command line and the exit code it must give.
type exitCase struct {
	name  string
	args  []string
	code  int
	wants []string
}

// TestExitCodes runs each command into each outcome that applies to it.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 2})
	good := b.pack(t)
	tampered := copyBundle(t, good)
	idx := readIndexFile(t, good)
	layer := componentLayer(t, b.rel)
	for _, f := range idx.Files {
		if strings.HasSuffix(f.Name, layer.Encoded()) {
			tartamper.Flip(t, tampered, f.Offset+f.Size/2, 0x10)
		}
	}
	stranger := filepath.Join(t.TempDir(), "stranger.asc")
	if err := os.WriteFile(stranger, testbed.NewKey(t, "stranger").PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	// A signature file as `ferry signatures` writes it, and a forged one.
	sigDir := t.TempDir()
	mustFerry(t, "signatures", b.rel.DigestSpec(), "--keyring", b.keyFile, "--signature-store", b.storeURL, "-o", sigDir)
	sigFile := filepath.Join(sigDir, "signatures", "sha256="+b.rel.Digest.Encoded(), "signature-1")
	garbage := filepath.Join(t.TempDir(), "signature-1")
	if err := os.WriteFile(garbage, []byte("-----BEGIN PGP SIGNATURE-----\nnot one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notBundle := filepath.Join(t.TempDir(), "notes.tar")
	if err := os.WriteFile(notBundle, []byte("not a tar at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	graphDoc := filepath.Join(t.TempDir(), "graph.json")
	if err := os.WriteFile(graphDoc, []byte(`{"version":1,"nodes":[`+
		`{"version":"4.15.0","payload":"quay.io/openshift-release-dev/ocp-release@sha256:0000000000000000000000000000000000000000000000000000000000000000","metadata":{}},`+
		`{"version":"4.15.1","payload":"quay.io/openshift-release-dev/ocp-release@sha256:1111111111111111111111111111111111111111111111111111111111111111","metadata":{}}],`+
		`"edges":[[0,1]],"conditionalEdges":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	graph := []string{"graph", "--channel", "stable-4.15", "--graph-url", "file://" + graphDoc}
	target := testbed.NewMemoryRegistry(t)
	down := testbed.NewMemoryRegistry(t)
	down.Close() // connections refused
	missing := b.proxy.Host + "/" + testbed.ReleaseRepository + ":9.9.9-x86_64"
	out := func() string { return filepath.Join(t.TempDir(), "bundle.tar") }
	store := []string{"--signature-store", b.storeURL}

	cases := []exitCase{
		// pack
		{name: "pack", args: b.packArgs(out()), code: codeOK, wants: []string{"packed 1 release"}},
		{name: "pack without RELEASE", args: []string{"pack"}, code: codeUsage, wants: []string{"RELEASE"}},
		{name: "pack with an unknown flag", args: []string{"pack", "--no-such-flag", b.rel.DigestSpec()}, code: codeUsage, wants: []string{"no-such-flag"}},
		{name: "pack with a bad --volume-size", args: b.packArgs(out(), "--volume-size", "12XB"), code: codeUsage, wants: []string{"--volume-size"}},
		{name: "pack over an existing bundle", args: b.packArgs(good), code: codeUsage, wants: []string{"--force"}},
		{name: "pack of a release the registry does not have", args: append([]string{"pack", missing, "-o", out(), "--src-tls-verify=false",
			"--keyring", b.keyFile}, store...), code: codeFailure, wants: []string{"9.9.9-x86_64"}},
		{name: "pack of a release no trusted key signed", args: append([]string{"pack", b.rel.DigestSpec(), "-o", out(), "--src-tls-verify=false",
			"--keyring", stranger}, store...), code: codeVerification, wants: []string{"no signature of " + b.rel.Digest.String() + " verifies"}},

		// apply
		{name: "apply", args: applyArgs(t, good, b.keyFile, target.Host), code: codeOK},
		{name: "apply without BUNDLE", args: []string{"apply", "--to", target.Host + "/" + targetRepo}, code: codeUsage, wants: []string{"BUNDLE"}},
		{name: "apply without --to", args: []string{"apply", good, "--keyring", b.keyFile, "--no-cluster"}, code: codeUsage, wants: []string{"--to"}},
		{name: "apply with a bad --to", args: []string{"apply", good, "--to", "no-repository", "--keyring", b.keyFile, "--no-cluster"},
			code: codeUsage, wants: []string{"REGISTRY/REPO"}},
		{name: "apply into an unreachable registry", args: applyArgs(t, good, b.keyFile, down.Host), code: codeFailure,
			wants: []string{"connection refused", down.Host}},
		{name: "apply of a tampered bundle", args: applyArgs(t, tampered, b.keyFile, target.Host), code: codeVerification,
			wants: []string{"content has digest", "nothing was pushed"}},
		{name: "apply of a bundle no trusted key signed", args: applyArgs(t, good, stranger, target.Host), code: codeVerification,
			wants: []string{"nothing was pushed"}},

		// verify
		{name: "verify", args: []string{"verify", good, "--keyring", b.keyFile}, code: codeOK, wants: []string{"verified"}},
		{name: "verify without BUNDLE", args: []string{"verify", "--keyring", b.keyFile}, code: codeUsage, wants: []string{"BUNDLE"}},
		{name: "verify with a missing keyring", args: []string{"verify", good, "--keyring", filepath.Join(t.TempDir(), "none.asc")},
			code: codeUsage, wants: []string{"none.asc"}},
		{name: "verify of a tampered bundle", args: []string{"verify", tampered, "--keyring", b.keyFile}, code: codeVerification,
			wants: []string{"FAULT:", "content has digest"}},
		{name: "verify of a bundle no trusted key signed", args: []string{"verify", good, "--keyring", stranger}, code: codeVerification,
			wants: []string{"FAULT:"}},
		{name: "verify of a missing bundle", args: []string{"verify", filepath.Join(t.TempDir(), "gone.tar"), "--keyring", b.keyFile},
			code: codeVerification, wants: []string{"gone.tar"}},

		// inspect
		{name: "inspect", args: []string{"inspect", good}, code: codeOK, wants: []string{b.rel.Digest.String()}},
		{name: "inspect --json", args: []string{"inspect", good, "--json"}, code: codeOK, wants: []string{`"formatVersion": 1`}},
		{name: "inspect without BUNDLE", args: []string{"inspect"}, code: codeUsage, wants: []string{"BUNDLE"}},
		{name: "inspect of something not a bundle", args: []string{"inspect", notBundle}, code: codeVerification, wants: []string{"notes.tar"}},

		// signatures
		{name: "signatures", args: append([]string{"signatures", b.rel.DigestSpec(), "--keyring", b.keyFile, "-o", t.TempDir()}, store...),
			code: codeOK, wants: []string{"signature-1 verified"}},
		{name: "signatures without RELEASE", args: []string{"signatures", "--keyring", b.keyFile}, code: codeUsage, wants: []string{"RELEASE"}},
		{name: "signatures with a bad --digest", args: []string{"signatures", "4.15.0", "--digest", "sha256:abc", "--keyring", b.keyFile},
			code: codeUsage, wants: []string{"--digest"}},
		{name: "signatures of a release the registry does not have", args: append([]string{"signatures", missing, "--tls-verify=false",
			"--keyring", b.keyFile, "-o", t.TempDir()}, store...), code: codeFailure, wants: []string{"9.9.9-x86_64"}},
		{name: "signatures no trusted key made", args: append([]string{"signatures", b.rel.DigestSpec(), "--keyring", stranger, "-o", t.TempDir()}, store...),
			code: codeVerification, wants: []string{"no signature of"}},

		// signatures verify
		{name: "signatures verify", args: []string{"signatures", "verify", "--digest", b.rel.Digest.String(), "--keyring", b.keyFile, sigFile},
			code: codeOK, wants: []string{"verified"}},
		{name: "signatures verify without FILE", args: []string{"signatures", "verify", "--digest", b.rel.Digest.String(), "--keyring", b.keyFile},
			code: codeUsage, wants: []string{"FILE"}},
		{name: "signatures verify without --digest", args: []string{"signatures", "verify", "--keyring", b.keyFile, sigFile},
			code: codeUsage, wants: []string{"digest"}},
		{name: "signatures verify with a bad --digest", args: []string{"signatures", "verify", "--digest", "sha256:abc", "--keyring", b.keyFile, sigFile},
			code: codeUsage, wants: []string{"--digest"}},
		{name: "signatures verify of a forged file", args: []string{"signatures", "verify", "--digest", b.rel.Digest.String(), "--keyring", b.keyFile, garbage},
			code: codeVerification, wants: []string{"NOT verified"}},
		{name: "signatures verify against another digest", args: []string{"signatures", "verify", "--digest", layer.String(), "--keyring", b.keyFile, sigFile},
			code: codeVerification, wants: []string{"NOT verified"}},

		// version, graph, inventory, completion, global
		{name: "version", args: []string{"version"}, code: codeOK, wants: []string{"bundle format: 1"}},
		{name: "--version", args: []string{"--version"}, code: codeOK, wants: []string{"bundle format 1"}},
		{name: "version with an unknown flag", args: []string{"version", "--bogus"}, code: codeUsage, wants: []string{"bogus"}},
		{name: "graph", args: graph, code: codeOK, wants: []string{"4.15.1"}},
		{name: "graph without --channel", args: []string{"graph"}, code: codeUsage, wants: []string{"--channel"}},
		{name: "graph with no update path", args: append(graph, "--from", "4.15.1", "--to", "4.15.0"), code: codeFailure, wants: []string{"no update path"}},
		{name: "inventory", args: []string{"inventory", "--from-bundle", good, "-o", filepath.Join(t.TempDir(), "i.json")}, code: codeOK},
		{name: "inventory without a source", args: []string{"inventory"}, code: codeUsage, wants: []string{"--to", "--from-bundle"}},
		{name: "inventory of an unreachable registry", args: []string{"inventory", "--to", down.Host + "/" + targetRepo, "--dest-tls-verify=false",
			"-o", filepath.Join(t.TempDir(), "i.json")}, code: codeFailure, wants: []string{"connection refused"}},
		{name: "completion", args: []string{"completion", "bash"}, code: codeOK},
		{name: "completion of an unknown shell", args: []string{"completion", "fish"}, code: codeUsage, wants: []string{"fish"}},
		{name: "unknown global flag", args: []string{"--bogus", "version"}, code: codeUsage, wants: []string{"bogus"}},
		{name: "bad --log-level", args: []string{"--log-level", "loud", "version"}, code: codeUsage, wants: []string{"--log-level"}},
		{name: "unknown command", args: []string{"unpack", good}, code: codeUsage, wants: []string{"unpack"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantExit(t, "ferry "+strings.Join(tc.args, " "), ferryRun(t, tc.args...), tc.code, tc.wants...)
		})
	}
}
