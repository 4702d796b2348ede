package trust

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/trust/trusttest"
)

const (
	toolRepo   = "registry.example/extras/tool"
	toolTarget = "extras/tool"
)

// toolImages stores an additional image from toolRepo, tagged with the
// release's own tag (which means another thing in its own repository),
// and its cosign signature image, both listed under toolTarget.
func toolImages(t *testing.T, fx *trusttest.Fixture) (tool, sig bundle.Image) {
	t.Helper()
	tool = fx.Image(t, toolRepo, bundle.RoleAdditional, trusttest.Version+"-"+trusttest.Arch, []byte("tool layer"))
	sig = fx.Image(t, toolRepo, bundle.RoleSigstore, "sha256-"+tool.Digest.Encoded()+".sig", []byte("tool signature"))
	tool.Target, sig.Target = toolTarget, toolTarget
	return tool, sig
}

// proofAt finds the proven image source@d going to target.
func proofAt(rep *Report, target, source string, d digest.Digest) *Image {
	for i, img := range rep.Images {
		if img.Target == target && img.Source == source && img.Digest == d {
			return &rep.Images[i]
		}
	}
	return nil
}

// TestCheckTargets: images listed under a target path are proven by the
// bundle signature and keep their target; a tag the release uses in the
// target repository names another image under the path without a fault;
// the routes say where each source goes.
func TestCheckTargets(t *testing.T) {
	key, kr := packerKey(t)
	fx := trusttest.Write(t, t.TempDir(), []string{"etcd"}, bundle.WriteOptions{})
	tool, sig := toolImages(t, fx)
	signed := rewrite(t, fx, func(idx *bundle.Index) { idx.Images = append(idx.Images, tool, sig) }, signWith(key))

	rep := check(t, signed, Options{Keyring: fx.Keyring, BundleKeyring: kr})
	if !rep.OK() {
		t.Fatalf("faults %q", rep.Faults)
	}
	for _, want := range []bundle.Image{tool, sig} {
		img := proofAt(rep, toolTarget, toolRepo, want.Digest)
		if img == nil || img.Proof != BundleSignature || !slices.Equal(img.Tags, want.Tags) {
			t.Errorf("%s under %s: %+v", want.Digest, toolTarget, img)
		}
		if proofAt(rep, "", toolRepo, want.Digest) != nil {
			t.Errorf("%s is also pushed to the target repository itself", want.Digest)
		}
	}
	if img := proofAt(rep, "", trusttest.ReleaseRepo, fx.Release); img == nil || img.Proof != ReleaseChain {
		t.Errorf("the release: %+v", img)
	}
	wantRoutes := map[string][]string{trusttest.ReleaseRepo: {""}, trusttest.ComponentRepo: {""}, toolRepo: {toolTarget}}
	if !maps.EqualFunc(rep.Routes, wantRoutes, slices.Equal) {
		t.Errorf("routes %v, want %v", rep.Routes, wantRoutes)
	}
	if !slices.Equal(rep.Sources, []string{trusttest.ReleaseRepo, trusttest.ComponentRepo, toolRepo}) {
		t.Errorf("sources %v", rep.Sources)
	}

	// Without the bundle signature nothing puts an image under a path.
	unsigned := rewrite(t, fx, func(idx *bundle.Index) { idx.Images = append(idx.Images, tool, sig) }, bundle.WriteOptions{})
	rep = check(t, unsigned, Options{Keyring: fx.Keyring})
	if rep.OK() || !strings.Contains(strings.Join(rep.Faults, "\n"), "(target "+toolTarget+")") {
		t.Errorf("unsigned: faults %q", rep.Faults)
	}
}

// TestCheckTargetOfAProvenImage: a component the release chain proves for
// the target repository, listed again under a path, goes there only when
// the bundle signature covers it; then the source routes to both.
func TestCheckTargetOfAProvenImage(t *testing.T) {
	key, kr := packerKey(t)
	fx := trusttest.Write(t, t.TempDir(), []string{"etcd"}, bundle.WriteOptions{})
	etcd := fx.Components["etcd"]
	again := func(idx *bundle.Index) {
		img := idx.Images[1]
		img.Target, img.Role = "art/etcd", bundle.RoleAdditional
		idx.Images = append(idx.Images, img)
	}
	rep := check(t, rewrite(t, fx, again, bundle.WriteOptions{}), Options{Keyring: fx.Keyring})
	if rep.OK() || !strings.Contains(strings.Join(rep.Faults, "\n"), "which the release chain proves for the target repository itself") {
		t.Fatalf("unsigned: faults %q", rep.Faults)
	}
	rep = check(t, rewrite(t, fx, again, signWith(key)), Options{Keyring: fx.Keyring, BundleKeyring: kr})
	if !rep.OK() {
		t.Fatalf("signed: faults %q", rep.Faults)
	}
	if img := proofAt(rep, "art/etcd", trusttest.ComponentRepo, etcd); img == nil || img.Proof != BundleSignature {
		t.Errorf("under art/etcd: %+v", img)
	}
	if img := proofAt(rep, "", trusttest.ComponentRepo, etcd); img == nil || img.Proof != ReleaseChain {
		t.Errorf("in the target repository: %+v", img)
	}
	if got := rep.Routes[trusttest.ComponentRepo]; !slices.Equal(got, []string{"", "art/etcd"}) {
		t.Errorf("routes of %s: %v", trusttest.ComponentRepo, got)
	}
}

// TestCheckTargetsRefuse: a signed index that scatters an image's parts
// over several repositories, or tags one manifest twice in one place.
func TestCheckTargetsRefuse(t *testing.T) {
	key, kr := packerKey(t)
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, fx *trusttest.Fixture, idx *bundle.Index)
		want string
	}{
		{"a signature beside the target repository's copy", func(t *testing.T, fx *trusttest.Fixture, idx *bundle.Index) {
			tool, sig := toolImages(t, fx)
			sig.Target = ""
			idx.Images = append(idx.Images, tool, sig)
		}, `is listed with target "", but the image it signs goes to ["extras/tool"]`},
		{"a signature under a path its image does not go to", func(t *testing.T, fx *trusttest.Fixture, idx *bundle.Index) {
			tool, sig := toolImages(t, fx)
			tool.Target = ""
			idx.Images = append(idx.Images, tool, sig)
		}, `is listed with target "extras/tool", but the image it signs goes to [""]`},
		{"a signature of nothing carried, under a path", func(t *testing.T, fx *trusttest.Fixture, idx *bundle.Index) {
			_, sig := toolImages(t, fx)
			idx.Images = append(idx.Images, sig)
		}, `where the image it signs (sha256:`},
		{"a child listed elsewhere than its list", func(t *testing.T, fx *trusttest.Fixture, idx *bundle.Index) {
			tool, _ := toolImages(t, fx)
			list := fx.List(t, toolRepo, bundle.RoleAdditional, "v1", tool)
			list.Target = toolTarget
			tool.Target, tool.Role, tool.Tags = "", bundle.RoleChild, nil
			idx.Images = append(idx.Images, list, tool)
		}, `but it is the child of a list going to ["extras/tool"]`},
		{"one tag on two manifests under one path", func(t *testing.T, fx *trusttest.Fixture, idx *bundle.Index) {
			tool, _ := toolImages(t, fx)
			other := fx.Image(t, toolRepo, bundle.RoleAdditional, tool.Tags[0], []byte("another tool"))
			other.Target = toolTarget
			idx.Images = append(idx.Images, tool, other)
		}, "in target extras/tool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := trusttest.Write(t, t.TempDir(), []string{"etcd"}, bundle.WriteOptions{})
			forged := rewrite(t, fx, func(idx *bundle.Index) { tc.edit(t, fx, idx) }, signWith(key))
			rep := check(t, forged, Options{Keyring: fx.Keyring, BundleKeyring: kr})
			if rep.OK() || !strings.Contains(strings.Join(rep.Faults, "\n"), tc.want) {
				t.Fatalf("faults %q, want one containing %q", rep.Faults, tc.want)
			}
		})
	}
}

// TestCheckTargetCarriesItsBlobs: a blob left out as a prerequisite is
// looked for in the repository of its prerequisite alone, so an image under
// a path may leave out only what that path holds: a prerequisite of the
// target repository does not do for it.
func TestCheckTargetCarriesItsBlobs(t *testing.T) {
	key, kr := packerKey(t)
	for _, tc := range []struct{ image, prereq string }{{"", ""}, {toolTarget, toolTarget}, {toolTarget, ""}, {"", toolTarget}} {
		fx := trusttest.Write(t, t.TempDir(), []string{"etcd"}, bundle.WriteOptions{})
		tool, _ := toolImages(t, fx)
		tool.Target, tool.Tags = tc.image, []string{"v1"}
		layer := tool.Blobs[1]
		size := int64(len(fx.Files[bundle.BlobName(layer)]))
		delete(fx.Files, bundle.BlobName(layer))
		forged := rewrite(t, fx, func(idx *bundle.Index) {
			idx.Images = append(idx.Images, tool)
			idx.Prerequisites = []bundle.Prerequisite{{Digest: layer, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Size: size, Target: tc.prereq}}
		}, signWith(key))
		rep := check(t, forged, Options{Keyring: fx.Keyring, BundleKeyring: kr})
		faults := strings.Join(rep.Faults, "\n")
		if tc.image == tc.prereq && !rep.OK() {
			t.Errorf("image under %q, prerequisite of %q: faults %q", tc.image, tc.prereq, rep.Faults)
		}
		if tc.image != tc.prereq && !strings.Contains(faults, "is a prerequisite of another repository than") {
			t.Errorf("image under %q, prerequisite of %q: faults %q", tc.image, tc.prereq, rep.Faults)
		}
	}
}
