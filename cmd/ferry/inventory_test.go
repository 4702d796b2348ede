package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/inventory"
)

func readInventoryFile(t *testing.T, path string) *inventory.Inventory {
	t.Helper()
	inv, err := readInventory(path)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// TestIncrementalBundle: release 1 is packed and applied; the mirror's
// inventory then leaves out of release 2's bundle exactly the blobs the two
// share, which the index lists as prerequisites. That bundle verifies
// offline, applies to the mirror, and is refused by an empty registry
// before anything is pushed, naming a missing prerequisite.
func TestIncrementalBundle(t *testing.T) {
	p := newReleasePair(t, testbed.ReleaseOptions{Components: 4, Sigstore: true})
	dir := t.TempDir()
	first := filepath.Join(dir, "first.tar")
	mustFerry(t, p.packArgs(first, p.first.PullSpec)...)
	mirrorReg := testbed.NewMemoryRegistry(t)
	mustFerry(t, p.applyArgs(first, mirrorReg)...)

	// The inventory of the mirror, and the same derived from the bundle.
	fromRegistry := filepath.Join(dir, "inventory.json")
	out := mustFerry(t, "inventory", "--to", mirrorReg.Host+"/"+targetRepo, "--dest-tls-verify=false", "-o", fromRegistry)
	if !strings.Contains(out, "releases "+p.first.Tag) || !strings.Contains(out, "wrote "+fromRegistry) {
		t.Errorf("inventory summary:\n%s", out)
	}
	fromBundle := filepath.Join(dir, "from-bundle.json")
	mustFerry(t, "inventory", "--from-bundle", first, "-o", fromBundle)
	invReg, invBundle := readInventoryFile(t, fromRegistry), readInventoryFile(t, fromBundle)
	if !slices.Equal(invReg.Manifests, invBundle.Manifests) || !slices.Equal(invReg.Blobs, invBundle.Blobs) || !slices.Equal(invReg.Releases, invBundle.Releases) {
		t.Errorf("the inventory from the bundle differs from the mirror's:\nregistry %+v\nbundle   %+v", invReg, invBundle)
	}
	if len(invReg.Blobs) != len(p.first.Blobs) {
		t.Errorf("inventory lists %d blobs, release 1 has %d", len(invReg.Blobs), len(p.first.Blobs))
	}

	// Release 2 against the inventory: exactly its new blobs are carried.
	second := filepath.Join(dir, "second.tar")
	summary := mustFerry(t, p.packArgs(second, p.second.PullSpec, "--since", fromRegistry)...)
	if !strings.Contains(summary, "prerequisites of this bundle") {
		t.Errorf("pack summary does not mention the prerequisites:\n%s", summary)
	}
	idx := readIndex(t, second)
	carried, prereqs := bundleBlobs(idx), map[digest.Digest]bool{}
	for _, pr := range idx.Prerequisites {
		prereqs[pr.Digest] = true
		if pr.Size != p.second.Blobs[pr.Digest] || pr.MediaType == "" {
			t.Errorf("prerequisite %+v: size or media type wrong", pr)
		}
	}
	payloads := cosignPayloads(t, p.first, p.second)
	for d := range p.second.Blobs {
		_, shared := p.first.Blobs[d]
		if payloads[d] {
			// Apply proves signatures from the bundle alone: their
			// payloads always travel.
			shared = false
		}
		if shared != prereqs[d] || shared == carried[d] {
			t.Errorf("blob %s (shared with release 1: %t): carried %t, prerequisite %t", d, shared, carried[d], prereqs[d])
		}
	}
	if len(prereqs) == 0 || !carried[p.second.TopLayer] {
		t.Fatalf("%d prerequisites; release files layer carried: %t", len(prereqs), carried[p.second.TopLayer])
	}
	mustFerry(t, "verify", second, "--keyring", p.keyFile, "--quiet")

	// An empty registry lacks them: refused before any push.
	empty := testbed.NewMemoryRegistry(t)
	code, stdout, errOut := ferry(t, p.applyArgs(second, empty)...)
	if code != exitVerification || !strings.Contains(errOut, "prerequisites") || !strings.Contains(errOut, idx.Prerequisites[0].Digest.String()) {
		t.Errorf("apply to an empty registry: exit %d (want %d), stderr should name %s:\n%s\n%s", code, exitVerification, idx.Prerequisites[0].Digest, stdout, errOut)
	}
	assertCatalogEmpty(t, empty)

	// The mirror holds them: release 2 lands whole.
	sum := applySummaryOf(t, mustFerry(t, p.applyArgs(second, mirrorReg)...))
	// Carried payloads of unchanged signatures are in the mirror already:
	// skipped, not pushed.
	if sum.Prerequisites != len(prereqs) || sum.BlobsPushed+sum.BlobsSkipped != len(carried) || sum.BlobsSkipped > len(payloads) {
		t.Errorf("apply: %d prerequisites, %d blobs pushed, %d skipped; want %d and %d in all", sum.Prerequisites, sum.BlobsPushed, sum.BlobsSkipped, len(prereqs), len(carried))
	}
	data, _, err := mirrorReg.Client().GetManifest(context.Background(), targetRepo, p.second.Tag)
	if err != nil || !bytes.Equal(data, p.second.Manifest) {
		t.Errorf("release 2's tag in the mirror: %v", err)
	}
	// Release 1 again, against a mirror holding all of it: only the layer
	// its release files are read from, its config (its architecture) and
	// the cosign payloads are carried, so that apply can still check the
	// chain of trust and the signatures offline.
	again := filepath.Join(dir, "again.tar")
	mustFerry(t, p.packArgs(again, p.first.PullSpec, "--since", fromRegistry)...)
	var releaseManifest struct {
		Config struct{ Digest digest.Digest }
	}
	if err := json.Unmarshal(p.first.Manifest, &releaseManifest); err != nil {
		t.Fatal(err)
	}
	firstPayloads := cosignPayloads(t, p.first)
	if got := bundleBlobs(readIndex(t, again)); len(got) != 2+len(firstPayloads) || !got[p.first.TopLayer] || !got[releaseManifest.Config.Digest] {
		t.Errorf("repacked release 1 carries %v, want only its release files layer %s and its config %s", got, p.first.TopLayer, releaseManifest.Config.Digest)
	}
	mustFerry(t, p.applyArgs(again, mirrorReg)...)

	after := filepath.Join(dir, "after.json")
	mustFerry(t, "inventory", "--to", mirrorReg.Host+"/"+targetRepo, "--dest-tls-verify=false", "-o", after, "--json")
	if got := readInventoryFile(t, after); len(got.Releases) != 2 {
		t.Errorf("after both bundles the mirror holds releases %+v", got.Releases)
	}
}

// bundleBlobs is the set of configs and layers a bundle carries.
func bundleBlobs(idx *bundle.Index) map[digest.Digest]bool {
	manifests := map[digest.Digest]bool{}
	for _, img := range idx.Images {
		manifests[img.Digest] = true
	}
	out := map[digest.Digest]bool{}
	for _, f := range idx.Files {
		hex, ok := strings.CutPrefix(f.Name, bundle.LayoutDir+"/blobs/sha256/")
		if d := digest.NewDigestFromEncoded(digest.SHA256, hex); ok && !manifests[d] {
			out[d] = true
		}
	}
	return out
}

// TestPackSinceDryRun: the dry run says what the inventory leaves out.
func TestPackSinceDryRun(t *testing.T) {
	p := newReleasePair(t, testbed.ReleaseOptions{Components: 2})
	first := filepath.Join(t.TempDir(), "first.tar")
	mustFerry(t, p.packArgs(first, p.first.PullSpec)...)
	inv := filepath.Join(t.TempDir(), "inv.json")
	mustFerry(t, "inventory", "--from-bundle", first, "-o", inv)
	out := mustFerry(t, p.packArgs(filepath.Join(t.TempDir(), "b.tar"), p.second.PullSpec, "--since", inv, "--dry-run", "--json")...)
	var plan struct {
		Blobs, Prerequisites []struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(plan.Prerequisites) == 0 || len(plan.Blobs)+len(plan.Prerequisites) != len(p.second.Blobs) {
		t.Errorf("dry run: %d blobs, %d prerequisites; release 2 has %d blobs", len(plan.Blobs), len(plan.Prerequisites), len(p.second.Blobs))
	}
}

func TestInventoryToStdout(t *testing.T) {
	p := newReleasePair(t, testbed.ReleaseOptions{Components: 2})
	b := filepath.Join(t.TempDir(), "b.tar")
	mustFerry(t, p.packArgs(b, p.first.PullSpec)...)
	out := mustFerry(t, "inventory", "--from-bundle", b, "-o", "-")
	inv, err := inventory.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(inv.Releases) != 1 || inv.Releases[0].Digest != p.first.Digest || !strings.HasPrefix(inv.Source, "bundle ") {
		t.Errorf("inventory %+v", inv)
	}
}

func TestInventoryUsageErrors(t *testing.T) {
	bad := writeTemp(t, "bad.json", []byte(`{"formatVersion":1,"kind":"FerryInventory","token":"x"}`))
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"inventory"}, "either --to"},
		{[]string{"inventory", "--to", "r.example/a", "--from-bundle", "b.tar"}, "either --to"},
		{[]string{"inventory", "--to", "r.example/a:tag"}, "no tag or digest"},
		{[]string{"inventory", "--to", "r.example/a", "vol.001.tar"}, "VOLUME arguments"},
		{[]string{"inventory", "--to", "r.example/a", "--parallel", "0"}, "--parallel"},
		{[]string{"pack", "4.15.0", "--since", bad}, "unknown field"},
	}
	for _, tc := range cases {
		code, _, errOut := ferry(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d (want %d), stderr should mention %q:\n%s", tc.args, code, exitUsage, tc.want, errOut)
		}
	}
	// A --since file that is not there is a failed read (exit 1), not a
	// usage error: the same command works once the file is copied in.
	none := filepath.Join(t.TempDir(), "none.json")
	if code, _, errOut := ferry(t, "pack", "4.15.0", "--since", none); code != exitFailure || !strings.Contains(errOut, "--since") || !strings.Contains(errOut, none) {
		t.Errorf("pack --since %s: exit %d (want %d), stderr should name the flag and the file:\n%s", none, code, exitFailure, errOut)
	}
	// A bundle that is not one: exit 3, and no inventory written.
	out := filepath.Join(t.TempDir(), "inv.json")
	code, _, _ := ferry(t, "inventory", "--from-bundle", writeTemp(t, "x.tar", []byte("not a tar")), "-o", out)
	if _, err := os.Stat(out); code != exitVerification || !os.IsNotExist(err) {
		t.Errorf("inventory of a broken bundle: exit %d, output %v", code, err)
	}
}

// cosignPayloads are the payload layers of the releases' cosign signature
// images.
func cosignPayloads(t *testing.T, releases ...*testbed.Release) map[digest.Digest]bool {
	t.Helper()
	out := map[digest.Digest]bool{}
	for _, rel := range releases {
		for _, img := range rel.Images {
			if img.Role != testbed.RoleSigstore {
				continue
			}
			for _, d := range img.Blobs[1:] {
				out[d] = true
			}
		}
	}
	return out
}
