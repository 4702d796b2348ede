package admission

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

const (
	releaseRepo = "ocp/release" // on the source registry
	mirrorRepo  = "ocp4/openshift4"
	version     = "4.21.0"
)

// bed is a source registry, the cluster's name for the images, and a
// mirror registry, where the node pulls them from.
type bed struct {
	source, mirror *testbed.Registry
	key            *cosignKey
	policies       []sigstore.Policy
	sets           []MirrorSet
}

func newBed(t *testing.T) *bed {
	t.Helper()
	b := &bed{source: testbed.NewMemoryRegistry(t), mirror: testbed.NewMemoryRegistry(t), key: newCosignKey(t)}
	b.policies = []sigstore.Policy{b.key.policy("openshift", b.sourceRepo())}
	b.sets = []MirrorSet{{Source: b.sourceRepo(), Mirrors: []string{b.mirrorRepo()}}}
	return b
}

func (b *bed) sourceRepo() string { return b.source.Host + "/" + releaseRepo }
func (b *bed) mirrorRepo() string { return b.mirror.Host + "/" + mirrorRepo }

// identity is what Red Hat signs: the source name with the version tag.
func (b *bed) identity() string { return b.sourceRepo() + ":" + version }

// pushBoth puts img in the source and the mirror, as ferry apply would.
func (b *bed) pushBoth(t *testing.T, img *testImage) Image {
	t.Helper()
	img.push(t, b.source, releaseRepo)
	img.push(t, b.mirror, mirrorRepo)
	return Image{Source: b.sourceRepo(), Digest: img.digest}
}

func testOptions(t *testing.T) Options {
	t.Helper()
	return Options{Registry: registry.Options{
		AuthFile:  filepath.Join(t.TempDir(), "auth.json"),
		TLSVerify: false,
		UserAgent: "ferry-test",
		Retry:     registry.RetryPolicy{Attempts: 2, Base: time.Millisecond, Max: time.Millisecond},
	}}
}

func (b *bed) check(t *testing.T, images ...Image) []Result {
	t.Helper()
	res, err := Check(context.Background(), b.policies, b.sets, images, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(images) {
		t.Fatalf("%d results for %d images: %+v", len(res), len(images), res)
	}
	return res
}

func wantStatus(t *testing.T, r Result, status Status, reason ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s through %q: %s (%s), want %s", r.Image, r.Mirror, r.Status, r.Reason, status)
	}
	for _, s := range reason {
		if !strings.Contains(r.Reason, s) {
			t.Errorf("%s: reason %q does not say %q", r.Image, r.Reason, s)
		}
	}
}

// TestSignedOnMirror: the signature sits in the mirror repository, naming
// the source: the node runs the image.
func TestSignedOnMirror(t *testing.T) {
	b := newBed(t)
	img := b.pushBoth(t, newImage(t, "release", "amd64"))
	b.key.sign(t, b.mirror, mirrorRepo, b.identity(), img.Digest)
	r := b.check(t, img)[0]
	wantStatus(t, r, Allowed)
	if r.Mirror != b.mirrorRepo() || !slices.Equal(r.Policies, []string{"ClusterImagePolicy openshift"}) {
		t.Errorf("mirror %q, policies %v", r.Mirror, r.Policies)
	}
}

// TestSignatureOnlyAtSource: the source holds the signature, the mirror
// does not. A node pulling through the mirror finds none, so the check
// must refuse: it cannot fall back to the source.
func TestSignatureOnlyAtSource(t *testing.T) {
	b := newBed(t)
	img := b.pushBoth(t, newImage(t, "release", "amd64"))
	b.key.sign(t, b.source, releaseRepo, b.identity(), img.Digest)
	r := b.check(t, img)[0]
	wantStatus(t, r, Refused, "no signature exists")
	if !slices.Equal(r.Refused, []digest.Digest{img.Digest}) {
		t.Errorf("refused %v", r.Refused)
	}

	// The same image checked with the source as its own mirror passes:
	// the refusal above was about where the signature is, nothing else.
	b.sets = []MirrorSet{{Source: b.sourceRepo(), Mirrors: []string{b.sourceRepo()}}}
	wantStatus(t, b.check(t, img)[0], Allowed)
}

// TestSignatureByAnotherKey: a well-formed signature by a key the policy
// does not name is refused.
func TestSignatureByAnotherKey(t *testing.T) {
	b := newBed(t)
	img := b.pushBoth(t, newImage(t, "release", "amd64"))
	newCosignKey(t).sign(t, b.mirror, mirrorRepo, b.identity(), img.Digest)
	wantStatus(t, b.check(t, img)[0], Refused, "cryptographic signature verification failed")
}

// TestSignatureRules: what the engine refuses of a signature by the right
// key: another digest, another repository, a reference without tag under
// the default rule.
func TestSignatureRules(t *testing.T) {
	b := newBed(t)
	img := b.pushBoth(t, newImage(t, "release", "amd64"))
	other := newImage(t, "other", "amd64")
	for _, c := range []struct {
		name, identity string
		signs          digest.Digest
		want           string
	}{
		{"another digest", b.identity(), other.digest, "does not match"},
		{"another repository", b.source.Host + "/ocp/other:" + version, img.Digest, "not accepted"},
		{"name only", b.sourceRepo(), img.Digest, "not accepted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The signature of c.signs, stored under img's tag.
			b.key.signAs(t, b.mirror, mirrorRepo, c.identity, c.signs, img.Digest)
			wantStatus(t, b.check(t, img)[0], Refused, c.want)
		})
	}
}

// TestListWithUnsignedChild: a node checks a manifest list and the image
// of it it runs: each unsigned one is refused by name.
func TestListWithUnsignedChild(t *testing.T) {
	b := newBed(t)
	amd, arm := newImage(t, "release-amd64", "amd64"), newImage(t, "release-arm64", "arm64")
	list := newIndex(t, amd, arm)
	img := b.pushBoth(t, list)
	b.key.sign(t, b.mirror, mirrorRepo, b.identity(), amd.digest)
	r := b.check(t, img)[0]
	wantStatus(t, r, Refused, list.digest.String()+" (the manifest list): A signature was required", "image "+arm.digest.String())
	if !slices.Equal(r.Refused, []digest.Digest{list.digest, arm.digest}) {
		t.Errorf("refused %v, want the list and %s", r.Refused, arm.digest)
	}

	b.key.sign(t, b.mirror, mirrorRepo, b.identity(), list.digest)
	r = b.check(t, img)[0]
	wantStatus(t, r, Refused, "image "+arm.digest.String()+" of the list (linux/arm64): A signature was required")
	if !slices.Equal(r.Refused, []digest.Digest{arm.digest}) || strings.Contains(r.Reason, amd.digest.String()) {
		t.Errorf("refused %v (%s), want only %s", r.Refused, r.Reason, arm.digest)
	}

	b.key.sign(t, b.mirror, mirrorRepo, b.identity(), arm.digest)
	wantStatus(t, b.check(t, img)[0], Allowed)
}

// TestNotAsked: images no policy names and images no mirror set routes
// are answered without a registry; the mirror here is down, so asking it
// would fail.
func TestNotAsked(t *testing.T) {
	b := newBed(t)
	b.mirror.Close()
	outside := Image{Source: b.source.Host + "/other/app", Digest: digest.FromString("x")}
	unrouted := Image{Source: b.sourceRepo(), Digest: digest.FromString("y")}
	res, err := Check(context.Background(), b.policies, []MirrorSet{{Source: b.source.Host + "/other", Mirrors: []string{b.mirrorRepo()}}},
		[]Image{outside, unrouted}, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, res[0], OutOfScope)
	wantStatus(t, res[1], NoMirror)
	if res[1].Mirror != "" || len(res[1].Policies) != 1 {
		t.Errorf("no-mirror result %+v", res[1])
	}
}

// TestEveryMirror: each mirror of the source is checked, in order; a
// mirror without the image is Absent, one that cannot be reached Failed.
func TestEveryMirror(t *testing.T) {
	b := newBed(t)
	img := b.pushBoth(t, newImage(t, "release", "amd64"))
	b.key.sign(t, b.mirror, mirrorRepo, b.identity(), img.Digest)
	second := testbed.NewMemoryRegistry(t)
	newImage(t, "release", "amd64").push(t, second, "unsigned/copy")
	empty := testbed.NewMemoryRegistry(t)
	down := testbed.NewMemoryRegistry(t)
	down.Close()
	b.sets = append(b.sets, MirrorSet{Source: b.sourceRepo(), Mirrors: []string{
		second.Host + "/unsigned/copy", empty.Host + "/nothing/here", b.mirrorRepo(), down.Host + "/gone"}})
	res, err := Check(context.Background(), b.policies, b.sets, []Image{img}, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("%d results, want 4 (a repeated mirror counts once): %+v", len(res), res)
	}
	wantStatus(t, res[0], Allowed)
	wantStatus(t, res[1], Refused, "no signature exists")
	wantStatus(t, res[2], Absent, "not in the mirror")
	wantStatus(t, res[3], Failed)
	if res[1].Mirror != second.Host+"/unsigned/copy" || !errors.Is(res[3].Err, registry.ErrUnreachable) {
		t.Errorf("mirror %q; error %v", res[1].Mirror, res[3].Err)
	}
}

// TestNamespaceSource: a mirror set of a namespace sends each repository
// under it to the same path under the mirror.
func TestNamespaceSource(t *testing.T) {
	b := newBed(t)
	img := newImage(t, "release", "amd64")
	img.push(t, b.mirror, "mirrored/"+releaseRepo)
	b.key.sign(t, b.mirror, "mirrored/"+releaseRepo, b.identity(), img.digest)
	b.sets = []MirrorSet{{Source: b.source.Host + "/ocp", Mirrors: []string{b.mirror.Host + "/mirrored/ocp"}}}
	r := b.check(t, Image{Source: b.sourceRepo(), Digest: img.digest})[0]
	wantStatus(t, r, Allowed)
	if r.Mirror != b.mirror.Host+"/mirrored/"+releaseRepo {
		t.Errorf("mirror %q", r.Mirror)
	}
}

// TestUnprovable: a policy ferry cannot check is reported, never passed;
// beside a key policy, the key policy is still enforced.
func TestUnprovable(t *testing.T) {
	b := newBed(t)
	img := b.pushBoth(t, newImage(t, "release", "amd64"))
	fulcio := sigstore.Policy{Kind: sigstore.KindClusterImagePolicy, Name: "keyless", Scopes: []string{b.sourceRepo()},
		RootOfTrust: sigstore.RootFulcioCAWithRekor, MatchPolicy: sigstore.MatchRepoDigestOrExact}

	b.policies = []sigstore.Policy{fulcio}
	wantStatus(t, b.check(t, img)[0], Unprovable, "keyless (FulcioCAWithRekor)")

	b.policies = []sigstore.Policy{fulcio, b.key.policy("openshift", b.sourceRepo())}
	wantStatus(t, b.check(t, img)[0], Refused, "no signature exists")
	b.key.sign(t, b.mirror, mirrorRepo, b.identity(), img.Digest)
	wantStatus(t, b.check(t, img)[0], Unprovable, "keyless")
}

// TestEveryPolicyOfTheScope: two policies of the same scope must both
// accept; a broader scope's policy does not apply where a narrower one
// does.
func TestEveryPolicyOfTheScope(t *testing.T) {
	b := newBed(t)
	img := b.pushBoth(t, newImage(t, "release", "amd64"))
	b.key.sign(t, b.mirror, mirrorRepo, b.identity(), img.Digest)
	other := newCosignKey(t)

	b.policies = []sigstore.Policy{b.key.policy("openshift", b.sourceRepo()), other.policy("second", b.sourceRepo())}
	wantStatus(t, b.check(t, img)[0], Refused, "cryptographic signature verification failed")

	b.policies = []sigstore.Policy{b.key.policy("openshift", b.sourceRepo()), other.policy("broad", b.source.Host)}
	r := b.check(t, img)[0]
	wantStatus(t, r, Allowed)
	if !slices.Equal(r.Policies, []string{"ClusterImagePolicy openshift"}) {
		t.Errorf("policies %v", r.Policies)
	}
}

// TestTempDirRemoved: the node configuration does not outlive Check.
func TestTempDirRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	b := newBed(t)
	img := b.pushBoth(t, newImage(t, "release", "amd64"))
	wantStatus(t, b.check(t, img)[0], Refused)
	left, err := os.ReadDir(tmp)
	if err != nil || len(left) != 0 {
		t.Errorf("left in TMPDIR: %v %v", left, err)
	}
}

// TestCancelled: a cancelled context ends Check with its error.
func TestCancelled(t *testing.T) {
	b := newBed(t)
	img := b.pushBoth(t, newImage(t, "release", "amd64"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, b.policies, b.sets, []Image{img}, testOptions(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v", err)
	}
}

func TestMirrorsFor(t *testing.T) {
	sets := []MirrorSet{
		{Source: "quay.io/openshift-release-dev", Mirrors: []string{"m1.example/ns"}},
		{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"m2.example/ocp4", "m3.example/ocp4/"}},
		{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"m2.example/ocp4", "m4.example/r"}},
		{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"tags.example/r"}, TagOnly: true},
		{Source: "*.redhat.io", Mirrors: []string{"m5.example/rh"}},
		{Source: "docker.io/library/busybox", Mirrors: []string{"tags.example/bb"}, TagOnly: true},
		{Source: "docker.io/library", Mirrors: []string{"m6.example/lib"}},
	}
	for _, c := range []struct {
		repo string
		want []string
	}{
		{"quay.io/openshift-release-dev/ocp-release", []string{"m2.example/ocp4", "m3.example/ocp4", "m4.example/r"}},
		{"quay.io/openshift-release-dev/ocp-v4.0-art-dev", []string{"m1.example/ns/ocp-v4.0-art-dev"}},
		{"quay.io/openshift-release-dev/ocp-release-nightly", []string{"m1.example/ns/ocp-release-nightly"}},
		{"registry.redhat.io/ubi9/ubi", []string{"m5.example/rh/ubi9/ubi"}},
		{"redhat.io/ubi9/ubi", nil},
		{"quay.io/other/app", nil},
		// The most specific source has only tag mirrors: a pull by digest
		// goes to the source, not to the broader set's mirror.
		{"docker.io/library/busybox", nil},
		{"docker.io/library/alpine", []string{"m6.example/lib/alpine"}},
	} {
		if got := MirrorsFor(sets, c.repo); !slices.Equal(got, c.want) {
			t.Errorf("MirrorsFor(%s) = %q, want %q", c.repo, got, c.want)
		}
	}
}
