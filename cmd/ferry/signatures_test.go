package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"

	"github.com/ferryhq/ferry/e2e/testbed"
)

const ocp4150Digest = "sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363"

func TestSignaturesVerifyRealRedHatSignature(t *testing.T) {
	sig := fixture(t, "redhat", "ocp-4.15.0-x86_64.signature-1")
	releaseKey := fixture(t, "redhat", "verifier-public-key-redhat-release")
	betaKey := fixture(t, "redhat", "verifier-public-key-redhat-beta-2")

	out := mustFerry(t, "signatures", "verify", "--digest", ocp4150Digest, "--keyring", releaseKey, sig)
	for _, want := range []string{"verified", "quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64", "Red Hat OpenShift Signing Authority 0.0.1", "199E2F91FD431D51"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	other := "sha256:" + strings.Repeat("ab", 32)
	code, out, _ := ferry(t, "signatures", "verify", "--digest", other, "--keyring", releaseKey, sig)
	if code != exitVerification || !strings.Contains(out, other) || !strings.Contains(out, ocp4150Digest) {
		t.Errorf("wrong digest: exit %d (want %d), output should name both digests:\n%s", code, exitVerification, out)
	}
	code, out, _ = ferry(t, "signatures", "verify", "--digest", ocp4150Digest, "--keyring", betaKey, sig)
	if code != exitVerification || !strings.Contains(out, "199E2F91FD431D51") {
		t.Errorf("beta key only: exit %d (want %d), output should name the key id:\n%s", code, exitVerification, out)
	}
}

func TestSignaturesVerifyV3AndMultiSignature(t *testing.T) {
	releaseKey := fixture(t, "redhat", "verifier-public-key-redhat-release")
	mustFerry(t, "signatures", "verify", "--keyring", releaseKey,
		"--digest", "sha256:e3f12513a4b22a2d7c0e7c9207f52128113758d9d68c7d06b11a0ac7672966f7",
		fixture(t, "redhat", "rhel7-7.6.signature-1"))
	var noo []string
	for i := 1; i <= 4; i++ {
		noo = append(noo, fixture(t, "redhat", "noo-bundle.signature-"+string(rune('0'+i))))
	}
	args := append([]string{"signatures", "verify", "--keyring", releaseKey,
		"--digest", "sha256:50b9402635dd4b312a86bed05dcdbda8c00120d3789ec2e9b527045100b3bdb4"}, noo...)
	if out := mustFerry(t, args...); strings.Count(out, ": verified") != 4 {
		t.Errorf("want 4 verified signatures:\n%s", out)
	}
}

// TestSignaturesRendersRedHatConfigMap serves the real signatures from a
// file:// store and checks the ConfigMap the cluster will read.
func TestSignaturesRendersRedHatConfigMap(t *testing.T) {
	releaseKey := fixture(t, "redhat", "verifier-public-key-redhat-release")
	sigBytes, err := os.ReadFile(fixture(t, "redhat", "ocp-4.15.0-x86_64.signature-1"))
	if err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	writeStoreSignature(t, store, ocp4150Digest, 1, sigBytes)
	out := filepath.Join(t.TempDir(), "mirror")
	mustFerry(t, "signatures", "4.15.0", "--digest", ocp4150Digest, "--keyring", releaseKey,
		"--signature-store", "file://"+store, "-o", out)

	cm := readConfigMap(t, filepath.Join(out, "config", "signature-sha256-0da6316466d60a3a.yaml"))
	hex := strings.TrimPrefix(ocp4150Digest, "sha256:")
	if cm.Metadata.Name != "sha256-"+hex || cm.Metadata.Namespace != "openshift-config-managed" {
		t.Errorf("metadata = %+v", cm.Metadata)
	}
	if v, ok := cm.Metadata.Labels["release.openshift.io/verification-signatures"]; !ok || v != "" {
		t.Errorf("labels = %v", cm.Metadata.Labels)
	}
	if len(cm.BinaryData) != 1 {
		t.Fatalf("binaryData keys = %d, want 1", len(cm.BinaryData))
	}
	got, err := base64.StdEncoding.DecodeString(cm.BinaryData["sha256-"+hex+"-1"])
	if err != nil || string(got) != string(sigBytes) {
		t.Errorf("binaryData sha256-%s-1 does not decode to the signature bytes (err %v)", hex, err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "signatures", "sha256="+hex, "signature-1"))
	if err != nil || string(raw) != string(sigBytes) {
		t.Errorf("raw signature file: %v", err)
	}
}

// TestSignaturesByDigestAlone: --digest without RELEASE renders the same
// ConfigMap, named by the digest; the output names no release, and the
// identity printed is the one the signature carries.
func TestSignaturesByDigestAlone(t *testing.T) {
	releaseKey := fixture(t, "redhat", "verifier-public-key-redhat-release")
	sigBytes, err := os.ReadFile(fixture(t, "redhat", "ocp-4.15.0-x86_64.signature-1"))
	if err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	writeStoreSignature(t, store, ocp4150Digest, 1, sigBytes)
	out := filepath.Join(t.TempDir(), "not", "yet", "there")
	stdout := mustFerry(t, "signatures", "--digest", ocp4150Digest, "--keyring", releaseKey, "--signature-store", "file://"+store, "-o", out)

	hex := strings.TrimPrefix(ocp4150Digest, "sha256:")
	cm := readConfigMap(t, filepath.Join(out, "config", "signature-sha256-0da6316466d60a3a.yaml"))
	got, err := base64.StdEncoding.DecodeString(cm.BinaryData["sha256-"+hex+"-1"])
	if cm.Metadata.Name != "sha256-"+hex || err != nil || string(got) != string(sigBytes) {
		t.Errorf("ConfigMap %q does not carry the signature under sha256-%s-1 (err %v)", cm.Metadata.Name, hex, err)
	}
	if raw, err := os.ReadFile(filepath.Join(out, "signatures", "sha256="+hex, "signature-1")); err != nil || string(raw) != string(sigBytes) {
		t.Errorf("raw signature file: %v", err)
	}
	for _, want := range []string{"digest  " + ocp4150Digest, "identity quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "release ") {
		t.Errorf("output names a release though none was given:\n%s", stdout)
	}
}

// TestSignaturesByDigestAloneRefusesAnotherDigest: a store that serves,
// under digest D, a good Red Hat signature of another digest is refused:
// without RELEASE the signed docker-manifest-digest is still checked.
func TestSignaturesByDigestAloneRefusesAnotherDigest(t *testing.T) {
	releaseKey := fixture(t, "redhat", "verifier-public-key-redhat-release")
	sigBytes, err := os.ReadFile(fixture(t, "redhat", "ocp-4.15.0-x86_64.signature-1"))
	if err != nil {
		t.Fatal(err)
	}
	other := "sha256:" + strings.Repeat("ab", 32)
	store := t.TempDir()
	writeStoreSignature(t, store, other, 1, sigBytes)
	out := filepath.Join(t.TempDir(), "mirror")
	code, _, errOut := ferry(t, "signatures", "--digest", other, "--keyring", releaseKey, "--signature-store", "file://"+store, "-o", out)
	if code != exitVerification || !strings.Contains(errOut, "no signature of "+other+" verifies") || !strings.Contains(errOut, ocp4150Digest) {
		t.Errorf("exit %d (want %d); stderr should name both digests:\n%s", code, exitVerification, errOut)
	}
	assertEmptyDir(t, out)
}

func TestSignaturesNooBundleFourKeys(t *testing.T) {
	releaseKey := fixture(t, "redhat", "verifier-public-key-redhat-release")
	const d = "sha256:50b9402635dd4b312a86bed05dcdbda8c00120d3789ec2e9b527045100b3bdb4"
	store := t.TempDir()
	for i := 1; i <= 4; i++ {
		data, err := os.ReadFile(fixture(t, "redhat", "noo-bundle.signature-"+string(rune('0'+i))))
		if err != nil {
			t.Fatal(err)
		}
		writeStoreSignature(t, store, d, i, data)
	}
	out := filepath.Join(t.TempDir(), "mirror")
	mustFerry(t, "signatures", "registry.access.redhat.com/albo/aws-load-balancer-operator-bundle@"+d,
		"--keyring", releaseKey, "--signature-store", "file://"+store, "-o", out)
	cm := readConfigMap(t, filepath.Join(out, "config", "signature-sha256-50b9402635dd4b31.yaml"))
	hex := strings.TrimPrefix(d, "sha256:")
	for i := 1; i <= 4; i++ {
		if _, ok := cm.BinaryData["sha256-"+hex+"-"+string(rune('0'+i))]; !ok {
			t.Errorf("ConfigMap lacks key -%d: %v", i, cm.BinaryData)
		}
	}
}

// TestSignaturesEndToEnd: a synthetic release in a real registry, signed by a
// key made here, served by a real HTTP store.
func TestSignaturesEndToEnd(t *testing.T) {
	reg := testbed.NewRegistry(t)
	rel := testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Components: 3})
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	store.SignRelease(t, key, rel)
	keyFile := writeTemp(t, "key.asc", key.PublicArmored(t))

	out := filepath.Join(t.TempDir(), "by-pullspec")
	stdout := mustFerry(t, "signatures", rel.PullSpec, "--tls-verify=false", "--keyring", keyFile, "--signature-store", store.URL, "-o", out)
	if !strings.Contains(stdout, rel.Digest.String()) {
		t.Errorf("output does not name the resolved digest %s:\n%s", rel.Digest, stdout)
	}
	cm := readConfigMap(t, filepath.Join(out, "config", "signature-sha256-"+rel.Digest.Encoded()[:16]+".yaml"))
	if cm.Metadata.Name != "sha256-"+rel.Digest.Encoded() {
		t.Errorf("ConfigMap name %q", cm.Metadata.Name)
	}

	// By version: the default repository is not reachable here, so the
	// digest is given and the registry skipped.
	out = filepath.Join(t.TempDir(), "by-version")
	mustFerry(t, "signatures", rel.Version, "--arch", "amd64", "--digest", rel.Digest.String(), "--keyring", keyFile, "--signature-store", store.URL, "-o", out)
	if _, err := os.Stat(filepath.Join(out, "signatures", "sha256="+rel.Digest.Encoded(), "signature-1")); err != nil {
		t.Error(err)
	}
}

func TestSignaturesStoreRetriesAfter500(t *testing.T) {
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	d := "sha256:" + strings.Repeat("1", 64)
	store.Add(digestOf(d), key.SignRelease(t, d, "example.com/ocp-release:4.15.0-x86_64"))
	store.FailNext(1, 500)
	keyFile := writeTemp(t, "key.asc", key.PublicArmored(t))
	out := filepath.Join(t.TempDir(), "mirror")
	mustFerry(t, "signatures", "4.15.0", "--digest", d, "--keyring", keyFile, "--signature-store", store.URL, "-o", out)
	if _, err := os.Stat(filepath.Join(out, "signatures", "sha256="+strings.Repeat("1", 64), "signature-1")); err != nil {
		t.Errorf("signature not written after a retried 500: %v", err)
	}
}

// TestSignaturesBadInput: each mistake is a clear error and nothing is written.
func TestSignaturesBadInput(t *testing.T) {
	key := testbed.NewKey(t, "release")
	keyFile := writeTemp(t, "key.asc", key.PublicArmored(t))
	emptyKey := writeTemp(t, "empty.asc", nil)
	store := testbed.NewSignatureStore(t)
	d := "sha256:" + strings.Repeat("2", 64)
	store.Oversize(digestOf(d), 5<<20)
	garbageDigest := "sha256:" + strings.Repeat("3", 64)
	store.Add(digestOf(garbageDigest), []byte("this is not an OpenPGP message"))
	closed := testbed.NewRegistry(t)
	unreachable := closed.Host + "/openshift-release-dev/ocp-release:4.15.0-x86_64"
	closed.Close()

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown arch", []string{"4.15.0", "--arch", "sparc", "--keyring", keyFile}, exitUsage, "sparc"},
		{"malformed version", []string{"4.15", "--keyring", keyFile}, exitUsage, "4.15"},
		{"malformed digest", []string{"4.15.0", "--digest", "sha256:abc", "--keyring", keyFile}, exitUsage, "sha256:abc"},
		{"neither RELEASE nor --digest", []string{"--keyring", keyFile}, exitUsage, "RELEASE"},
		{"two RELEASEs", []string{"4.15.0", "4.15.1", "--keyring", keyFile}, exitUsage, "one RELEASE"},
		{"--arch without RELEASE", []string{"--digest", d, "--arch", "arm64", "--keyring", keyFile}, exitUsage, "--arch"},
		{"malformed digest without RELEASE", []string{"--digest", "sha256:abc", "--keyring", keyFile}, exitUsage, "sha256:abc"},
		{"missing keyring", []string{"--digest", d, "--keyring", keyFile + ".gone", "--signature-store", store.URL}, exitFailure, "key.asc.gone"},
		{"unreachable registry", []string{unreachable, "--tls-verify=false", "--keyring", keyFile, "--signature-store", store.URL}, exitFailure, closed.Host},
		{"oversized store answer", []string{"4.15.0", "--digest", d, "--keyring", keyFile, "--signature-store", store.URL}, exitFailure, "larger than"},
		{"garbage signature", []string{"4.15.0", "--digest", garbageDigest, "--keyring", keyFile, "--signature-store", store.URL}, exitVerification, "no signature"},
		{"empty keyring", []string{"4.15.0", "--digest", d, "--keyring", emptyKey, "--signature-store", store.URL}, exitUsage, "empty.asc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "mirror")
			code, _, errOut := ferry(t, append([]string{"signatures", "-o", out}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr should mention %q:\n%s", tc.want, errOut)
			}
			assertEmptyDir(t, out)
		})
	}
}

type configMap struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	BinaryData map[string]string `yaml:"binaryData"`
}

func readConfigMap(t *testing.T, path string) configMap {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cm configMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" {
		t.Errorf("%s: apiVersion %q kind %q", path, cm.APIVersion, cm.Kind)
	}
	return cm
}

func writeStoreSignature(t *testing.T, store, d string, n int, data []byte) {
	t.Helper()
	dir := filepath.Join(store, strings.Replace(d, ":", "=", 1))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "signature-"+string(rune('0'+n))), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
