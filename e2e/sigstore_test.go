package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
)

// These tests ship a ClusterImagePolicy in the payload, as 4.21+ releases
// do, and sign with cosign-format signatures that containers/image's
// policy engine accepts (e2e/testbed's oracle test shows it). ferry must
// prove, before the media leaves and again from the bundle alone, that
// each image the policy covers carries a signature the nodes accept.

// sigstoreRelease is a small 4.22-like release: every repository in scope.
func sigstoreRelease(faults testbed.SigstoreFaults) testbed.ReleaseOptions {
	return testbed.ReleaseOptions{Components: 6, LayerSize: 16 << 10, SigstorePolicy: testbed.SigstorePolicy422,
		SigstoreKey: testbed.SigstoreKeyRSA, SigstoreFaults: faults}
}

// inScope counts the manifests a 4.22-like policy covers: all but the
// signatures themselves, once per repository.
func inScope(rel *testbed.Release) int {
	n := 0
	for _, img := range rel.Images {
		if img.Role != testbed.RoleSigstore {
			n++
		}
	}
	return n
}

func TestSigstoreSignedPayload(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, sigstoreRelease(testbed.SigstoreFaults{}))
	path := b.pack(t, "--no-self")
	rec := readIndexFile(t, path).Sigstore
	if rec == nil || rec.Mode != "required" || len(rec.Policies) != 1 || rec.Checked != inScope(b.rel) || len(rec.Gaps) != 0 {
		t.Fatalf("index records %+v, want required, one policy, %d images checked, no gap", rec, inScope(b.rel))
	}
	if p := rec.Policies[0]; p.Name != testbed.ImagePolicyName || !slices.Equal(p.Scopes, b.rel.ImagePolicyScopes) {
		t.Errorf("policy recorded as %+v, want scopes %v", p, b.rel.ImagePolicyScopes)
	}
	out := mustFerry(t, "verify", path, "--keyring", b.keyFile)
	for _, want := range []string{
		"image policy: " + b.rel.Version + ": ClusterImagePolicy openshift",
		fmt.Sprintf("sigstore ok: %d images in scope", inScope(b.rel)),
		// The test key is not Red Hat's, and ferry says so.
		"is not Red Hat's Sigstore key",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	target := testbed.NewMemoryRegistry(t)
	var sum struct {
		Sigstore struct {
			Mode    string
			Checked int
			Gaps    []any
		}
		// The nodes' own check (containers/image's policy engine) of
		// what was pushed, through the rendered mirror set.
		Nodes struct {
			OK      bool
			InScope int
			Mirrors []struct {
				Mirror string
				OK     bool
			}
		}
	}
	if err := json.Unmarshal([]byte(mustFerry(t, applyArgs(t, path, b.keyFile, target.Host, "--json")...)), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Sigstore.Checked != inScope(b.rel) || len(sum.Sigstore.Gaps) != 0 {
		t.Errorf("apply proved %+v, want %d images and no gap", sum.Sigstore, inScope(b.rel))
	}
	if n := sum.Nodes; !n.OK || n.InScope != inScope(b.rel) || len(n.Mirrors) != 1 || n.Mirrors[0].Mirror != target.Host+"/"+targetRepo {
		t.Errorf("the nodes' check after the push: %+v, want every one of %d images admitted through %s", n, inScope(b.rel), target.Host+"/"+targetRepo)
	}
}

// TestSigstoreGaps: each way a signature can fail the node's check refuses
// the pack, naming the image; best-effort carries the release and records
// every gap, which inspect shows and apply proves again (refusing unless
// told best-effort too).
func TestSigstoreGaps(t *testing.T) {
	t.Parallel()
	faults := testbed.SigstoreFaults{Unsigned: []string{"cli"}, OtherKey: []string{"cli-artifacts"}, OtherDigest: []string{"aws-ebs-csi-driver"},
		OtherIdentity: []string{"baremetal-installer"}, NameOnlyIdentity: []string{"cluster-authentication-operator"}}
	b := newFaultBed(t, sigstoreRelease(faults))
	reasons := map[string]string{
		"cli":                             "no signature",
		"cli-artifacts":                   "does not verify with the policy's key",
		"aws-ebs-csi-driver":              "not this image",
		"baremetal-installer":             "is not of repository",
		"cluster-authentication-operator": "names no tag or digest",
	}
	var wants []string
	for name, reason := range reasons {
		wants = append(wants, "component "+name, reason)
	}

	res := ferryRun(t, b.packArgs(filepath.Join(t.TempDir(), "refused.tar"))...)
	wantExit(t, "pack", res, codeVerification, append(wants, "5 images", "--sigstore best-effort")...)

	path := b.pack(t, "--no-self", "--sigstore", "best-effort")
	rec := readIndexFile(t, path).Sigstore
	var gapDigests []digest.Digest
	for _, g := range rec.Gaps {
		gapDigests = append(gapDigests, g.Digest)
	}
	for d, fault := range b.rel.SigstoreFaulty {
		if !slices.Contains(gapDigests, d) {
			t.Errorf("the index records no gap for %s (%s)", d, fault)
		}
	}
	if rec.Mode != "best-effort" || len(rec.Gaps) != len(b.rel.SigstoreFaulty) {
		t.Errorf("index records mode %s and %d gaps, want best-effort and %d", rec.Mode, len(rec.Gaps), len(b.rel.SigstoreFaulty))
	}
	inspect := mustFerry(t, "inspect", path)
	if !strings.Contains(inspect, "sigstore: best-effort") || strings.Count(inspect, "GAP: ") != len(rec.Gaps) {
		t.Errorf("inspect does not show the gaps:\n%s", inspect)
	}

	// apply proves again from the bundle: refused by default, before any
	// write to the target.
	assertRefused(t, b, path, string(gapDigests[0]), wants...)
	res = ferryRun(t, applyArgs(t, path, b.keyFile, testbed.NewMemoryRegistry(t).Host, "--sigstore", "best-effort")...)
	if res.code != 0 || strings.Count(res.stderr, "UNVERIFIED") < len(reasons) {
		t.Errorf("apply --sigstore best-effort: exit %d, want 0 and each gap UNVERIFIED:\n%s", res.code, res.stderr)
	}
}

func TestSigstoreMultiReleaseChildUnsigned(t *testing.T) {
	t.Parallel()
	opts := sigstoreRelease(testbed.SigstoreFaults{UnsignedReleaseChild: true})
	opts.Multi, opts.Components = true, 3
	b := newFaultBed(t, opts)
	var child digest.Digest
	for d := range b.rel.SigstoreFaulty {
		child = d
	}
	res := ferryRun(t, b.packArgs(filepath.Join(t.TempDir(), "multi.tar"), "--arch", "multi")...)
	wantExit(t, "pack", res, codeVerification, "release "+b.rel.Version+" ("+child.Encoded()[:12]+")", "no signature")
}

// TestSigstoreForgedSignature: a courier swaps a component's signature for
// one made with their own key, recomputing every digest and checksum. The
// release chain still proves the signature image (its tag derives from a
// proven digest); only the policy check can catch it.
func TestSigstoreForgedSignature(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, sigstoreRelease(testbed.SigstoreFaults{}))
	genuine := b.pack(t, "--no-self")
	idx := readIndexFile(t, genuine)
	comp := imageOfRole(t, idx, bundle.RoleComponent)
	tag := testbed.SigstoreTag(comp.Digest)
	key, err := testbed.NewSigstoreKey(testbed.SigstoreKeyRSA)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := testbed.CosignPayload(comp.Source+"@"+comp.Digest.String(), comp.Digest)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := testbed.SignCosignPayload(key, payload)
	if err != nil {
		t.Fatal(err)
	}
	forged, blobs, files := cosignImage(t, payload, sig)
	for _, f := range idx.Files {
		delete(files, f.Name) // the genuine payload is these very bytes
	}
	path := copyBundle(t, genuine)
	forge(t, path, forgery{files: files, edit: func(idx *bundle.Index) {
		for i, img := range idx.Images {
			if img.Source == comp.Source && slices.Contains(img.Tags, tag) {
				idx.Images[i].Digest, idx.Images[i].Size, idx.Images[i].Blobs = forged.Digest, forged.Size, blobs
			}
		}
	}})
	assertRefused(t, b, path, forged.Digest.String(), "does not verify with the policy's key")
}

// cosignImage is a signature image as cosign writes it, as bundle files.
func cosignImage(t *testing.T, payload, sig []byte) (ocispec.Descriptor, []digest.Digest, map[string][]byte) {
	t.Helper()
	config := []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["` + digest.FromBytes(payload).String() + `"]}}`)
	m := ocispec.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers: []ocispec.Descriptor{{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: digest.FromBytes(payload),
			Size: int64(len(payload)), Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}}}}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	return ocispec.Descriptor{Digest: d, Size: int64(len(data))}, []digest.Digest{m.Config.Digest, m.Layers[0].Digest}, map[string][]byte{
		bundle.BlobName(d): data, bundle.BlobName(m.Config.Digest): config, bundle.BlobName(m.Layers[0].Digest): payload,
	}
}

// TestSigstoreMirror: ferry mirror proves the signatures as pack does, and
// after copying runs the nodes' check through the mirror set it renders;
// a gap refuses the copy before any write.
func TestSigstoreMirror(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, sigstoreRelease(testbed.SigstoreFaults{}))
	target := testbed.NewMemoryRegistry(t)
	var sum struct {
		Sigstore struct{ Checked int }
		Nodes    struct {
			OK      bool
			InScope int
		}
	}
	if err := json.Unmarshal([]byte(mustFerry(t, b.mirrorArgs(t, target.Host, "--json")...)), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Sigstore.Checked != inScope(b.rel) || !sum.Nodes.OK || sum.Nodes.InScope != inScope(b.rel) {
		t.Errorf("mirror: %+v, want %d images proven and admitted by the nodes' check", sum, inScope(b.rel))
	}

	gaps := newFaultBed(t, sigstoreRelease(testbed.SigstoreFaults{OtherKey: []string{"cli"}}))
	empty := testbed.NewMemoryRegistry(t)
	wantExit(t, "mirror", ferryRun(t, gaps.mirrorArgs(t, empty.Host)...), codeVerification, "component cli", "does not verify with the policy's key")
	assertCatalogEmpty(t, empty)
}
