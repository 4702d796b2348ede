package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
)

// checkBed is a 4.21 release on the test bed, packed and applied into a
// mirror registry, and a 4.20 cluster (a real kube-apiserver) asking for
// the Sigstore admin-ack.
type checkBed struct {
	*faultBed
	bundle    string
	mirror    *testbed.Registry
	rendered  string // the manifests apply rendered
	kube      *testbed.Kube
	applier   *manifests.Applier
	policy422 string // 4.22-like, given with --policy: the component repositories too
}

func newCheckBed(t *testing.T) *checkBed {
	t.Helper()
	// The payload ships a 4.21-like policy (the release repository); one
	// component, out of its scope, is unsigned.
	b := &checkBed{faultBed: newFaultBed(t, testbed.ReleaseOptions{Version: "4.21.0", Components: 4,
		SigstorePolicy: testbed.SigstorePolicy421, SigstoreFaults: testbed.SigstoreFaults{Unsigned: []string{"cli"}}})}
	b.bundle = b.pack(t, "--no-self")
	b.mirror = testbed.NewMemoryRegistry(t)
	b.rendered = filepath.Join(t.TempDir(), "manifests")
	mustFerry(t, applyArgs(t, b.bundle, b.keyFile, b.mirror.Host, "--output-dir", b.rendered)...)

	b.kube = testbed.StartKube(t)
	b.kube.InstallOpenShiftCRDs(t)
	b.kube.CreateNamespace(t, manifests.AdminAcksNamespace)
	b.kube.CreateNamespace(t, manifests.AdminGatesNamespace)
	var err error
	if b.applier, err = manifests.NewApplier(b.kube.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	b.apply(t, []byte(fmt.Sprintf(`apiVersion: config.openshift.io/v1
kind: ClusterVersion
metadata: {name: version}
spec: {channel: stable-4.20}
status:
  desired: {version: 4.20.5}
  history: [{state: Completed, version: 4.20.5, verified: true, image: %q}]
`, b.rel.Host+"/"+b.rel.Repository+"@sha256:"+strings.Repeat("5", 64))),
		[]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: admin-gates, namespace: openshift-config-managed}\n"+
			"data: {ack-4.20-sigstore-in-4.21: \"ensure that any registries configured as mirrors contain the Sigstore signature images\"}\n"))

	release := b.rel.Host + "/" + b.rel.Repository
	dir := t.TempDir()
	b.policy422 = writePolicy(t, dir, "openshift-422", b.rel.SigstorePublicKey, release,
		b.rel.Host+"/"+testbed.ComponentRepository, b.rel.Host+"/"+testbed.ExtraComponentRepository)
	return b
}

func (b *checkBed) apply(t *testing.T, objects ...[]byte) {
	t.Helper()
	if _, err := b.applier.Apply(context.Background(), objects); err != nil {
		t.Fatal(err)
	}
}

// check runs ferry check under the payload's own policy and, when policy
// is not empty, that --policy file too.
func (b *checkBed) check(t *testing.T, policy string, extra ...string) result {
	t.Helper()
	args := []string{"check", b.bundle, "--kubeconfig", b.kube.Kubeconfig, "--keyring", b.keyFile, "--dest-tls-verify=false", "--quiet"}
	if policy != "" {
		args = append(args, "--policy", policy)
	}
	return ferryRun(t, append(args, extra...)...)
}

// writePolicy writes a ClusterImagePolicy of key over scopes, with the
// default identity rule (MatchRepoDigestOrExact).
func writePolicy(t *testing.T, dir, name string, key []byte, scopes ...string) string {
	t.Helper()
	var s strings.Builder
	fmt.Fprintf(&s, "apiVersion: config.openshift.io/v1\nkind: ClusterImagePolicy\nmetadata: {name: %s}\nspec:\n  scopes:\n", name)
	for _, sc := range scopes {
		fmt.Fprintf(&s, "  - %s\n", sc)
	}
	fmt.Fprintf(&s, "  policy:\n    rootOfTrust:\n      policyType: PublicKey\n      publicKey: {keyData: %s}\n",
		base64.StdEncoding.EncodeToString(key))
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(s.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckAdmission runs ferry check against a real API server: without
// mirror sets (nodes pull from the source), with the mirror sets apply
// rendered (the mirror holds every signature), under a 4.22-like policy
// (unsigned components are refused), and with the release's signature
// gone from the mirror.
func TestCheckAdmission(t *testing.T) {
	b := newCheckBed(t)
	mirrorRepo := b.mirror.Host + "/" + targetRepo
	command := `oc -n openshift-config patch configmap admin-acks --type=merge --patch '{"data":{"ack-4.20-sigstore-in-4.21":"true"}}'`

	t.Run("no mirror sets", func(t *testing.T) {
		wantExit(t, "check", b.check(t, ""), codeOK,
			"cluster is at 4.20.5", "nodes pull from the source", "admin-ack ack-4.20-sigstore-in-4.21 can be given", command)
	})

	idms, err := filepath.Glob(filepath.Join(b.rendered, "idms-*.yaml"))
	if err != nil || len(idms) != 1 {
		t.Fatalf("apply rendered %v (%v), want one ImageDigestMirrorSet", idms, err)
	}
	data, err := os.ReadFile(idms[0])
	if err != nil {
		t.Fatal(err)
	}
	b.apply(t, data)

	t.Run("signatures on the mirror", func(t *testing.T) {
		res := b.check(t, "")
		wantExit(t, "check", res, codeOK, "mirror "+mirrorRepo+": signatures present and valid (1 allowed)",
			"admin-ack ack-4.20-sigstore-in-4.21 can be given: every mirror", command)
		var rep struct {
			OK       bool `json:"ok"`
			AdminAck struct {
				Key     string `json:"key"`
				Needed  bool   `json:"needed"`
				CanGive bool   `json:"canGive"`
				Command string `json:"command"`
			} `json:"adminAck"`
			Results []struct {
				Mirror string `json:"mirror"`
				Status string `json:"status"`
				Image  struct {
					Digest string `json:"digest"`
				} `json:"image"`
			} `json:"results"`
		}
		out := b.check(t, "", "--json")
		if err := json.Unmarshal([]byte(out.stdout), &rep); err != nil || out.code != codeOK {
			t.Fatalf("--json: exit %d, %v\n%s", out.code, err, out.stdout)
		}
		a := rep.AdminAck
		if !rep.OK || !a.Needed || !a.CanGive || a.Key != "ack-4.20-sigstore-in-4.21" || a.Command != command ||
			len(rep.Results) != 1 || rep.Results[0].Status != "allowed" || rep.Results[0].Mirror != mirrorRepo ||
			rep.Results[0].Image.Digest != b.rel.Digest.String() {
			t.Errorf("--json report: %+v", rep)
		}
	})

	t.Run("4.22-like scopes, unsigned components", func(t *testing.T) {
		var unsigned []string
		for d := range b.rel.SigstoreFaulty {
			unsigned = append(unsigned, d.String())
		}
		if len(unsigned) == 0 {
			t.Fatal("the test bed signed every component")
		}
		wantExit(t, "check", b.check(t, b.policy422), codeVerification,
			append(unsigned, "mirror "+mirrorRepo+": MISSING OR INVALID signatures", "no signature exists", "must NOT be given")...)
	})

	t.Run("signature gone from the mirror", func(t *testing.T) {
		c := testbed.NewClient(b.mirror.Host)
		sig, err := c.HeadManifest(context.Background(), targetRepo, testbed.SigstoreTag(b.rel.Digest))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteManifest(context.Background(), targetRepo, sig.Digest); err != nil {
			t.Fatal(err)
		}
		// The source still has it: the check must not look there.
		if _, err := testbed.NewClient(b.rel.Host).HeadManifest(context.Background(), b.rel.Repository, testbed.SigstoreTag(b.rel.Digest)); err != nil {
			t.Fatal(err)
		}
		wantExit(t, "check", b.check(t, ""), codeVerification,
			b.rel.Digest.String(), "no signature exists", "must NOT be given yet", "do not give the admin-ack ack-4.20-sigstore-in-4.21 yet")
	})
}

// TestCheckWithoutPolicy: a bundle whose release ships no policy (and no
// --policy) has nothing for the nodes to check; usage errors exit 2.
func TestCheckWithoutPolicy(t *testing.T) {
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 2})
	bundlePath := b.pack(t, "--no-self")
	k := testbed.StartKube(t)
	res := ferryRun(t, "check", bundlePath, "--kubeconfig", k.Kubeconfig, "--keyring", b.keyFile, "--quiet")
	wantExit(t, "check", res, codeOK, "no image policy", "nodes will not ask for Sigstore signatures")

	bad := filepath.Join(t.TempDir(), "not-a-policy.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantExit(t, "check --policy", ferryRun(t, "check", bundlePath, "--kubeconfig", k.Kubeconfig, "--policy", bad), codeUsage, "no ClusterImagePolicy")
	wantExit(t, "check without a bundle", ferryRun(t, "check", "--kubeconfig", k.Kubeconfig), codeUsage, "expected a BUNDLE")
}
