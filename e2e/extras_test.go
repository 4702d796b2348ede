package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/inventory"
)

// graphDataFixture is the slice of Red Hat's graph data in ../shared.
func graphDataFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot(), "..", "shared", "fixtures", "graph", "graph-data")
	if _, err := os.Stat(filepath.Join(dir, "channels")); err != nil {
		t.Fatalf("the graph-data fixture: %v", err)
	}
	return "file://" + dir
}

// TestExtrasCarried packs a release with its RHCOS KubeVirt container,
// additional images (by tag and by digest, multi-arch and single, one
// already carried, one blocked) and the graph-data image built on a base
// from the registry; apply pushes each where the cluster will look for it:
// additional images under their own repository paths with their tags, the
// graph-data image under graph-image, the KubeVirt container beside the
// release; and renders the UpdateService.
func TestExtrasCarried(t *testing.T) {
	opts := smallRelease
	opts.KubeVirtContainer = true
	b := newFaultBed(t, opts)
	cat := testbed.BuildCatalog(t, b.reg.Host, testbed.CatalogOptions{Multi: true})
	var tagged, byDigest testbed.RelatedImage
	for _, ri := range cat.RelatedImages {
		switch {
		case ri.Tag != "" && tagged.Image == "":
			tagged = ri
		case ri.Tag == "" && byDigest.Image == "" && strings.Contains(ri.Repository, "aurora"):
			byDigest = ri
		}
	}
	single := cat.Bundles[cat.HeadOf(testbed.CatalogPackageDorado, "stable")]
	blocked := cat.Bundles[cat.HeadOf(testbed.CatalogPackageCygnus, "stable")]
	component := b.rel.Components[0]
	packerKey, packerPub := packerKeys(t, b.dir)

	bundlePath := b.pack(t, "--no-self", "--sign-key", packerKey, "--kubevirt-container",
		"--image", tagged.Image, "--image", byDigest.Image, "--image", single.Image, "--image", blocked.Image,
		"--image", b.rel.Host+"/"+component.Repository+"@"+component.Digest.String(),
		"--block", "cygnus-operator-bundle", "--graph-image", "--graph-data-url", graphDataFixture(t), "--graph-base-image", b.rel.DigestSpec())

	idx := readIndexFile(t, bundlePath)
	if len(idx.Additional) != 4 || len(idx.Blocked) != 1 || idx.Blocked[0].Ref != blocked.Image {
		t.Fatalf("index: %d additional images, blocked %+v; want 4 and %s", len(idx.Additional), idx.Blocked, blocked.Image)
	}
	if len(idx.KubeVirt) != 1 || idx.KubeVirt[0].Digest != b.rel.KubeVirt[0].Digest {
		t.Fatalf("index records KubeVirt %+v, want %s", idx.KubeVirt, b.rel.KubeVirt[0].Digest)
	}
	if idx.GraphData == nil || len(idx.GraphData.Releases) == 0 {
		t.Fatalf("index records graph data %+v", idx.GraphData)
	}
	inspect := mustFerry(t, "inspect", bundlePath)
	for _, want := range []string{"additional image " + tagged.Image, "blocked image " + blocked.Image, "RHCOS KubeVirt container", "graph-data image"} {
		if !strings.Contains(inspect, want) {
			t.Errorf("inspect does not say %q\n%s", want, inspect)
		}
	}

	mirror := testbed.NewMemoryRegistry(t)
	rendered := filepath.Join(t.TempDir(), "manifests")
	out := mustFerry(t, "apply", bundlePath, "--to", mirror.Host+"/"+targetRepo, "--dest-tls-verify=false", "--keyring", b.keyFile,
		"--bundle-keyring", packerPub, "--no-cluster", "--output-dir", rendered)
	if !strings.Contains(out, "oc patch clusterversion version") {
		t.Errorf("apply does not print the update service's steps\n%s", out)
	}
	target := testbed.NewClient(mirror.Host)
	ctx := context.Background()
	head := func(repo, ref string) {
		t.Helper()
		if _, err := target.HeadManifest(ctx, repo, ref); err != nil {
			t.Errorf("%s:%s is not in the mirror: %v", repo, ref, err)
		}
	}
	for _, a := range idx.Additional {
		if a.AlreadyCarried != "" {
			head(targetRepo, a.Digest.String())
			continue
		}
		head(targetRepo+"/"+a.Target, a.Digest.String())
		if a.TargetTag != "" {
			head(targetRepo+"/"+a.Target, a.TargetTag)
		}
	}
	head(targetRepo+"/"+tagged.Repository, tagged.Tag)
	head(targetRepo, idx.KubeVirt[0].Tag)
	head(targetRepo+"/"+idx.GraphData.Target, idx.GraphData.Tag)
	if _, err := target.HeadManifest(ctx, targetRepo+"/"+blocked.Repository, blocked.Digest.String()); err == nil {
		t.Errorf("the blocked image %s reached the mirror", blocked.Image)
	}
	us, err := os.ReadFile(filepath.Join(rendered, "updateservice-ferry.yaml"))
	if err != nil || !strings.Contains(string(us), mirror.Host+"/"+targetRepo+"/graph-image@"+idx.GraphData.Digest.String()) {
		t.Errorf("the rendered UpdateService (%v) does not name the pushed graph-data image:\n%s", err, us)
	}
	idms, err := filepath.Glob(filepath.Join(rendered, "idms-*.yaml"))
	if err != nil || len(idms) != 1 {
		t.Fatalf("rendered IDMS: %v %v", idms, err)
	}
	data, err := os.ReadFile(idms[0])
	if err != nil || !strings.Contains(string(data), mirror.Host+"/"+targetRepo+"/"+tagged.Repository) {
		t.Errorf("the ImageDigestMirrorSet does not route %s to its own path:\n%s", tagged.Repository, data)
	}
	checkTagMirrorSet(t, rendered, idx, mirror.Host+"/"+targetRepo, tagged.Image, byDigest.Image)
	checkAdditionalInLayout(t, bundlePath, idx)
}

// checkAdditionalInLayout: every additional image is in the unpacked
// bundle's OCI layout byte for byte: read by skopeo under its target tag
// (containers/image's oci transport for Docker media types, which Debian's
// skopeo 1.9 does not look up in an OCI index), and, named by digest only
// (no tag to look it up by), as the blob its digest names.
func checkAdditionalInLayout(t *testing.T, bundlePath string, idx *bundle.Index) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", bundlePath, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf %s: %v\n%s", bundlePath, err, out)
	}
	layout := filepath.Join(dir, "mirror", "oci")
	mediaTypes := map[digest.Digest]string{}
	for _, img := range idx.Images {
		mediaTypes[img.Digest] = img.MediaType
	}
	read := 0
	for _, a := range idx.Additional {
		var raw []byte
		if a.TargetTag != "" {
			raw = testbed.ReadLayoutManifest(t, layout, a.TargetTag, mediaTypes[a.Digest])
			read++
		} else {
			var err error
			if raw, err = os.ReadFile(filepath.Join(layout, "blobs", a.Digest.Algorithm().String(), a.Digest.Encoded())); err != nil {
				t.Errorf("additional image %s: its manifest is not in the layout: %v", a.Ref, err)
				continue
			}
		}
		if got := digest.FromBytes(raw); got != a.Digest {
			t.Errorf("additional image %s: the layout holds %s, want %s", a.Ref, got, a.Digest)
		}
	}
	if read == 0 {
		t.Errorf("no additional image with a tag to read from the layout: %+v", idx.Additional)
	}
}

// checkTagMirrorSet: the ImageTagMirrorSet apply rendered routes the
// source of the image named by tag to its path, and not the source of the
// image named by digest nor the release's, which the ImageDigestMirrorSet
// routes.
func checkTagMirrorSet(t *testing.T, rendered string, idx *bundle.Index, to, byTag, byDigest string) {
	t.Helper()
	read := func(glob string) string {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(rendered, glob))
		if err != nil || len(files) != 1 {
			t.Fatalf("rendered %s: %v %v", glob, files, err)
		}
		data, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	itms, idms := read("itms-*.yaml"), read("idms-*.yaml")
	route := func(a bundle.AdditionalImage) string {
		return "- source: " + a.Source + "\n      mirrors:\n        - " + to + "/" + a.Target + "\n"
	}
	for _, a := range idx.Additional {
		switch a.Ref {
		case byTag:
			if !strings.Contains(itms, route(a)) || !strings.Contains(idms, route(a)) {
				t.Errorf("%s (by tag) is not routed by tag and digest to its path:\n%s\n%s", a.Ref, itms, idms)
			}
		case byDigest:
			if strings.Contains(itms, "source: "+a.Source+"\n") || !strings.Contains(idms, route(a)) {
				t.Errorf("%s (by digest) is routed by tag, or not by digest:\n%s\n%s", a.Ref, itms, idms)
			}
		}
	}
	if rel := idx.Releases[0].Source; strings.Contains(itms, "source: "+rel+"\n") {
		t.Errorf("the release %s, pulled by digest, is routed by tag:\n%s", rel, itms)
	}
}

// packerKeys writes a packer's signing key and its public key into dir.
func packerKeys(t *testing.T, dir string) (private, public string) {
	t.Helper()
	packer := testbed.NewKey(t, "packer")
	private, public = filepath.Join(dir, "packer.key"), filepath.Join(dir, "packer.pub")
	if err := os.WriteFile(private, packer.PrivateArmored(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(public, packer.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return private, public
}

// TestExtrasNarrowedToPlatforms: a multi-arch image named by tag in
// ferry.yaml with platforms: [linux/arm64] travels as a rewritten index
// holding the arm64 image alone, recorded with both digests; apply pushes
// it under its tag (the ImageTagMirrorSet routes its source there) and the
// amd64 image never reaches the mirror.
func TestExtrasNarrowedToPlatforms(t *testing.T) {
	b := newFaultBed(t, smallRelease)
	cat := testbed.BuildCatalog(t, b.reg.Host, testbed.CatalogOptions{Multi: true})
	var tagged testbed.RelatedImage
	for _, ri := range cat.RelatedImages {
		if ri.Tag != "" {
			tagged = ri
			break
		}
	}
	children := listChildren(t, testbed.NewClient(b.reg.Host), tagged.Repository, tagged.Digest)
	packerKey, packerPub := packerKeys(t, b.dir)
	cfg := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(cfg, []byte("apiVersion: ferry/v1alpha1\nkind: Bundle\nadditionalImages:\n  - name: "+tagged.Image+
		"\n    platforms: [linux/arm64]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bundlePath := b.pack(t, "-f", cfg, "--no-self", "--sign-key", packerKey)

	idx := readIndexFile(t, bundlePath)
	if len(idx.Additional) != 1 {
		t.Fatalf("index records %d additional images, want 1", len(idx.Additional))
	}
	a := idx.Additional[0]
	if a.SourceDigest != tagged.Digest || a.Digest == tagged.Digest || !slices.Equal(a.Platforms, []string{"linux/arm64"}) {
		t.Fatalf("index records %+v; want source digest %s, a new digest, platforms [linux/arm64]", a, tagged.Digest)
	}
	narrowed := imageByDigest(t, idx, a.Digest)
	if !slices.Equal(narrowed.Children, []digest.Digest{children["arm64"]}) {
		t.Errorf("the narrowed index names %v, want the arm64 image %s alone", narrowed.Children, children["arm64"])
	}
	if inspect := mustFerry(t, "inspect", bundlePath); !strings.Contains(inspect, "narrowed to linux/arm64 from "+tagged.Digest.String()) {
		t.Errorf("inspect does not say the image was narrowed\n%s", inspect)
	}

	mirror := testbed.NewMemoryRegistry(t)
	rendered := filepath.Join(t.TempDir(), "manifests")
	mustFerry(t, "apply", bundlePath, "--to", mirror.Host+"/"+targetRepo, "--dest-tls-verify=false", "--keyring", b.keyFile,
		"--bundle-keyring", packerPub, "--no-cluster", "--output-dir", rendered, "--quiet")
	target := testbed.NewClient(mirror.Host)
	repo := targetRepo + "/" + a.Target
	if d, err := target.HeadManifest(context.Background(), repo, tagged.Tag); err != nil || d.Digest != a.Digest {
		t.Errorf("the mirror's %s:%s is %v (%v), want the narrowed %s", repo, tagged.Tag, d.Digest, err, a.Digest)
	}
	if _, err := target.HeadManifest(context.Background(), repo, children["arm64"].String()); err != nil {
		t.Errorf("the arm64 image is not in the mirror: %v", err)
	}
	if _, err := target.HeadManifest(context.Background(), repo, children["amd64"].String()); err == nil {
		t.Errorf("the amd64 image %s reached the mirror", children["amd64"])
	}
	checkTagMirrorSet(t, rendered, idx, mirror.Host+"/"+targetRepo, tagged.Image, "")
}

// listChildren reads the index repo@d from the registry and maps each
// entry's architecture to its digest.
func listChildren(t *testing.T, c *testbed.Client, repo string, d digest.Digest) map[string]digest.Digest {
	t.Helper()
	data, _, err := c.GetManifest(context.Background(), repo, d.String())
	if err != nil {
		t.Fatal(err)
	}
	var list ocispec.Index
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]digest.Digest{}
	for _, m := range list.Manifests {
		if m.Platform != nil {
			out[m.Platform.Architecture] = m.Digest
		}
	}
	if out["amd64"] == "" || out["arm64"] == "" {
		t.Fatalf("%s@%s is not an amd64 and arm64 index: %s", repo, d, data)
	}
	return out
}

// imageByDigest is the index's image with digest d.
func imageByDigest(t *testing.T, idx *bundle.Index, d digest.Digest) bundle.Image {
	t.Helper()
	for _, im := range idx.Images {
		if im.Digest == d {
			return im
		}
	}
	t.Fatalf("the index lists no image %s", d)
	return bundle.Image{}
}

// TestBlockedComponentRefused: a blocked pattern that matches a release
// component is a usage error naming the component; nothing is written.
func TestBlockedComponentRefused(t *testing.T) {
	b := newFaultBed(t, smallRelease)
	out := filepath.Join(t.TempDir(), "bundle.tar")
	wantExit(t, "pack --block component", ferryRun(t, b.packArgs(out, "--block", strings.ReplaceAll(b.rel.Components[0].Repository, "/", "\\/"))...),
		codeUsage, "blocked image pattern", "component "+b.rel.Components[0].Name)
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused pack left %s (%v)", out, err)
	}
}

// TestExtrasUnsignedRefused: additional images and the graph-data image
// travel under the bundle signature only; an unsigned bundle holding them
// is refused before anything is pushed.
func TestExtrasUnsignedRefused(t *testing.T) {
	b := newFaultBed(t, smallRelease)
	bundlePath := b.pack(t, "--no-self", "--graph-image", "--graph-data-url", graphDataFixture(t), "--graph-base-image", b.rel.DigestSpec())
	if idx := readIndexFile(t, bundlePath); idx.GraphData == nil || imageOfRole(t, idx, bundle.RoleGraphData).Target != "graph-image" {
		t.Fatalf("the bundle carries no graph-data image under graph-image")
	}
	mirror := testbed.NewMemoryRegistry(t)
	wantExit(t, "apply unsigned", ferryRun(t, applyArgs(t, bundlePath, b.keyFile, mirror.Host)...), codeVerification,
		"graph-data image", "no verified bundle signature covers it")
	assertCatalogEmpty(t, mirror)
}

// TestKubeVirtProvenByReleaseChain: the payload's coreos-bootimages
// manifest pins the KubeVirt container by digest, so an unsigned bundle
// carrying it applies on the release chain alone, the container tagged
// beside the release; a forger who lists another digest for it is refused.
func TestKubeVirtProvenByReleaseChain(t *testing.T) {
	opts := smallRelease
	opts.KubeVirtContainer = true
	b := newFaultBed(t, opts)
	bundlePath := b.pack(t, "--no-self", "--kubevirt-container")
	kv := b.rel.KubeVirt[0]
	mirror := testbed.NewMemoryRegistry(t)
	mustFerry(t, applyArgs(t, bundlePath, b.keyFile, mirror.Host)...)
	tag := b.rel.Version + "-" + kv.Arch + "-rhcos-kubevirt"
	d, err := testbed.NewClient(mirror.Host).HeadManifest(context.Background(), targetRepo, tag)
	if err != nil || d.Digest != kv.Digest {
		t.Fatalf("the mirror's %s is %v (%v), want %s", tag, d.Digest, err, kv.Digest)
	}

	forged := copyBundle(t, bundlePath)
	forge(t, forged, forgery{edit: func(idx *bundle.Index) {
		for i := range idx.Images {
			if slices.Contains(idx.Images[i].Tags, tag) {
				idx.Images[i].Tags = []string{tag, "latest"}
			}
		}
	}})
	wantExit(t, "apply with a forged tag", ferryRun(t, applyArgs(t, forged, b.keyFile, testbed.NewMemoryRegistry(t).Host)...), codeVerification,
		"tag latest on image")
}

// pushSingleImage pushes a linux/amd64 OCI image of the given
// (uncompressed) layers into repo under tag, and returns its digest.
func pushSingleImage(t *testing.T, c *testbed.Client, repo, tag string, layers ...string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	var m ocispec.Manifest
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers"}}
	for _, l := range layers {
		d, err := c.PushBlob(ctx, repo, []byte(l))
		if err != nil {
			t.Fatal(err)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(l))})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d)
	}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgDigest, err := c.PushBlob(ctx, repo, cfgData)
	if err != nil {
		t.Fatal(err)
	}
	m.SchemaVersion, m.MediaType = 2, ocispec.MediaTypeImageManifest
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfgData))}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.PushManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestExtrasIncremental: an inventory of the mirror reads graph-image and
// the additional image's path (--repo) with their tags; the next pack
// --since it leaves out what each of those repositories holds (one
// prerequisite per repository) and reports the additional image's tag,
// which moved at the source in between. Apply checks each repository's
// prerequisites before pushing anything: a mirror holding the release
// alone is refused, untouched; the mirror the inventory came from takes
// the bundle and its tag moves.
func TestExtrasIncremental(t *testing.T) {
	b := newFaultBed(t, smallRelease)
	src := testbed.NewClient(b.reg.Host)
	shared := strings.Repeat("shared base layer ", 64)
	v1 := pushSingleImage(t, src, "extras/tool", "v1", shared, "tool one")
	pushSingleImage(t, src, "base/ubi", "latest", "ubi layer")
	packerKey, packerPub := packerKeys(t, b.dir)
	extras := []string{"--no-self", "--sign-key", packerKey, "--image", b.rel.Host + "/extras/tool:v1",
		"--graph-image", "--graph-data-url", graphDataFixture(t), "--graph-base-image", b.rel.Host + "/base/ubi:latest"}
	first := b.pack(t, extras...)
	mirror := testbed.NewMemoryRegistry(t)
	applyTo := func(bundlePath, host string) result {
		t.Helper()
		return ferryRun(t, "apply", bundlePath, "--to", host+"/"+targetRepo, "--dest-tls-verify=false", "--keyring", b.keyFile,
			"--bundle-keyring", packerPub, "--no-cluster", "--output-dir", filepath.Join(t.TempDir(), "manifests"), "--quiet")
	}
	wantExit(t, "apply the first bundle", applyTo(first, mirror.Host), codeOK)
	inv := filepath.Join(t.TempDir(), "inventory.json")
	out := mustFerry(t, "inventory", "--to", mirror.Host+"/"+targetRepo, "--repo", "extras/tool", "--dest-tls-verify=false", "-o", inv)
	for _, want := range []string{"under it, extras/tool: 1 tags", "under it, graph-image: 1 tags"} {
		if !strings.Contains(out, want) {
			t.Errorf("inventory does not say %q\n%s", want, out)
		}
	}

	checkInventoryOfPaths(t, inv, v1)
	fromBundle := filepath.Join(t.TempDir(), "from-bundle.json")
	mustFerry(t, "inventory", "--from-bundle", first, "-o", fromBundle)
	checkInventoryOfPaths(t, fromBundle, v1)

	v2 := pushSingleImage(t, src, "extras/tool", "v1", shared, "tool two")
	second := filepath.Join(t.TempDir(), "incremental.tar")
	wantExit(t, "pack --since", ferryRun(t, b.packArgs(second, append(extras, "--since", inv)...)...), codeOK,
		"tag moved since the inventory", v1.String())
	idx := readIndexFile(t, second)
	if len(idx.Additional) != 1 || idx.Additional[0].Digest != v2 || idx.Additional[0].MovedFrom != v1 {
		t.Fatalf("index records %+v; want extras/tool:v1 at %s, moved from %s", idx.Additional, v2, v1)
	}
	if out := mustFerry(t, "inspect", second); !strings.Contains(out, "tag moved: the mirror's inventory had "+v1.String()) {
		t.Errorf("inspect does not report the moved tag\n%s", out)
	}
	sharedDigest := digest.FromString(shared)
	byTarget := map[string][]digest.Digest{}
	for _, p := range idx.Prerequisites {
		byTarget[p.Target] = append(byTarget[p.Target], p.Digest)
	}
	if !slices.Contains(byTarget["extras/tool"], sharedDigest) || slices.Contains(byTarget["extras/tool"], digest.FromString("tool two")) {
		t.Errorf("prerequisites of extras/tool %v: want the shared layer %s, not the new one", byTarget["extras/tool"], sharedDigest)
	}
	if !slices.Contains(byTarget["graph-image"], digest.FromString("ubi layer")) || len(byTarget[""]) == 0 {
		t.Errorf("prerequisites by repository %v: want graph-image's base layer and the release's", byTarget)
	}
	for _, f := range idx.Files {
		if f.Name == bundle.BlobName(sharedDigest) || f.Name == bundle.BlobName(digest.FromString("ubi layer")) {
			t.Errorf("the incremental bundle carries %s, which the mirror holds where it goes", f.Name)
		}
	}

	// A mirror holding the release alone lacks the paths' prerequisites.
	releaseOnly := testbed.NewMemoryRegistry(t)
	wantExit(t, "apply the release", applyTo(b.pack(t, "--no-self", "--sign-key", packerKey), releaseOnly.Host), codeOK)
	wantExit(t, "apply to a mirror without the paths", applyTo(second, releaseOnly.Host), codeVerification, "prerequisites", targetRepo+"/extras/tool")
	if repos, err := releaseOnly.Client().Catalog(context.Background()); err != nil || !slices.Equal(repos, []string{targetRepo}) {
		t.Errorf("the mirror without the paths now holds %v (%v)", repos, err)
	}

	wantExit(t, "apply the incremental bundle", applyTo(second, mirror.Host), codeOK)
	if d, err := testbed.NewClient(mirror.Host).HeadManifest(context.Background(), targetRepo+"/extras/tool", "v1"); err != nil || d.Digest != v2 {
		t.Errorf("the mirror's extras/tool:v1 is %v (%v), want %s", d.Digest, err, v2)
	}
}

// checkInventoryOfPaths: the inventory at path knows extras/tool:v1 as
// tool and the graph-data image's repository, each apart from the target.
func checkInventoryOfPaths(t *testing.T, path string, tool digest.Digest) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inv, err := inventory.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	r, g := inv.Repository("extras/tool"), inv.Repository("graph-image")
	if r == nil || r.TagDigest("v1") != tool || g == nil || len(g.Tags) != 1 || len(g.Blobs) == 0 {
		t.Errorf("%s (%s): extras/tool %+v, graph-image %+v; want v1 -> %s and the graph-data image", path, inv.Source, r, g, tool)
	}
	if _, ok := inv.BlobSet()[digest.FromString("tool one")]; ok {
		t.Errorf("%s claims the tool's layer for the target repository", path)
	}
}
