//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// journeyMarker precedes each README code block that TestReadmeJourney runs.
const journeyMarker = "<!-- journey -->"

// readmeReleaseDigest is the digest of 4.15.0 (x86_64) the README's
// signature-only step names; the journey runs it with the test release's.
const readmeReleaseDigest = "sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363"

// TestReadmeJourney runs the README's journey, block by block and in order,
// against the test bed: the release registry stands in for quay.io, plain
// HTTP, and the journey's own `ferry serve` (TLS with a CA of its own) for
// registry.example:5000 on a free port; a registries.conf marks both
// insecure, since `sudo update-ca-trust` is not run. `oc` is not run.
func TestReadmeJourney(t *testing.T) {
	script := readmeJourney(t)
	src := testbed.NewRegistry(t)
	rel := testbed.BuildRelease(t, src.Host, testbed.ReleaseOptions{Components: 8, Sigstore: true})
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	store.SignRelease(t, key, rel)
	next := testbed.BuildRelease(t, src.Host, testbed.ReleaseOptions{Components: 8, Sigstore: true, Version: "4.15.1", ShareWith: rel})
	store.SignRelease(t, key, next)
	// The journey starts the bastion's registry itself, on this address.
	dstHost := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	// The operators step reads Red Hat's catalog: the test bed's, laid out
	// as Red Hat's, on the same registry. The README names real packages;
	// the test bed's stand in for them.
	testbed.BuildCatalog(t, src.Host, testbed.CatalogOptions{Sigstore: true})

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"redhat-release-key.asc": string(key.PublicArmored(t)),
		"pull-secret.json":       `{"auths":{"` + src.Host + `":{"auth":"` + "dXNlcjpwYXNz" + `"}}}`,
		"mirror-auth.json":       `{"auths":{"` + dstHost + `":{"auth":"` + "dXNlcjpwYXNz" + `"}}}`,
		"registries.conf": fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n\n[[registry]]\nlocation = %q\ninsecure = true\n",
			src.Host, dstHost),
	})
	// The packer's key, made once as the README says, with real gpg in
	// the journey's HOME (unprotected here: the journey runs unattended).
	home := newGPGHome(t)
	home.must(t, "--passphrase", "", "--quick-gen-key", "Packer <packer@example.com>", "default", "default", "never")
	script = strings.NewReplacer("quay.io/", src.Host+"/", "registry.redhat.io/", src.Host+"/", "registry.example:5000", dstHost,
		"cluster-logging", testbed.CatalogPackageAurora, "openshift-gitops-operator", testbed.CatalogPackageDorado,
		"name: latest", "name: stable", "minVersion: 1.12.0", "minVersion: 3.0.0",
		// The graph data is the slice in ../shared; the additional image
		// one of the test bed's catalog images, by tag.
		"https://api.openshift.com/api/upgrades_info/graph-data", graphDataFixture(t),
		"openshift4/ose-kube-rbac-proxy:v4.15", "cygnus/kube-rbac-proxy:v0.15.0",
		// Any image with bash and cp will do as the graph-data image's base.
		"registry.access.redhat.com/ubi9/ubi:latest", rel.PullSpec,
		// The signature-only path names 4.15.0's real digest.
		readmeReleaseDigest, rel.Digest.String()).Replace(script)
	kubeconfig := maybeKube(t)
	if kubeconfig == "" {
		kubeconfig = filepath.Join(dir, "no-cluster") // apply then renders only
	}
	// The journey leaves its registry running, as an admin would; the
	// script stops it at the end, and the process group is killed should
	// the script fail before.
	script = "set -ex\noc() { echo \"(oc $*: not run by the test)\"; }\nsudo() { echo \"(sudo $*: not run by the test)\"; }\n" +
		script + "kill $registry && wait $registry\n"
	cmd := exec.CommandContext(t.Context(), "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Dir(ferryBin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+dir,
		"KUBECONFIG="+kubeconfig,
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(dir, "registries.conf"),
		"FERRY_SIGNATURE_STORES="+store.URL,
		"GNUPGHOME="+home.dir,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README journey failed: %v\n%s", err, out)
	}
	// The registry the journey ran, read offline: the store ferry serve
	// wrote, served again by the test bed's registry.
	dst := testbed.NewRegistryWith(t, testbed.RegistryOptions{Root: filepath.Join(dir, "mirror-registry")})
	if _, _, err := dst.Client().GetManifest(context.Background(), "ocp4/openshift4", rel.Version+"-"+rel.Arch); !errors.Is(err, testbed.ErrNotFound) {
		t.Errorf("after the prune the mirror still has %s, or cannot say (%v)\n%s", rel.Version, err, out)
	}
	if !strings.Contains(string(out), "--to-image="+dstHost+"/ocp4/openshift4@"+rel.Digest.String()) {
		t.Errorf("apply did not print the next step\n%s", out)
	}
	for _, want := range []string{"Good signature from \"Packer <packer@example.com>\"", "bundle signature ok: Packer <packer@example.com>"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the journey's output does not say %q\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "UNVERIFIED") {
		t.Errorf("the journey left something unverified\n%s", out)
	}
	data, _, err := dst.Client().GetManifest(context.Background(), "ocp4/openshift4", next.Version+"-"+next.Arch)
	if err != nil || !bytes.Equal(data, next.Manifest) {
		t.Errorf("after the incremental step and the prune the mirror does not serve %s (%v)", next.Version, err)
	}
	for _, want := range []string{"would delete", "deleted", "freed "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the journey's prune and gc do not say %q\n%s", want, out)
		}
	}
	sigOnly := filepath.Join(dir, "signatures-only", "config", "signature-sha256-"+rel.Digest.Encoded()[:16]+".yaml")
	if _, err := os.Stat(sigOnly); err != nil {
		t.Errorf("the signature-only step did not write the ConfigMap: %v", err)
	}
	full, incremental := fileSize(t, filepath.Join(dir, "ocp-4.15.0.001.tar")), fileSize(t, filepath.Join(dir, "ocp-4.15.1.tar"))
	if incremental >= full {
		t.Errorf("the incremental bundle (%d bytes) is not smaller than the first one's blobs (%d bytes)", incremental, full)
	}
}

// readmeJourney joins the README's journey blocks into one script.
func readmeJourney(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var script strings.Builder
	blocks := 0
	armed, inBlock := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == journeyMarker:
			armed = true
		case armed && strings.HasPrefix(line, "```"):
			armed, inBlock = false, true
			blocks++
		case inBlock && strings.HasPrefix(line, "```"):
			inBlock = false
		case inBlock:
			script.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if blocks < 4 {
		t.Fatalf("README.md has %d journey blocks; want the internet host, the bastion, the cluster and the next update", blocks)
	}
	return script.String()
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
