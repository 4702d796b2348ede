//go:build unix

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
)

const targetRepo = "ocp4/openshift4"

// TestJourney is the whole trip across the gap, with the binary: a release
// in one registry process, signed in a signature store; ferry pack, verify,
// inspect; on the bastion, `ferry serve` with a CA of its own as the mirror
// registry, ferry apply into it and, when the test bed has one, a real API
// server. With FERRY_DEMO=1 it narrates (make demo).
func TestJourney(t *testing.T) {
	var w io.Writer
	if os.Getenv("FERRY_DEMO") != "" {
		w = os.Stdout
	}
	say := func(format string, args ...any) {
		if w != nil {
			fmt.Fprintf(w, "\n== "+format+"\n", args...)
		}
	}
	dir := t.TempDir()

	say("connected side: a release registry, a signature store and a release key")
	src := newRegistry(t, w != nil)
	rel := testbed.BuildRelease(t, src.Host, testbed.ReleaseOptions{Components: 20, Sigstore: true, LayerSize: 64 << 10})
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	store.SignRelease(t, key, rel)
	keyFile := filepath.Join(dir, "release-key.asc")
	if err := os.WriteFile(keyFile, key.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	say("release %s at %s (%d components, %d unique blobs)", rel.Version, rel.PullSpec, len(rel.Components), len(rel.Blobs))
	// The packer's own key: it signs the bundle, and its public half
	// reaches the bastion by another channel than the media.
	packer := testbed.NewKey(t, "packer")
	packerKey, packerPub := filepath.Join(dir, "packer.key"), filepath.Join(dir, "packer.pub")
	if err := os.WriteFile(packerKey, packer.PrivateArmored(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(packerPub, packer.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}

	bundlePath := filepath.Join(dir, "ocp-"+rel.Version+".tar")
	mustRun(t, w, "pack", rel.PullSpec, "-o", bundlePath, "--src-tls-verify=false",
		"--keyring", keyFile, "--signature-store", store.URL, "--sign-key", packerKey, "--quiet")

	say("the media: the bundle is checked offline before and after the trip")
	verified := mustRun(t, w, "verify", bundlePath, "--keyring", keyFile, "--bundle-keyring", packerPub, "--quiet")
	if !strings.Contains(verified.stdout, "bundle signature ok") || strings.Contains(verified.stdout, "UNVERIFIED") {
		t.Errorf("verify does not prove the signed bundle whole:\n%s", verified.stdout)
	}
	inspect := mustRun(t, w, "inspect", bundlePath, "--bundle-keyring", packerPub)
	if !strings.Contains(inspect.stdout, rel.Digest.String()) || !strings.Contains(inspect.stdout, "signature: verified") {
		t.Errorf("inspect does not show the release digest and the verified signature:\n%s", inspect.stdout)
	}

	say("disconnected side: the bastion's registry, ferry serve with a CA of its own")
	srv := startServe(t, "--root", filepath.Join(dir, "registry"), "--tls-self-signed")
	dst := srv.client(t)
	if w != nil {
		fmt.Fprintf(w, "ferry serve listening on %s; clients trust %s (or --cert-dir %s)\n", srv.status.Address, srv.status.CA, srv.status.CertDir)
	}
	target := srv.status.Address + "/" + targetRepo
	args := []string{"apply", bundlePath, "--to", target, "--cert-dir", srv.status.CertDir, "--keyring", keyFile,
		"--bundle-keyring", packerPub, "--output-dir", filepath.Join(dir, "manifests"), "--quiet"}
	if kube := maybeKube(t); kube != "" && w == nil {
		args = append(args, "--kubeconfig", kube)
	} else {
		args = append(args, "--no-cluster")
	}
	applied := mustRun(t, w, args...)
	wantNext := "--to-image=" + target + "@" + rel.Digest.String()
	if !strings.Contains(applied.stdout, wantNext) {
		t.Errorf("apply does not say what is next (%s):\n%s", wantNext, applied.stdout)
	}

	say("what landed in %s", target)
	tags, err := dst.Tags(context.Background(), targetRepo)
	if err != nil {
		t.Fatal(err)
	}
	if w != nil {
		fmt.Fprintf(w, "%d tags, among them %s\n", len(tags), strings.Join(tags[:min(4, len(tags))], ", "))
	}
	data, _, err := dst.GetManifest(context.Background(), targetRepo, rel.Version+"-"+rel.Arch)
	if err != nil || !bytes.Equal(data, rel.Manifest) {
		t.Errorf("the release tag in the target does not hold the release manifest (%v)", err)
	}
	if len(tags) < len(rel.Components)+1 {
		t.Errorf("target has %d tags, want at least %d", len(tags), len(rel.Components)+1)
	}
	say("ferry serve stops on SIGTERM, finishing what is in flight")
	srv.stop(t)
}

// newRegistry is a registry in a process of its own (Debian's
// docker-registry), or, for the demo, which must run on nothing but Go, one
// embedded in the test process.
func newRegistry(t *testing.T, embedded bool) *testbed.Registry {
	t.Helper()
	if embedded {
		return testbed.NewRegistry(t)
	}
	return testbed.StartDockerRegistry(t).Registry
}

// maybeKube returns a kubeconfig for a real API server with the OpenShift
// CRDs, or "" when the binaries are not built (make kube-bins).
func maybeKube(t *testing.T) string {
	t.Helper()
	if os.Getenv("FERRY_KUBE_BIN_DIR") == "" {
		return ""
	}
	k := testbed.StartKube(t)
	k.InstallOpenShiftCRDs(t)
	k.CreateNamespace(t, "openshift-config-managed")
	k.CreateNamespace(t, "openshift-marketplace")
	return k.Kubeconfig
}
