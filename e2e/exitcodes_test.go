package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// This file holds every command of the binary to the exit codes the README
// documents: 0 success, 1 an operation failed, 2 a usage error, 3 a
// verification failed.

// exitRow is one row of the README's exit-code table.
type exitRow struct {
	meaning  string   // lower case
	examples []string // the "for example" cell, split at ";"
}

// readmeExitCodes reads the table under the README's "Exit codes" heading.
func readmeExitCodes(t *testing.T) map[int]exitRow {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := map[int]exitRow{}
	inSection := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			inSection = strings.Contains(strings.ToLower(line), "exit code")
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if !inSection || !strings.HasPrefix(line, "|") || len(cells) != 3 {
			continue
		}
		code, err := strconv.Atoi(strings.TrimSpace(cells[0]))
		if err != nil {
			continue // the header and the rule
		}
		row := exitRow{meaning: strings.ToLower(strings.TrimSpace(cells[1]))}
		for _, ex := range strings.Split(cells[2], ";") {
			if ex = strings.TrimSpace(ex); ex != "" {
				row.examples = append(row.examples, ex)
			}
		}
		table[code] = row
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return table
}

// TestExitCodesDocumented: the README's table says what the codes mean.
func TestExitCodesDocumented(t *testing.T) {
	documented := readmeExitCodes(t)
	for code, word := range map[int]string{0: "success", 1: "fail", 2: "usage", 3: "verification", 130: "interrupted"} {
		if !strings.Contains(documented[code].meaning, word) {
			t.Errorf("README exit codes: %d is %q, want it to mention %q (table: %v)", code, documented[code].meaning, word, documented)
		}
	}
}

// exitCase is one command line and the exit code it must give.
type exitCase struct {
	name  string
	args  []string
	code  int
	wants []string
	// not is what must not be said: the noise of a later phase (a
	// cluster or registry looked for before a local mistake was seen).
	not []string
	// example is the README table's example of this case, in its row.
	example string
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
	// What a later phase would say, had a command gone past an early
	// mistake: a cluster looked for, a registry or store contacted, the
	// keys read and logged.
	cluster := []string{"cluster"}
	network := []string{"connection refused", down.Host}
	keysRead := []string{"release signatures verified with"}
	unreachable := down.Host + "/" + testbed.ReleaseRepository + ":4.15.0-x86_64"
	gone := filepath.Join(t.TempDir(), "gone.tar")
	noDir := filepath.Join(t.TempDir(), "no", "such", "dir")
	underFile := filepath.Join(notBundle, "below") // notBundle is a regular file
	noKey := filepath.Join(t.TempDir(), "none.asc")
	noYAML := filepath.Join(t.TempDir(), "ferry.yaml")
	badYAML := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("apiVersion: ferry/v1\nreleasez: [4.15.0]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	to := []string{"--to", target.Host + "/" + targetRepo, "--dest-tls-verify=false"}
	digestAlone := func(outDir string) []string {
		return append([]string{"signatures", "--digest", b.rel.Digest.String(), "--keyring", b.keyFile, "-o", outDir}, store...)
	}

	cases := []exitCase{
		// pack
		{name: "pack", args: b.packArgs(out()), code: codeOK, wants: []string{"packed 1 release"}},
		{name: "pack without RELEASE", args: []string{"pack"}, code: codeUsage, wants: []string{"RELEASE"}, example: "a missing argument"},
		{name: "pack with an unknown flag", args: []string{"pack", "--no-such-flag", b.rel.DigestSpec()}, code: codeUsage, wants: []string{"no-such-flag"},
			example: "an unknown flag"},
		{name: "pack with a bad --volume-size", args: b.packArgs(out(), "--volume-size", "12XB"), code: codeUsage, wants: []string{"--volume-size"},
			example: "a malformed version, digest or size"},
		{name: "pack of a malformed version into a directory that does not exist", args: []string{"pack", "4.15", "-o", filepath.Join(noDir, "b.tar")},
			code: codeUsage, wants: []string{`"4.15"`}, not: []string{"does not exist"}, example: "a malformed version, digest or size"},
		{name: "pack with a bad --sigstore", args: []string{"pack", unreachable, "--src-tls-verify=false", "--sigstore", "sometimes", "-o", out()},
			code: codeUsage, wants: []string{"--sigstore", "sometimes"}, not: network},
		{name: "pack over an existing bundle", args: b.packArgs(good), code: codeUsage, wants: []string{"--force"},
			example: "an existing output without `--force`"},
		{name: "pack into a directory that does not exist", args: []string{"pack", unreachable, "--src-tls-verify=false", "-o", filepath.Join(noDir, "b.tar")},
			code: codeFailure, wants: []string{noDir + " does not exist"}, not: network, example: "the directory of a `pack -o` that does not exist"},
		{name: "pack with a keyring that does not exist", args: []string{"pack", unreachable, "--src-tls-verify=false", "--keyring", noKey, "-o", out()},
			code: codeFailure, wants: []string{noKey, "no such file"}, not: network, example: "a keyring, `ferry.yaml` or `--since` file that does not exist"},
		{name: "pack -f of a ferry.yaml that does not exist", args: []string{"pack", "-f", noYAML, "-o", out()},
			code: codeFailure, wants: []string{noYAML, "no such file"}, example: "a keyring, `ferry.yaml` or `--since` file that does not exist"},
		{name: "pack -f of a ferry.yaml that does not parse", args: []string{"pack", "-f", badYAML, "-o", out()},
			code: codeUsage, wants: []string{badYAML, "releasez"}, example: "a keyring or `ferry.yaml` that does not parse"},
		{name: "pack of a release the registry does not have", args: append([]string{"pack", missing, "-o", out(), "--src-tls-verify=false",
			"--keyring", b.keyFile}, store...), code: codeFailure, wants: []string{"9.9.9-x86_64"}},
		{name: "pack from a registry that cannot be reached", args: append([]string{"pack", unreachable, "-o", out(), "--src-tls-verify=false",
			"--keyring", b.keyFile}, store...), code: codeFailure, wants: network, example: "a registry that cannot be reached"},
		{name: "pack of a release no trusted key signed", args: append([]string{"pack", b.rel.DigestSpec(), "-o", out(), "--src-tls-verify=false",
			"--keyring", stranger}, store...), code: codeVerification, wants: []string{"no signature of " + b.rel.Digest.String() + " verifies"},
			example: "a signature no trusted key made"},

		// apply
		{name: "apply", args: applyArgs(t, good, b.keyFile, target.Host), code: codeOK},
		{name: "apply without BUNDLE", args: []string{"apply", "--to", target.Host + "/" + targetRepo}, code: codeUsage, wants: []string{"BUNDLE"}},
		{name: "apply without --to", args: []string{"apply", good, "--keyring", b.keyFile, "--no-cluster"}, code: codeUsage, wants: []string{"--to"}},
		{name: "apply with a bad --to", args: []string{"apply", good, "--to", "no-repository", "--keyring", b.keyFile, "--no-cluster"},
			code: codeUsage, wants: []string{"REGISTRY/REPO"}},
		{name: "apply with --parallel 0", args: append([]string{"apply", gone, "--parallel", "0"}, to...), code: codeUsage,
			wants: []string{"--parallel"}, not: []string{"gone.tar"}},
		{name: "apply of a bundle that does not exist", args: append([]string{"apply", gone, "--keyring", b.keyFile}, to...), code: codeFailure,
			wants: []string{"bundle " + gone + ": no such file or directory"}, not: append(cluster, keysRead...), example: "a bundle that does not exist"},
		{name: "apply of a directory", args: append([]string{"apply", t.TempDir(), "--keyring", b.keyFile}, to...), code: codeUsage,
			wants: []string{"is a directory, not a bundle file"}, not: cluster, example: "a directory given as the bundle"},
		{name: "apply with a keyring that does not exist", args: []string{"apply", good, "--to", down.Host + "/" + targetRepo, "--keyring", noKey},
			code: codeFailure, wants: []string{noKey, "no such file"}, not: append(cluster, network...)},
		{name: "apply with --output-dir under a regular file", args: append([]string{"apply", good, "--keyring", b.keyFile, "--no-cluster",
			"--output-dir", underFile}, to...), code: codeUsage, wants: []string{notBundle + " is a regular file, not a directory"},
			example: "an output path under a regular file"},
		{name: "apply into an unreachable registry", args: applyArgs(t, good, b.keyFile, down.Host), code: codeFailure,
			wants: network},
		{name: "apply of a tampered bundle", args: applyArgs(t, tampered, b.keyFile, target.Host), code: codeVerification,
			wants: []string{"content has digest", "nothing was pushed"}, example: "a tampered bundle"},
		{name: "apply of a bundle no trusted key signed", args: applyArgs(t, good, stranger, target.Host), code: codeVerification,
			wants: []string{"nothing was pushed"}},

		// verify
		{name: "verify", args: []string{"verify", good, "--keyring", b.keyFile}, code: codeOK, wants: []string{"verified"}},
		{name: "verify without BUNDLE", args: []string{"verify", "--keyring", b.keyFile}, code: codeUsage, wants: []string{"BUNDLE"}},
		{name: "verify with a keyring that does not exist", args: []string{"verify", good, "--keyring", noKey},
			code: codeFailure, wants: []string{noKey, "no such file"}, example: "a keyring, `ferry.yaml` or `--since` file that does not exist"},
		{name: "verify of a tampered bundle", args: []string{"verify", tampered, "--keyring", b.keyFile}, code: codeVerification,
			wants: []string{"FAULT:", "content has digest"}, example: "a tampered bundle"},
		{name: "verify of a bundle no trusted key signed", args: []string{"verify", good, "--keyring", stranger}, code: codeVerification,
			wants: []string{"FAULT:"}, example: "a signature no trusted key made"},
		{name: "verify of a file that is not a bundle", args: []string{"verify", notBundle, "--keyring", b.keyFile}, code: codeVerification,
			wants: []string{"notes.tar"}, example: "a file that is not a bundle"},
		{name: "verify of a bundle that does not exist", args: []string{"verify", gone, "--keyring", b.keyFile},
			code: codeFailure, wants: []string{"bundle " + gone + ": no such file or directory"}, not: append([]string{"FAULT"}, keysRead...),
			example: "a bundle that does not exist"},

		// inspect
		{name: "inspect", args: []string{"inspect", good}, code: codeOK, wants: []string{b.rel.Digest.String()}},
		{name: "inspect --json", args: []string{"inspect", good, "--json"}, code: codeOK, wants: []string{`"formatVersion": 1`}},
		{name: "inspect without BUNDLE", args: []string{"inspect"}, code: codeUsage, wants: []string{"BUNDLE"}},
		{name: "inspect of a bundle that does not exist", args: []string{"inspect", gone}, code: codeFailure, wants: []string{gone, "no such file"}},
		{name: "inspect of something not a bundle", args: []string{"inspect", notBundle}, code: codeVerification, wants: []string{"notes.tar"},
			example: "a file that is not a bundle"},

		// check
		{name: "check of a bundle that does not exist", args: []string{"check", gone}, code: codeFailure, wants: []string{gone, "no such file"},
			not: cluster},
		{name: "check with a kubeconfig that does not exist", args: []string{"check", good, "--kubeconfig", filepath.Join(noDir, "kubeconfig")},
			code: codeFailure, wants: []string{filepath.Join(noDir, "kubeconfig")}},
		{name: "check operators with a --catalog of no tag", args: []string{"check", "operators", "--to", "4.17", "--catalog", down.Host + "/catalog",
			"--installed", gone}, code: codeUsage, wants: []string{"--catalog", "neither a tag nor a digest"}, not: []string{"gone.tar"}},

		// mirror
		{name: "mirror without --to", args: []string{"mirror", unreachable}, code: codeUsage, wants: []string{"--to"}},
		{name: "mirror with a keyring that does not exist", args: append([]string{"mirror", unreachable, "--src-tls-verify=false", "--keyring", noKey,
			"--output-dir", t.TempDir()}, to...), code: codeFailure, wants: []string{noKey, "no such file"}, not: append(cluster, network...)},
		{name: "mirror with --output-dir under a regular file", args: append([]string{"mirror", unreachable, "--src-tls-verify=false",
			"--output-dir", underFile}, to...), code: codeUsage, wants: []string{"is a regular file, not a directory"}, not: append(cluster, network...)},

		// signatures
		{name: "signatures", args: append([]string{"signatures", b.rel.DigestSpec(), "--keyring", b.keyFile, "-o", t.TempDir()}, store...),
			code: codeOK, wants: []string{"signature-1 verified"}},
		{name: "signatures by digest alone", args: digestAlone(t.TempDir()), code: codeOK,
			wants: []string{"digest  " + b.rel.Digest.String(), "signature-1 verified", "signature-sha256-" + b.rel.Digest.Encoded()[:16] + ".yaml"}},
		{name: "signatures without RELEASE or --digest", args: []string{"signatures", "--keyring", b.keyFile}, code: codeUsage,
			wants: []string{"RELEASE", "--digest"}, example: "a missing argument"},
		{name: "signatures with a bad --digest", args: []string{"signatures", "4.15.0", "--digest", "sha256:abc", "--keyring", b.keyFile},
			code: codeUsage, wants: []string{"--digest"}, example: "a malformed version, digest or size"},
		{name: "signatures -o under a regular file", args: digestAlone(underFile), code: codeUsage,
			wants: []string{"is a regular file, not a directory"}, not: append([]string{"signature-1"}, keysRead...),
			example: "an output path under a regular file"},
		{name: "signatures with a keyring that does not exist", args: []string{"signatures", "--digest", b.rel.Digest.String(), "--keyring", noKey,
			"--signature-store", "http://" + down.Host + "/store", "-o", t.TempDir()}, code: codeFailure, wants: []string{noKey}, not: network},
		{name: "signatures of a release the registry does not have", args: append([]string{"signatures", missing, "--tls-verify=false",
			"--keyring", b.keyFile, "-o", t.TempDir()}, store...), code: codeFailure, wants: []string{"9.9.9-x86_64"}},
		{name: "signatures no trusted key made", args: append([]string{"signatures", b.rel.DigestSpec(), "--keyring", stranger, "-o", t.TempDir()}, store...),
			code: codeVerification, wants: []string{"no signature of"}, example: "a signature no trusted key made"},

		// signatures verify
		{name: "signatures verify", args: []string{"signatures", "verify", "--digest", b.rel.Digest.String(), "--keyring", b.keyFile, sigFile},
			code: codeOK, wants: []string{"verified"}},
		{name: "signatures verify without FILE", args: []string{"signatures", "verify", "--digest", b.rel.Digest.String(), "--keyring", b.keyFile},
			code: codeUsage, wants: []string{"FILE"}},
		{name: "signatures verify without --digest", args: []string{"signatures", "verify", "--keyring", b.keyFile, sigFile},
			code: codeUsage, wants: []string{"digest"}},
		{name: "signatures verify with a bad --digest", args: []string{"signatures", "verify", "--digest", "sha256:abc", "--keyring", b.keyFile, sigFile},
			code: codeUsage, wants: []string{"--digest"}},
		{name: "signatures verify of a FILE that does not exist", args: []string{"signatures", "verify", "--digest", b.rel.Digest.String(),
			"--keyring", b.keyFile, sigFile, gone}, code: codeFailure, wants: []string{gone, "no such file"}, not: append([]string{"NOT verified"}, keysRead...)},
		{name: "signatures verify of a forged file", args: []string{"signatures", "verify", "--digest", b.rel.Digest.String(), "--keyring", b.keyFile, garbage},
			code: codeVerification, wants: []string{"NOT verified"}},
		{name: "signatures verify against another digest", args: []string{"signatures", "verify", "--digest", layer.String(), "--keyring", b.keyFile, sigFile},
			code: codeVerification, wants: []string{"NOT verified"}, example: "a signature of another digest"},

		// version, graph, inventory, catalog, completion, global
		{name: "version", args: []string{"version"}, code: codeOK, wants: []string{"bundle format: 1"}},
		{name: "--version", args: []string{"--version"}, code: codeOK, wants: []string{"bundle format 1"}},
		{name: "version with an unknown flag", args: []string{"version", "--bogus"}, code: codeUsage, wants: []string{"bogus"}, example: "an unknown flag"},
		{name: "graph", args: graph, code: codeOK, wants: []string{"4.15.1"}},
		{name: "graph without --channel", args: []string{"graph"}, code: codeUsage, wants: []string{"--channel"}},
		{name: "graph of a graph file that does not exist", args: []string{"graph", "--channel", "stable-4.15", "--graph-url", "file://" + gone},
			code: codeFailure, wants: []string{gone}},
		{name: "graph with no update path", args: append(graph, "--from", "4.15.1", "--to", "4.15.0"), code: codeFailure, wants: []string{"no update path"},
			example: "no update path"},
		{name: "inventory", args: []string{"inventory", "--from-bundle", good, "-o", filepath.Join(t.TempDir(), "i.json")}, code: codeOK},
		{name: "inventory without a source", args: []string{"inventory"}, code: codeUsage, wants: []string{"--to", "--from-bundle"}},
		{name: "inventory of a bundle that does not exist", args: []string{"inventory", "--from-bundle", gone, "-o", filepath.Join(t.TempDir(), "i.json")},
			code: codeFailure, wants: []string{"bundle " + gone + ": no such file or directory"}},
		{name: "inventory into a directory that does not exist", args: []string{"inventory", "--to", down.Host + "/" + targetRepo, "--dest-tls-verify=false",
			"-o", filepath.Join(noDir, "i.json")}, code: codeFailure, wants: []string{noDir + " does not exist"}, not: network},
		{name: "inventory of an unreachable registry", args: []string{"inventory", "--to", down.Host + "/" + targetRepo, "--dest-tls-verify=false",
			"-o", filepath.Join(t.TempDir(), "i.json")}, code: codeFailure, wants: []string{"connection refused"}, example: "a registry that cannot be reached"},
		{name: "catalog list of a reference without tag or digest", args: []string{"catalog", "list", down.Host + "/catalog"}, code: codeUsage,
			wants: []string{"neither a tag nor a digest"}, not: []string{"connection refused"}},
		{name: "catalog list from an unreachable registry", args: []string{"catalog", "list", down.Host + "/catalog:v4.16", "--src-tls-verify=false"},
			code: codeFailure, wants: network, example: "a registry that cannot be reached"},
		{name: "completion", args: []string{"completion", "bash"}, code: codeOK},
		{name: "completion of an unknown shell", args: []string{"completion", "fish"}, code: codeUsage, wants: []string{"fish"}},
		{name: "unknown global flag", args: []string{"--bogus", "version"}, code: codeUsage, wants: []string{"bogus"}, example: "an unknown flag"},
		{name: "bad --log-level", args: []string{"--log-level", "loud", "version"}, code: codeUsage, wants: []string{"--log-level"}},
		{name: "unknown command", args: []string{"unpack", good}, code: codeUsage, wants: []string{"unpack"}, example: "an unknown command"},
	}
	documented := readmeExitCodes(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := ferryRun(t, tc.args...)
			wantExit(t, "ferry "+strings.Join(tc.args, " "), res, tc.code, tc.wants...)
			for _, noise := range tc.not {
				if strings.Contains(res.stdout+res.stderr, noise) {
					t.Errorf("the output says %q, from a phase after the mistake:\nstdout:\n%s\nstderr:\n%s", noise, res.stdout, res.stderr)
				}
			}
			if tc.example != "" && !slices.Contains(documented[tc.code].examples, tc.example) {
				t.Errorf("the README's exit-code table does not give %q as an example of %d (it gives %q)", tc.example, tc.code, documented[tc.code].examples)
			}
		})
	}
}
