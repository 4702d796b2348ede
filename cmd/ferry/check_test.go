package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/admission"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/sigstore"
	"github.com/ferryhq/ferry/mirror/trust"
)

// TestTargetOf: the newest proven version is the target, with each of its
// architectures and the components apply tags for them; older releases
// and signature images are left out.
func TestTargetOf(t *testing.T) {
	d := func(s string) digest.Digest { return digest.FromString(s) }
	const rel, art = "quay.io/openshift-release-dev/ocp-release", "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
	proof := &trust.Report{
		Steps: []trust.Step{{Version: "4.20.5", Arch: "x86_64", Digest: d("old")},
			{Version: "4.21.0", Arch: "x86_64", Digest: d("amd")}, {Version: "4.21.0", Arch: "aarch64", Digest: d("arm")}},
		Images: []trust.Image{
			{Source: rel, Digest: d("old"), Tags: []string{"4.20.5-x86_64"}},
			{Source: art, Digest: d("old etcd"), Tags: []string{"4.20.5-x86_64-etcd"}},
			{Source: rel, Digest: d("amd"), Tags: []string{"4.21.0-x86_64"}},
			{Source: rel, Digest: d("arm"), Tags: []string{"4.21.0-aarch64"}},
			{Source: art, Digest: d("etcd"), Tags: []string{"4.21.0-x86_64-etcd"}},
			{Source: art, Digest: d("etcd arm"), Tags: []string{"4.21.0-aarch64-etcd"}},
			{Source: art, Digest: d("sig"), Tags: []string{"sha256-" + d("etcd").Encoded() + ".sig"}},
			{Source: art, Digest: d("4.21.01"), Tags: []string{"4.21.01-x86_64-x"}},
		},
	}
	got, err := targetOf(proof)
	if err != nil {
		t.Fatal(err)
	}
	want := []admission.Image{{Source: rel, Digest: d("amd")}, {Source: rel, Digest: d("arm")},
		{Source: art, Digest: d("etcd")}, {Source: art, Digest: d("etcd arm")}}
	if got.Version != "4.21.0" || !slices.Equal(got.Releases, want[:2]) || !slices.Equal(got.Images, want) {
		t.Errorf("target %s: releases %v, images %v", got.Version, got.Releases, got.Images)
	}
	if _, err := targetOf(&trust.Report{}); err == nil {
		t.Error("a report without a release gave a target")
	}
}

func TestMinorOf(t *testing.T) {
	for v, want := range map[string]string{"4.21.3": "4.21", "4.20": "4.20", "4.22.0-ec.1": "4.22", "4": "", "": "", "x.y.z": "", "4.2a.0": ""} {
		if got := minorOf(v); got != want {
			t.Errorf("minorOf(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestSigstoreGate(t *testing.T) {
	gates := map[string]string{"ack-4.20-kube-1.34-api-removals-in-4.21": "a", "ack-4.21-sigstore-in-4.22": "b", "ack-4.20-sigstore-in-4.21": "c"}
	if k, m, ok := sigstoreGate(gates, "4.21"); k != "ack-4.20-sigstore-in-4.21" || m != "c" || !ok {
		t.Errorf("into 4.21: %q %q %v", k, m, ok)
	}
	if k, _, ok := sigstoreGate(gates, "4.23"); k != "ack-4.20-sigstore-in-4.21" || !ok {
		t.Errorf("into 4.23: %q %v (want the first sigstore gate)", k, ok)
	}
	if k, _, ok := sigstoreGate(map[string]string{"ack-other": "x"}, "4.21"); k != defaultSigstoreAck || ok {
		t.Errorf("no gate: %q %v", k, ok)
	}
}

// TestAdmissionVerdict sums up results as the command does and decides
// the ack and the exit code.
func TestAdmissionVerdict(t *testing.T) {
	rel := admission.Image{Source: "quay.io/openshift-release-dev/ocp-release", Digest: digest.FromString("rel")}
	etcd := admission.Image{Source: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", Digest: digest.FromString("etcd")}
	const m1, m2 = "registry.example:5000/ocp4/openshift4", "backup.example/ocp4"
	res := func(img admission.Image, mirror string, s admission.Status) admission.Result {
		r := admission.Result{Image: img, Mirror: mirror, Status: s, Reason: "because"}
		if s == admission.Failed {
			r.Err = errors.Join(registry.ErrUnauthorized, errors.New("401"))
		}
		return r
	}
	gated := &manifests.ClusterState{Version: &manifests.ClusterVersion{Desired: "4.20.5"},
		AdminGates: map[string]string{defaultSigstoreAck: "ensure mirrors hold signatures"}}
	for _, c := range []struct {
		name    string
		results []admission.Result
		cluster *manifests.ClusterState
		canGive bool
		needed  bool
		code    int
		says    string
	}{
		{"all allowed", []admission.Result{res(rel, m1, admission.Allowed), res(rel, m2, admission.Absent), res(etcd, m1, admission.Allowed)},
			gated, true, true, exitOK, "every mirror"},
		{"one mirror refuses", []admission.Result{res(rel, m1, admission.Allowed), res(rel, m2, admission.Refused)},
			gated, false, true, exitVerification, "would refuse"},
		{"no mirror holds it", []admission.Result{res(rel, m1, admission.Absent)},
			gated, false, true, exitVerification, "would refuse"},
		{"unprovable", []admission.Result{res(rel, m1, admission.Unprovable)},
			gated, false, true, exitVerification, "would refuse"},
		{"unreadable", []admission.Result{res(rel, m1, admission.Allowed), res(etcd, m2, admission.Failed)},
			gated, false, true, exitFailure, "could not be read"},
		{"from the source", []admission.Result{res(rel, "", admission.NoMirror)},
			gated, true, true, exitOK, "pull them from the source"},
		{"nothing in scope", nil, gated, true, true, exitOK, "not ask for Sigstore"},
		{"at the minor already", []admission.Result{res(rel, m1, admission.Allowed)},
			&manifests.ClusterState{Version: &manifests.ClusterVersion{Desired: "4.21.0"}, AdminGates: gated.AdminGates}, true, false, exitOK, "every mirror"},
		{"4.20 without the gate", []admission.Result{res(rel, m1, admission.Allowed)},
			&manifests.ClusterState{Version: &manifests.ClusterVersion{Desired: "4.20.1"}}, true, true, exitOK, "every mirror"},
		{"4.19 without the gate", []admission.Result{res(rel, m1, admission.Allowed)},
			&manifests.ClusterState{Version: &manifests.ClusterVersion{Desired: "4.19.1"}}, true, false, exitOK, "every mirror"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := &admissionReport{Target: &targetRelease{Version: "4.21.0"}, Results: c.results, ClusterVersion: c.cluster.Version.Completed()}
			rep.judge()
			rep.AdminAck = decideAck(c.cluster, rep)
			a := rep.AdminAck
			if a.CanGive != c.canGive || a.Needed != c.needed || !strings.Contains(a.Reason, c.says) {
				t.Errorf("ack %+v, want canGive %v, needed %v, saying %q", a, c.canGive, c.needed, c.says)
			}
			if code := exitCode(rep.err()); code != c.code {
				t.Errorf("exit %d (%v), want %d", code, rep.err(), c.code)
			}
			if a.Command != `oc -n openshift-config patch configmap admin-acks --type=merge --patch '{"data":{"ack-4.20-sigstore-in-4.21":"true"}}'` {
				t.Errorf("command %s", a.Command)
			}
		})
	}
}

// TestAdmissionFailureHint: a mirror refusing the credentials says to
// check them.
func TestAdmissionFailureHint(t *testing.T) {
	rep := &admissionReport{Target: &targetRelease{Version: "4.21.0"}, Results: []admission.Result{{
		Image: admission.Image{Source: "quay.io/a/b", Digest: digest.FromString("x")}, Mirror: "m.example/b", Status: admission.Failed,
		Err: errors.Join(registry.ErrUnauthorized, errors.New("401")),
	}}}
	rep.judge()
	if err := rep.err(); err == nil || !strings.Contains(err.Error(), "--authfile") {
		t.Errorf("err %v", err)
	}
}

// TestCheckAdmissionAfterPush is the check apply makes after pushing: a
// multi-arch release packed and applied, then checked through the mirror
// sets apply renders. The test bed signs the list and its first image
// only: the others are refused by name, and the ack must wait.
func TestCheckAdmissionAfterPush(t *testing.T) {
	p := newPacked(t, testbed.ReleaseOptions{Version: "4.21.0", Components: 2, Sigstore: true, Multi: true})
	target := testbed.NewMemoryRegistry(t)
	mustFerry(t, p.applyArgs(target)...)
	proof := proveBundle(t, p)
	tgt, err := targetOf(proof)
	if err != nil {
		t.Fatal(err)
	}
	policies, err := sigstore.ParsePolicies("policy.yaml", []byte(fmt.Sprintf(`apiVersion: config.openshift.io/v1
kind: ClusterImagePolicy
metadata: {name: openshift}
spec:
  scopes: [%s]
  policy:
    rootOfTrust: {policyType: PublicKey, publicKey: {keyData: %s}}
    signedIdentity: {matchPolicy: MatchRepository}
`, p.rel.Host+"/"+p.rel.Repository, base64.StdEncoding.EncodeToString(p.rel.SigstorePublicKey))))
	if err != nil {
		t.Fatal(err)
	}
	opts := registry.DefaultOptions()
	opts.TLSVerify = false
	rep, err := checkAdmission(context.Background(), admissionInput{Policies: policies, Target: tgt,
		Mirrors: renderedMirrorSets(proof.Sources, target.Host+"/"+targetRepo), Registry: opts, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	var children []digest.Digest
	for _, im := range p.rel.Images {
		if im.Parent == p.rel.Digest {
			children = append(children, im.Digest)
		}
	}
	if len(rep.Results) != 1 || len(children) < 2 {
		t.Fatalf("results %+v; children %v", rep.Results, children)
	}
	r := rep.Results[0]
	if r.Status != admission.Refused || r.Mirror != target.Host+"/"+targetRepo || len(r.Refused) != len(children)-1 || slices.Contains(r.Refused, p.rel.Digest) {
		t.Fatalf("result %+v, want all but one of %v refused", r, children)
	}
	for _, d := range r.Refused {
		if !slices.Contains(children, d) || !strings.Contains(r.Reason, "image "+d.String()+" of the list") {
			t.Errorf("refused %s, not named as an image of the list: %s", d, r.Reason)
		}
	}
	if rep.OK || rep.AdminAck.CanGive || exitCode(rep.err()) != exitVerification {
		t.Errorf("report ok %v, ack %+v, exit %d", rep.OK, rep.AdminAck, exitCode(rep.err()))
	}
}

// proveBundle proves p's bundle with its release key, as apply does.
func proveBundle(t *testing.T, p *packed) *trust.Report {
	t.Helper()
	r, err := bundle.Open(p.bundle, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	kr, err := signature.LoadKeyring(p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	proof := trust.Check(context.Background(), r, trust.Options{Keyring: kr})
	if !proof.OK() {
		t.Fatalf("the bundle does not prove: %v", proof.Faults)
	}
	return proof
}
