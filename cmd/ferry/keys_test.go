package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/signature"
)

const (
	keysLogLine = "release signatures verified with"
	// The key= values of the log line for Red Hat's two keys.
	releaseKeyLog = `"Red Hat, Inc. (release key 2) ` + signature.RedHatReleaseKeyFingerprint
	betaKeyLog    = `Red Hat, Inc. (beta key 2) ` + signature.RedHatBetaKeyFingerprint
)

// ferryOnHost runs a command line in-process, as ferry does, on a host
// whose system key file (signature.DefaultKeyPath on RHEL) is at
// systemKeyPath.
func ferryOnHost(t *testing.T, systemKeyPath string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := newEnvironment(strings.NewReader(""), &out, &errOut)
	env.systemKeyPath = systemKeyPath
	code = run(context.Background(), append([]string{"ferry"}, args...), env)
	return code, out.String(), errOut.String()
}

// TestReleaseKeyringDefaultOrder checks the real 4.15.0 signature offline
// with each source of keys: --keyring, else the system file, else the
// built-in release key 2; the beta key only with --beta-key. One log line
// names the keys and where they came from.
func TestReleaseKeyringDefaultOrder(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	sig := fixture(t, "redhat", "ocp-4.15.0-x86_64.signature-1")
	releaseKey := fixture(t, "redhat", "verifier-public-key-redhat-release")
	betaKey := fixture(t, "redhat", "verifier-public-key-redhat-beta-2")
	noSystemKey := filepath.Join(t.TempDir(), "RPM-GPG-KEY-redhat-release")
	brokenSystemKey := writeTemp(t, "RPM-GPG-KEY-redhat-release", []byte("not a key\n"))
	cases := []struct {
		name   string
		system string
		flags  []string
		code   int
		wants  []string // in stderr
	}{
		{"built in when the host has no key file", noSystemKey, nil, exitOK,
			[]string{"key=" + releaseKeyLog + `"`, "source=built-in"}},
		{"the host's key file before the built-in key", betaKey, nil, exitVerification,
			[]string{`key="` + betaKeyLog + `"`, "source=" + betaKey}},
		{"--keyring before the host's key file", betaKey, []string{"--keyring", releaseKey}, exitOK,
			[]string{"key=" + releaseKeyLog + `"`, "source=" + releaseKey}},
		{"a host key file that does not parse is an error, not a reason to trust the built-in key", brokenSystemKey, nil, exitUsage,
			[]string{"keyring " + brokenSystemKey}},
		{"--beta-key adds the beta key", noSystemKey, []string{"--beta-key"}, exitOK,
			[]string{"key=" + releaseKeyLog + ", " + betaKeyLog + `"`, `source="built-in + built-in beta key (--beta-key)"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"signatures", "verify", "--digest", ocp4150Digest, sig}, tc.flags...)
			code, stdout, stderr := ferryOnHost(t, tc.system, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			wantLines := 1
			if tc.code == exitUsage {
				wantLines = 0
			}
			if n := strings.Count(stderr, keysLogLine); n != wantLines {
				t.Errorf("%d %q lines, want %d:\n%s", n, keysLogLine, wantLines, stderr)
			}
			if !strings.Contains(tc.system+strings.Join(tc.flags, " "), "beta") && strings.Contains(stderr, signature.RedHatBetaKeyFingerprint) {
				t.Errorf("the beta key is trusted without --beta-key:\n%s", stderr)
			}
		})
	}
	if code, _, stderr := ferryOnHost(t, noSystemKey, "signatures", "verify", "--digest", ocp4150Digest, "--keyring", betaKey, "--beta-key", sig); code != exitVerification ||
		!strings.Contains(stderr, `source="`+betaKey+` + built-in beta key (--beta-key)"`) {
		t.Errorf("--keyring with --beta-key: exit %d, want %d (the beta key does not sign a release):\n%s", code, exitVerification, stderr)
	}
}

// TestPackAndApplyUseTheHostKey: with no --keyring, pack and apply use the
// host's key file; on a host without one, apply falls back to the built-in
// Red Hat key, which does not sign the test release.
func TestPackAndApplyUseTheHostKey(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	s := newSignedRelease(t, testbed.ReleaseOptions{Components: 2})
	out := filepath.Join(t.TempDir(), "bundle.tar")
	code, _, stderr := ferryOnHost(t, s.keyFile, "pack", s.rel.PullSpec, "-o", out, "--no-self", "--src-tls-verify=false",
		"--signature-store", s.store.URL, "--quiet")
	if code != exitOK || !strings.Contains(stderr, "source="+s.keyFile) {
		t.Fatalf("pack with the test key as the host's key file: exit %d\n%s", code, stderr)
	}
	target := testbed.NewMemoryRegistry(t)
	apply := []string{"apply", out, "--to", target.Host + "/" + targetRepo, "--dest-tls-verify=false", "--no-cluster",
		"--output-dir", t.TempDir(), "--quiet"}
	code, stdout, stderr := ferryOnHost(t, filepath.Join(t.TempDir(), "none"), apply...)
	if code != exitVerification || !strings.Contains(stderr, "source=built-in") || !strings.Contains(stdout+stderr, "not in the keyring") {
		t.Errorf("apply with only the built-in key: exit %d, want %d, naming the built-in key and the unknown signer:\n%s\n%s", code, exitVerification, stdout, stderr)
	}
	code, _, stderr = ferryOnHost(t, s.keyFile, apply...)
	if code != exitOK || !strings.Contains(stderr, "source="+s.keyFile) {
		t.Errorf("apply with the test key as the host's key file: exit %d\n%s", code, stderr)
	}
}

// TestConfigBetaKey: ferry.yaml's betaKey is --beta-key, strictly typed,
// and the command line wins.
func TestConfigBetaKey(t *testing.T) {
	const head = "apiVersion: ferry/v1alpha1\nkind: Bundle\nreleases:\n  - version: 4.15.0\n"
	file := writeTemp(t, "ferry.yaml", []byte(head+"betaKey: true\n"))
	if out := mustFerry(t, "pack", "-f", file, "--print-config"); !strings.Contains(out, "betaKey: true") {
		t.Errorf("betaKey lost:\n%s", out)
	}
	if out := mustFerry(t, "pack", "-f", file, "--beta-key=false", "--print-config"); strings.Contains(out, "betaKey") {
		t.Errorf("--beta-key=false did not override the file:\n%s", out)
	}
	if out := mustFerry(t, "pack", "4.15.0", "--beta-key", "--print-config"); !strings.Contains(out, "betaKey: true") {
		t.Errorf("--beta-key is not in the printed config:\n%s", out)
	}
	bad := writeTemp(t, "ferry.yaml", []byte(head+"betaKey: please\n"))
	if code, _, stderr := ferry(t, "pack", "-f", bad, "--print-config"); code != exitUsage || !strings.Contains(stderr, bad+":5:") || !strings.Contains(stderr, "betaKey") {
		t.Errorf("betaKey: please: exit %d, want %d naming the file, line and key:\n%s", code, exitUsage, stderr)
	}
}
