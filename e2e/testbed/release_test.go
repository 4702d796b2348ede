package testbed

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageStream is the part of image-references the tests check.
type imageStream struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Tags []struct {
			Name        string            `json:"name"`
			Annotations map[string]string `json:"annotations"`
			From        struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"from"`
		} `json:"tags"`
	} `json:"spec"`
}

type releaseMeta struct {
	Kind     string            `json:"kind"`
	Version  string            `json:"version"`
	Previous []string          `json:"previous"`
	Next     []string          `json:"next"`
	Metadata map[string]string `json:"metadata"`
}

func mustManifest(t *testing.T, c *Client, repo, ref string) ([]byte, string) {
	t.Helper()
	data, mt, err := c.GetManifest(t.Context(), repo, ref)
	if err != nil {
		t.Fatal(err)
	}
	return data, mt
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, data)
	}
	return v
}

// releaseFiles reads the release-manifests files out of the top layer of
// the image manifest data, as fetched from the registry.
func releaseFiles(t *testing.T, c *Client, repo string, data []byte) map[string][]byte {
	t.Helper()
	m := decode[ocispec.Manifest](t, data)
	top := m.Layers[len(m.Layers)-1]
	gz, err := c.GetBlob(t.Context(), repo, top.Digest)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		}
	}
	return files
}

// checkImageReferences parses image-references and checks it against rel;
// it returns the parsed stream.
func checkImageReferences(t *testing.T, rel *Release, files map[string][]byte) imageStream {
	t.Helper()
	refs, meta := files["release-manifests/image-references"], files["release-manifests/release-metadata"]
	if !bytes.Equal(refs, rel.ImageReferences) || !bytes.Equal(meta, rel.ReleaseMetadata) {
		t.Fatalf("top layer files differ from Release.ImageReferences/ReleaseMetadata")
	}
	is := decode[imageStream](t, refs)
	if is.APIVersion != "image.openshift.io/v1" || is.Kind != "ImageStream" || is.Metadata.Name != rel.Version {
		t.Errorf("image-references header: %s %s %s", is.APIVersion, is.Kind, is.Metadata.Name)
	}
	if len(is.Spec.Tags) != len(rel.Components) {
		t.Fatalf("image-references has %d tags, release %d components", len(is.Spec.Tags), len(rel.Components))
	}
	for i, tag := range is.Spec.Tags {
		c := rel.Components[i]
		if tag.Name != c.Name || tag.From.Kind != "DockerImage" || tag.From.Name != c.Image {
			t.Errorf("tag %d: %s %s %s, component %+v", i, tag.Name, tag.From.Kind, tag.From.Name, c)
		}
		if tag.Annotations["io.openshift.build.source-location"] == "" {
			t.Errorf("tag %s: no annotations", tag.Name)
		}
	}
	m := decode[releaseMeta](t, meta)
	if m.Kind != "cincinnati-metadata-v0" || m.Version != rel.Version || m.Previous == nil || m.Next == nil || m.Metadata == nil {
		t.Errorf("release-metadata: %s", meta)
	}
	return is
}

func TestBuildRelease(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	c := reg.Client()
	ctx := t.Context()
	rel := BuildRelease(t, reg.Host, ReleaseOptions{Sigstore: true})

	if rel.Tag != "4.15.0-x86_64" || rel.PullSpec != reg.Host+"/"+ReleaseRepository+":4.15.0-x86_64" {
		t.Errorf("tag %s, pull spec %s", rel.Tag, rel.PullSpec)
	}
	// The digest is the sha256 of the bytes as served, by tag and by digest.
	data, mt := mustManifest(t, c, rel.Repository, rel.Tag)
	if !bytes.Equal(data, rel.Manifest) || digest.FromBytes(data) != rel.Digest || mt != MediaTypeDockerManifest || rel.MediaType != mt {
		t.Fatalf("release manifest as served: %s %s, want %s", digest.FromBytes(data), mt, rel.Digest)
	}
	desc, err := c.HeadManifest(ctx, rel.Repository, rel.Tag)
	if err != nil || desc.Digest != rel.Digest || desc.Size != int64(len(data)) || desc.MediaType != mt {
		t.Fatalf("HEAD %s: %+v %v", rel.Tag, desc, err)
	}

	// image-references names every component by digest, and each resolves.
	is := checkImageReferences(t, rel, releaseFiles(t, c, rel.Repository, data))
	if len(is.Spec.Tags) != 20 {
		t.Fatalf("%d components", len(is.Spec.Tags))
	}
	repos := map[string]bool{}
	compTypes := map[string]bool{}
	layerTypes := map[string]bool{}
	layerUse := map[digest.Digest]int{}
	for _, comp := range rel.Components {
		prefix := reg.Host + "/" + comp.Repository + "@"
		if !strings.HasPrefix(comp.Image, prefix) || digest.Digest(strings.TrimPrefix(comp.Image, prefix)) != comp.Digest {
			t.Errorf("component %s: image %s", comp.Name, comp.Image)
		}
		data, mt := mustManifest(t, c, comp.Repository, comp.Digest.String())
		if mt != comp.MediaType {
			t.Errorf("component %s: served as %s, recorded %s", comp.Name, mt, comp.MediaType)
		}
		repos[comp.Repository] = true
		compTypes[mt] = true
		m := decode[ocispec.Manifest](t, data)
		for _, l := range m.Layers {
			layerTypes[l.MediaType] = true
			layerUse[l.Digest]++
			if ok, err := c.BlobExists(ctx, comp.Repository, l.Digest); err != nil || !ok {
				t.Errorf("component %s: layer %s not in %s: %v", comp.Name, l.Digest, comp.Repository, err)
			}
		}
	}
	if len(repos) != 2 {
		t.Errorf("components in %d repositories, want 2", len(repos))
	}
	if !compTypes[MediaTypeDockerManifest] || !compTypes[ocispec.MediaTypeImageManifest] {
		t.Errorf("component manifest types: %v", compTypes)
	}
	if !layerTypes[MediaTypeDockerLayer] || !layerTypes[ocispec.MediaTypeImageLayerGzip] {
		t.Errorf("layer types: %v", layerTypes)
	}
	shared := 0
	for _, n := range layerUse {
		if n == 20 {
			shared++
		}
	}
	if shared != DefaultSharedBaseLayers {
		t.Errorf("%d layers shared by every component, want %d", shared, DefaultSharedBaseLayers)
	}

	// Blobs and Images account for everything, and are all there.
	var sum int64
	for d, n := range rel.Blobs {
		sum += n
		if n <= 0 || d.Validate() != nil {
			t.Errorf("blob %s size %d", d, n)
		}
	}
	if sum != rel.Bytes || rel.Bytes < 20*2*DefaultLayerSize {
		t.Errorf("Bytes %d, sum %d", rel.Bytes, sum)
	}
	roles := map[string]int{}
	for _, im := range rel.Images {
		roles[im.Role]++
		if digest.FromBytes(im.Manifest) != im.Digest || int64(len(im.Manifest)) != im.Size {
			t.Errorf("image %s: manifest does not match digest or size", im.Digest)
		}
		for _, b := range im.Blobs {
			if _, ok := rel.Blobs[b]; !ok {
				t.Errorf("image %s: blob %s not in Blobs", im.Digest, b)
			}
			if ok, err := c.BlobExists(ctx, im.Repository, b); err != nil || !ok {
				t.Errorf("image %s: blob %s not in %s", im.Digest, b, im.Repository)
			}
		}
	}
	if roles[RoleRelease] != 1 || roles[RoleComponent] != 20 || roles[RoleChild] != 0 || roles[RoleSigstore] != 11 {
		t.Errorf("roles: %v", roles)
	}

	// Sigstore: the release and every other component have a .sig tag.
	sigRepos := map[string]int{}
	for _, st := range rel.SigTags {
		repo, tag, _ := strings.Cut(st, ":")
		sigRepos[repo]++
		checkCosign(t, c, rel, repo, tag)
	}
	if !slices.Contains(rel.SigTags, rel.Repository+":"+SigstoreTag(rel.Digest)) {
		t.Errorf("no signature tag for the release in %v", rel.SigTags)
	}
	for _, comp := range rel.Components {
		tags, err := c.Tags(ctx, comp.Repository)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(tags, SigstoreTag(comp.Digest)); got != comp.Signed {
			t.Errorf("component %s: signed %t, tag present %t", comp.Name, comp.Signed, got)
		}
	}

	cat, err := c.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(cat)
	want := []string{ComponentRepository, ExtraComponentRepository, ReleaseRepository}
	slices.Sort(want)
	if !slices.Equal(cat, want) {
		t.Errorf("catalog %v, want %v", cat, want)
	}
}

// checkCosign fetches a signature tag and checks its form, its payload
// (the digest its tag names; the release's tag or the signed digest as
// identity) and its signature against the release's sigstore key.
func checkCosign(t *testing.T, c *Client, rel *Release, repo, tag string) {
	t.Helper()
	sig := readCosign(t, c, repo, tag)
	signed := sig.Digest
	if SigstoreTag(signed) != tag {
		t.Errorf("%s:%s: payload names %s", repo, tag, signed)
	}
	want := rel.Host + "/" + repo + "@" + signed.String()
	if repo == rel.Repository {
		want = rel.Host + "/" + repo + ":" + rel.Tag
	}
	if sig.Identity != want {
		t.Errorf("%s:%s: identity %s, want %s", repo, tag, sig.Identity, want)
	}
	if _, _, err := c.GetManifest(t.Context(), repo, signed.String()); err != nil {
		t.Errorf("%s:%s signs a manifest that is not there: %v", repo, tag, err)
	}
	if !verifyCosign(t, rel.SigstorePublicKey, sig.Payload, sig.Signature) {
		t.Errorf("%s:%s: signature does not verify", repo, tag)
	}
}

func TestBuildReleaseMulti(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	c := reg.Client()
	rel := BuildRelease(t, reg.Host, ReleaseOptions{Multi: true, Sigstore: true, Components: 5, Version: "4.16.2"})
	if rel.Arch != "multi" || rel.Tag != "4.16.2-multi" || rel.MediaType != MediaTypeDockerManifestList {
		t.Fatalf("multi release: %s %s %s", rel.Arch, rel.Tag, rel.MediaType)
	}
	data, mt := mustManifest(t, c, rel.Repository, rel.Tag)
	if !bytes.Equal(data, rel.Manifest) || mt != MediaTypeDockerManifestList {
		t.Fatalf("list as served: %s", mt)
	}
	list := decode[ocispec.Index](t, data)
	var arches []string
	for _, child := range list.Manifests {
		arches = append(arches, child.Platform.Architecture)
		cdata, cmt := mustManifest(t, c, rel.Repository, child.Digest.String())
		if cmt != child.MediaType || int64(len(cdata)) != child.Size {
			t.Errorf("child %s: %s, %d bytes", child.Digest, cmt, len(cdata))
		}
		info, ok := rel.Image(child.Digest)
		if !ok || info.Role != RoleChild || info.Parent != rel.Digest || info.Arch != child.Platform.Architecture {
			t.Errorf("child %s: info %+v", child.Digest, info)
		}
		is := checkImageReferences(t, rel, releaseFiles(t, c, rel.Repository, cdata))
		m := decode[releaseMeta](t, rel.ReleaseMetadata)
		if m.Metadata["release.openshift.io/architecture"] != "multi" {
			t.Errorf("release-metadata: %s", rel.ReleaseMetadata)
		}
		// Every component is a list of per-arch images.
		for _, tag := range is.Spec.Tags {
			comp, _ := rel.Component(tag.Name)
			cl, clmt := mustManifest(t, c, comp.Repository, comp.Digest.String())
			if clmt != MediaTypeDockerManifestList && clmt != ocispec.MediaTypeImageIndex {
				t.Fatalf("component %s is %s", comp.Name, clmt)
			}
			var carches []string
			for _, cc := range decode[ocispec.Index](t, cl).Manifests {
				carches = append(carches, cc.Platform.Architecture)
				img, _ := mustManifest(t, c, comp.Repository, cc.Digest.String())
				cfg := decode[ocispec.Manifest](t, img).Config
				raw, err := c.GetBlob(t.Context(), comp.Repository, cfg.Digest)
				if err != nil {
					t.Fatal(err)
				}
				if got := decode[ocispec.Image](t, raw).Architecture; got != cc.Platform.Architecture {
					t.Errorf("component %s: %s child's config says %s", comp.Name, cc.Platform.Architecture, got)
				}
			}
			if !slices.Equal(carches, []string{"amd64", "arm64"}) {
				t.Errorf("component %s arches %v", comp.Name, carches)
			}
		}
	}
	if !slices.Equal(arches, []string{"amd64", "arm64"}) {
		t.Errorf("release arches %v", arches)
	}
	// Signatures: the list and its first child.
	for _, d := range []digest.Digest{rel.Digest, list.Manifests[0].Digest} {
		if !slices.Contains(rel.SigTags, rel.Repository+":"+SigstoreTag(d)) {
			t.Errorf("no signature for %s in %v", d, rel.SigTags)
		}
	}
	for _, st := range rel.SigTags {
		repo, tag, _ := strings.Cut(st, ":")
		checkCosign(t, c, rel, repo, tag)
	}
}

func TestBuildReleaseOCI(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	for _, multi := range []bool{false, true} {
		rel := BuildRelease(t, reg.Host, ReleaseOptions{OCI: true, Multi: multi, Components: 3, Arch: "aarch64", Version: "4.17.0"})
		want := ocispec.MediaTypeImageManifest
		if multi {
			want = ocispec.MediaTypeImageIndex
		}
		if _, mt := mustManifest(t, reg.Client(), rel.Repository, rel.Tag); mt != want {
			t.Errorf("multi=%t: release served as %s", multi, mt)
		}
		if !multi && (rel.Tag != "4.17.0-aarch64" || rel.Images[len(rel.Images)-1].Arch != "arm64") {
			t.Errorf("aarch64 release: tag %s", rel.Tag)
		}
	}
}

func TestBuildReleaseDeterministic(t *testing.T) {
	t.Parallel()
	opts := ReleaseOptions{Components: 2, Seed: 42, Sigstore: true}
	a := BuildRelease(t, NewMemoryRegistry(t).Host, opts)
	b := BuildRelease(t, NewMemoryRegistry(t).Host, opts)
	if a.Digest == b.Digest {
		// The host is in image-references, so digests differ across hosts;
		// everything else must not.
		t.Fatal("releases on two hosts have the same digest")
	}
	for i := range a.Components {
		if a.Components[i].Digest != b.Components[i].Digest {
			t.Errorf("component %s: %s vs %s", a.Components[i].Name, a.Components[i].Digest, b.Components[i].Digest)
		}
	}
	reg := NewMemoryRegistry(t)
	c1 := BuildRelease(t, reg.Host, opts)
	c2 := BuildRelease(t, reg.Host, opts)
	if c1.Digest != c2.Digest || !slices.Equal(c1.SigTags, c2.SigTags) {
		t.Errorf("same options, same host: %s vs %s", c1.Digest, c2.Digest)
	}
	opts.Seed = 43
	if d := BuildRelease(t, reg.Host, opts); d.Components[0].Digest == c1.Components[0].Digest {
		t.Error("another seed gave the same component")
	}
}

func TestBuildReleaseShareWith(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	old := BuildRelease(t, reg.Host, ReleaseOptions{Components: 8, Sigstore: true})
	next := BuildRelease(t, reg.Host, ReleaseOptions{Components: 8, Sigstore: true, Version: "4.15.1", ShareWith: old, Previous: []string{old.Version}})
	var shared, sharedBytes int64
	for d, n := range next.Blobs {
		if _, ok := old.Blobs[d]; ok {
			shared++
			sharedBytes += n
		}
	}
	if sharedBytes*10 < next.Bytes*6 {
		t.Errorf("only %d of %d bytes shared (%d blobs)", sharedBytes, next.Bytes, shared)
	}
	same := 0
	for i, comp := range next.Components {
		if comp.Digest == old.Components[i].Digest {
			same++
		}
	}
	if same != 6 {
		t.Errorf("%d components unchanged, want 6 of 8", same)
	}
	if next.Digest == old.Digest || !strings.Contains(string(next.ReleaseMetadata), `"4.15.0"`) {
		t.Errorf("next release: %s\n%s", next.Digest, next.ReleaseMetadata)
	}

	// Shared with a release on another registry: everything is pushed there.
	other := NewMemoryRegistry(t)
	moved := BuildRelease(t, other.Host, ReleaseOptions{Components: 8, Version: "4.15.2", ShareWith: old})
	for _, im := range moved.Images {
		if _, _, err := other.GetManifest(t.Context(), im.Repository, im.Digest.String()); err != nil {
			t.Error(err)
		}
	}
	if len(moved.SigTags) == 0 {
		t.Error("signatures of unchanged components did not come along")
	}
}

func TestBuildReleaseNegative(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	c := reg.Client()
	rel := BuildRelease(t, reg.Host, ReleaseOptions{Components: 3, TagReference: true, MissingComponent: true})
	is := checkImageReferences(t, rel, releaseFiles(t, c, rel.Repository, rel.Manifest))
	var byTag, missing int
	for _, comp := range rel.Components {
		switch {
		case comp.Tag != "":
			byTag++
			if comp.Image != reg.Host+"/"+comp.Repository+":"+comp.Tag {
				t.Errorf("tag reference %s", comp.Image)
			}
			desc, err := c.HeadManifest(t.Context(), comp.Repository, comp.Tag)
			if err != nil || desc.Digest != comp.Digest {
				t.Errorf("tag %s does not resolve to %s: %v", comp.Tag, comp.Digest, err)
			}
		case comp.Missing:
			missing++
			_, _, err := c.GetManifest(t.Context(), comp.Repository, comp.Digest.String())
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("missing component resolves: %v", err)
			}
		}
	}
	if byTag != 1 || missing != 1 || len(is.Spec.Tags) != 4 {
		t.Errorf("%d by tag, %d missing, %d entries", byTag, missing, len(is.Spec.Tags))
	}
}

func TestBuildReleaseStreamsLargeLayers(t *testing.T) {
	t.Parallel()
	reg := NewRegistry(t) // filesystem storage, as for large releases
	size := int64(streamThreshold + 300<<10)
	opts := ReleaseOptions{Components: 2, LayersPerImage: 1, SharedBaseLayers: -1, LayerSize: size}
	rel := BuildRelease(t, reg.Host, opts)
	comp := rel.Components[0]
	data, _ := mustManifest(t, reg.Client(), comp.Repository, comp.Digest.String())
	m := decode[ocispec.Manifest](t, data)
	if len(m.Layers) != 1 || m.Layers[0].Size <= size {
		t.Fatalf("layers %+v", m.Layers)
	}
	rc, n, err := reg.OpenBlob(t.Context(), comp.Repository, m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := digest.SHA256.Digester()
	zr, err := gzip.NewReader(io.TeeReader(rc, h.Hash()))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil || hdr.Size != size {
		t.Fatalf("layer tar: %v %+v", err, hdr)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatal(err)
	}
	if h.Digest() != m.Layers[0].Digest || n != m.Layers[0].Size {
		t.Errorf("layer content %s (%d bytes), manifest says %s (%d)", h.Digest(), n, m.Layers[0].Digest, m.Layers[0].Size)
	}
	// Sharing with another registry regenerates the streamed layers.
	other := NewMemoryRegistry(t)
	opts.ShareWith, opts.Version = rel, "4.15.1"
	BuildRelease(t, other.Host, opts)
	if ok, err := other.BlobExists(t.Context(), comp.Repository, m.Layers[0].Digest); !ok || err != nil {
		t.Errorf("streamed layer not regenerated on the other registry: %v", err)
	}
}

func TestLargeReleaseOptions(t *testing.T) {
	t.Parallel()
	o := LargeRelease(500 << 20)
	layers := int64(DefaultComponents*DefaultLayersPerImage + DefaultSharedBaseLayers + 1)
	if o.LayerSize*layers < 500<<20 {
		t.Errorf("LargeRelease(500 MiB): %d bytes of layers", o.LayerSize*layers)
	}
}

func TestSkopeoInspectRaw(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	for _, multi := range []bool{false, true} {
		rel := BuildRelease(t, reg.Host, ReleaseOptions{Components: 2, Multi: multi})
		out := Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+rel.PullSpec)
		if !bytes.Equal(out, rel.Manifest) {
			t.Errorf("multi=%t: skopeo inspect --raw gave other bytes:\n%s", multi, out)
		}
	}
	if _, stderr, err := RunSkopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+reg.Host+"/nothing/here:1"); err == nil {
		t.Errorf("inspecting a missing image succeeded: %s", stderr)
	}
}
