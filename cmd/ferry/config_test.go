package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ferryhq/ferry/e2e/testbed"
)

const fullConfig = `apiVersion: ferry/v1alpha1
kind: Bundle
releases:
  - pullSpec: quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64
  - version: 4.15.3
    arch: aarch64
output: updates.tar
volumeSize: 4GiB
parallel: 3
keyrings:
  - redhat-release-key.asc
signatureStores:
  - file:///media/signatures
allowUnsigned: true
since: inventory.json
cacheDir: /var/cache/ferry
signKey: packer.key
signKeyPassphraseFile: /run/secrets/packer-pass
timeout: 2m0s
stallTimeout: 1m30s
sigstore: best-effort
operators:
  - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.16
    packages:
      - name: cluster-logging
        channels:
          - name: stable-6.1
            minVersion: 6.1.0
skipDependencies: true
installedOperators: installed-operators.json
imageSignatureStores:
  - registry.example=https://signatures.example/store
additionalImages:
  - name: registry.redhat.io/openshift4/ose-must-gather:latest
    targetRepo: tools/must-gather
  - name: registry.example/tools/debug:1.0
    platforms:
      - linux/amd64
      - linux/arm64/v8
blockedImages:
  - -debug$
kubeVirtContainer: true
graphImage: true
graphDataURL: file:///media/graph-data.tar.gz
graphBaseImage: registry.example/ubi9/ubi:latest
`

// TestConfigRoundTrip: a full file comes back unchanged from
// --print-config, and a command line becomes a file that means the same.
func TestConfigRoundTrip(t *testing.T) {
	file := writeTemp(t, "ferry.yaml", []byte(fullConfig))
	printed := mustFerry(t, "pack", "-f", file, "--print-config")
	if !sameYAML(t, printed, fullConfig) {
		t.Errorf("--print-config of the full example:\n%s\nwant:\n%s", printed, fullConfig)
	}
	// Flags override the file.
	over := mustFerry(t, "pack", "-f", file, "--parallel", "9", "--stall-timeout", "5s", "--print-config")
	if !strings.Contains(over, "parallel: 9") || !strings.Contains(over, "stallTimeout: 5s") || !strings.Contains(over, "timeout: 2m0s") {
		t.Errorf("--parallel and --stall-timeout did not override the file, or the file's timeout was lost:\n%s", over)
	}
	// A command line becomes a file.
	line := mustFerry(t, "pack", "4.15.0", "--arch", "arm64", "--volume-size", "700MB", "--keyring", "k.asc", "-o", "b.tar", "--print-config")
	again := mustFerry(t, "pack", "-f", writeTemp(t, "line.yaml", []byte(line)), "--print-config")
	if line != again || !strings.Contains(line, "version: 4.15.0") || !strings.Contains(line, "arch: aarch64") {
		t.Errorf("command line as a file:\n%s\nread back:\n%s", line, again)
	}
}

func TestConfigErrorsNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		{"misspelt key", "apiVersion: ferry/v1alpha1\nkind: Bundle\nrelases:\n  - version: 4.15.0\n", []string{":3:", `"relases"`}},
		{"wrong type", "apiVersion: ferry/v1alpha1\nkind: Bundle\nparallel: many\n", []string{":3:", "parallel", "many"}},
		{"bad duration", "apiVersion: ferry/v1alpha1\nkind: Bundle\nstallTimeout: soon\n", []string{":3:", "stallTimeout", "soon"}},
		{"unknown sigstore mode", "apiVersion: ferry/v1alpha1\nkind: Bundle\nsigstore: lenient\n", []string{":3:", "sigstore", "lenient", "best-effort"}},
		{"unknown apiVersion", "apiVersion: ferry/v9\nkind: Bundle\n", []string{":1:", "ferry/v9", "ferry/v1alpha1"}},
		{"nested misspelt key", "apiVersion: ferry/v1alpha1\nkind: Bundle\nreleases:\n  - verison: 4.15.0\n", []string{":4:", `"verison"`}},
		{"misspelt operators key", "apiVersion: ferry/v1alpha1\nkind: Bundle\noperators:\n  - catalog: r.example/index:v1\n    packges: []\n", []string{":5:", `"packges"`}},
		{"bad blocked pattern", "apiVersion: ferry/v1alpha1\nkind: Bundle\nblockedImages: [\"(\"]\n", []string{"blockedImages", "("}},
		{"bad target repo", "apiVersion: ferry/v1alpha1\nkind: Bundle\nadditionalImages:\n  - name: r.example/a:1\n    targetRepo: ../x\n", []string{"targetRepo", "../x"}},
		{"bad platform", "apiVersion: ferry/v1alpha1\nkind: Bundle\nadditionalImages:\n  - name: r.example/a:1\n    platforms: [amd64]\n", []string{":5:", "platforms", "amd64", "linux/amd64"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := writeTemp(t, "ferry.yaml", []byte(tc.body))
			code, _, errOut := ferry(t, "pack", "-f", file, "--print-config")
			if code != exitUsage {
				t.Errorf("exit %d, want %d\n%s", code, exitUsage, errOut)
			}
			for _, w := range append(tc.want, file) {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestPackFromConfigIsRecorded: a bundle made from a file records it, and
// inspect --config gives it back.
func TestPackFromConfigIsRecorded(t *testing.T) {
	s := newSignedRelease(t, testbed.ReleaseOptions{Components: 2})
	out := filepath.Join(t.TempDir(), "b.tar")
	cfg := "apiVersion: ferry/v1alpha1\nkind: Bundle\nreleases:\n  - pullSpec: " + s.rel.PullSpec + "\nkeyrings:\n  - " + s.keyFile +
		"\nsignatureStores:\n  - " + s.store.URL + "\noutput: " + out + "\n"
	mustFerry(t, "pack", "-f", writeTemp(t, "ferry.yaml", []byte(cfg)), "--no-self", "--src-tls-verify=false", "--quiet")
	recorded := mustFerry(t, "inspect", out, "--config")
	if !strings.Contains(recorded, "pullSpec: "+s.rel.PullSpec) || !strings.Contains(recorded, s.keyFile) {
		t.Errorf("inspect --config:\n%s", recorded)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}

func sameYAML(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := yaml.Unmarshal([]byte(a), &x); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	ax, _ := yaml.Marshal(x)
	by, _ := yaml.Marshal(y)
	return string(ax) == string(by)
}
