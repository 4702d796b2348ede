package trust

import (
	"strings"
	"testing"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/sigstore"
	"github.com/ferryhq/ferry/mirror/trust/trusttest"
)

// TestCheckProvesSigstoreFromTheBundle: the policy is read out of the
// release image and each component's cosign signature out of the bundle;
// signatures by another key than the policy's are a fault in Required
// mode, unverified in BestEffort mode, and not looked at in Off mode.
func TestCheckProvesSigstoreFromTheBundle(t *testing.T) {
	key, other := sigstoreKey(t), sigstoreKey(t)
	fx := trusttest.WriteWithPolicy(t, t.TempDir(), []string{"etcd", "cli"}, bundle.WriteOptions{}, key, key)
	rep := check(t, fx.Path, Options{Keyring: fx.Keyring})
	if !rep.OK() || rep.Sigstore == nil || rep.Sigstore.Checked != 2 || len(rep.Sigstore.Gaps) != 0 || len(rep.Sigstore.Policies) != 1 {
		t.Fatalf("faults %q, sigstore %+v", rep.Faults, rep.Sigstore)
	}
	if p := rep.Sigstore.Policies[0]; p.Version != trusttest.Version || p.Policies[0].Name != "openshift" {
		t.Errorf("policies %+v", rep.Sigstore.Policies)
	}

	forged := trusttest.WriteWithPolicy(t, t.TempDir(), []string{"etcd", "cli"}, bundle.WriteOptions{}, key, other)
	rep = check(t, forged.Path, Options{Keyring: forged.Keyring})
	if rep.OK() || strings.Count(strings.Join(rep.Faults, "\n"), "does not verify with the policy's key") != 2 {
		t.Errorf("signatures by another key, required: faults %q", rep.Faults)
	}
	rep = check(t, forged.Path, Options{Keyring: forged.Keyring, Sigstore: sigstore.BestEffort})
	if !rep.OK() || len(rep.Sigstore.Gaps) != 2 || !strings.Contains(strings.Join(rep.Unverified, "\n"), "best-effort") {
		t.Errorf("best-effort: faults %q, gaps %+v, unverified %q", rep.Faults, rep.Sigstore.Gaps, rep.Unverified)
	}
	rep = check(t, forged.Path, Options{Keyring: forged.Keyring, Sigstore: sigstore.Off})
	if !rep.OK() || rep.Sigstore.Checked != 0 || !strings.Contains(strings.Join(rep.Unverified, "\n"), "not checked") {
		t.Errorf("off: faults %q, sigstore %+v, unverified %q", rep.Faults, rep.Sigstore, rep.Unverified)
	}
}

func sigstoreKey(t *testing.T) *testbed.SigstoreKey {
	t.Helper()
	key, err := testbed.NewSigstoreKey(testbed.SigstoreKeyECDSA)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
