// Package trusttest writes small, genuine, signed bundles straight through
// the bundle writer, for tests and fuzzing of everything that reads a
// bundle's proof: a release image whose layer holds release-manifests/,
// its components, a cosign signature image, a release signature made with
// a key of the test and its ConfigMap. No registry is involved.
package trusttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/signature"
)

// Repositories the fixture's images come from.
const (
	ReleaseRepo   = "quay.io/openshift-release-dev/ocp-release"
	ComponentRepo = "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
	Version       = "4.15.0"
	Arch          = "x86_64"
)

// Fixture is a written bundle and what a test needs to check it.
type Fixture struct {
	Path    string
	Index   *bundle.Index
	Keyring *signature.Keyring
	// ReleaseKey is Keyring's key, armored, for a --keyring file.
	ReleaseKey []byte
	// Files are the bundle's files by name, for writing variants.
	Files map[string][]byte
	// Release is the release image's digest; Components the component
	// images' digests by name.
	Release    digest.Digest
	Components map[string]digest.Digest
}

// blob is a file of the fixture with its descriptor.
type blob struct {
	data []byte
	desc ocispec.Descriptor
}

func newBlob(mediaType string, data []byte) blob {
	return blob{data: data, desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}}
}

// Write writes a bundle of one signed release with the named components
// into dir and returns it. opts.SignIndex, when set, signs the index. Its
// signature images hold placeholder payloads and the release ships no
// image policy, so nothing judges them.
func Write(t testing.TB, dir string, components []string, opts bundle.WriteOptions) *Fixture {
	return write(t, dir, components, opts, nil, nil)
}

// WriteWithPolicy is Write for a 4.22-like release: its layer ships a
// ClusterImagePolicy over the component repository naming policyKey, and
// every component's signature image is a cosign signature by signingKey,
// as cosign writes it (the same key for a genuine bundle).
func WriteWithPolicy(t testing.TB, dir string, components []string, opts bundle.WriteOptions, policyKey, signingKey *testbed.SigstoreKey) *Fixture {
	return write(t, dir, components, opts, policyKey, signingKey)
}

func write(t testing.TB, dir string, components []string, opts bundle.WriteOptions, policyKey, signingKey *testbed.SigstoreKey) *Fixture {
	t.Helper()
	fx := &Fixture{Path: filepath.Join(dir, "bundle.tar"), Files: map[string][]byte{}, Components: map[string]digest.Digest{}}
	idx := &bundle.Index{Tool: bundle.Tool{Name: "ferry", Version: "test"}}
	refs := map[string]string{}
	for i, name := range components {
		m := fx.image(t, fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"n":"%d"}}}`, i), []byte("layer of "+name))
		fx.Components[name] = m.desc.Digest
		refs[name] = ComponentRepo + "@" + m.desc.Digest.String()
		idx.Images = append(idx.Images, fx.indexImage(t, ComponentRepo, m, bundle.RoleComponent, Version+"-"+Arch+"-"+name))
		sig := fx.signature(t, signingKey, m.desc.Digest)
		idx.Images = append(idx.Images, fx.indexImage(t, ComponentRepo, sig, bundle.RoleSigstore,
			"sha256-"+m.desc.Digest.Encoded()+".sig"))
	}
	var policy []byte
	if policyKey != nil {
		policy = testbed.ClusterImagePolicyYAML("openshift", []string{ComponentRepo}, policyKey.PublicKeyPEM())
	}
	rel := fx.image(t, `{"architecture":"amd64","os":"linux"}`, releaseLayer(t, refs, policy))
	fx.Release = rel.desc.Digest
	idx.Images = append([]bundle.Image{fx.indexImage(t, ReleaseRepo, rel, bundle.RoleRelease, Version+"-"+Arch)}, idx.Images...)
	key := testbed.NewKey(t, "release")
	kr, err := signature.ParseKeyring("release.asc", key.PublicArmored(t))
	if err != nil {
		t.Fatal(err)
	}
	fx.Keyring, fx.ReleaseKey = kr, key.PublicArmored(t)
	sig := key.SignRelease(t, fx.Release.String(), ReleaseRepo+":"+Version+"-"+Arch)
	sigName := bundle.SignatureName(fx.Release, 1)
	cm, err := manifests.SignatureConfigMap(fx.Release, [][]byte{sig})
	if err != nil {
		t.Fatal(err)
	}
	cmName := "mirror/config/" + manifests.SignatureConfigMapFile(fx.Release)
	fx.Files[sigName], fx.Files[cmName] = sig, cm
	r := bundle.Release{Version: Version, Arch: Arch, Source: ReleaseRepo + "@" + fx.Release.String(), Digest: fx.Release,
		MediaType: ocispec.MediaTypeImageManifest, Tag: Version + "-" + Arch, ConfigMap: cmName,
		Signatures: []bundle.ReleaseSignature{{File: sigName, KeyFingerprint: key.Fingerprint}}}
	for _, name := range components {
		r.Components = append(r.Components, bundle.Component{Name: name, Image: refs[name]})
	}
	idx.Releases = []bundle.Release{r}
	var entries []bundle.LayoutEntry
	for _, img := range idx.Images {
		for _, tag := range img.Tags {
			entries = append(entries, bundle.LayoutEntry{Digest: img.Digest, MediaType: img.MediaType, Size: img.Size, RefName: tag})
		}
	}
	layoutIndex, err := bundle.OCIIndex(entries)
	if err != nil {
		t.Fatal(err)
	}
	fx.Files[bundle.LayoutFileName], fx.Files[bundle.LayoutIndexName] = bundle.OCILayout(), layoutIndex
	fx.Index = WriteFiles(t, fx.Path, fx.Files, idx, opts)
	return fx
}

// WithImages writes the fixture's files again as a bundle at path, its
// index listing images besides the fixture's own (stored with Image or
// List), and returns the index as finished.
func (fx *Fixture) WithImages(t testing.TB, path string, images ...bundle.Image) *bundle.Index {
	t.Helper()
	idx := &bundle.Index{Tool: fx.Index.Tool, Releases: fx.Index.Releases, Prerequisites: fx.Index.Prerequisites,
		Images: append(slices.Clone(fx.Index.Images), images...)}
	return WriteFiles(t, path, fx.Files, idx, bundle.WriteOptions{})
}

// WriteFiles writes files and idx as a bundle at path and returns the
// index as finished; it fails the test if the writer refuses.
func WriteFiles(t testing.TB, path string, files map[string][]byte, idx *bundle.Index, opts bundle.WriteOptions) *bundle.Index {
	t.Helper()
	idx, err := TryWriteFiles(path, files, idx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// TryWriteFiles is WriteFiles returning the writer's error, for fuzzing
// indexes the writer may refuse.
func TryWriteFiles(path string, files map[string][]byte, idx *bundle.Index, opts bundle.WriteOptions) (*bundle.Index, error) {
	opts.Force = true
	w, err := bundle.Create(path, opts)
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Abort() }()
	for _, name := range sortedNames(files) {
		if err := w.AddFile(name, files[name]); err != nil {
			return nil, err
		}
	}
	if err := w.Finish(idx); err != nil {
		return nil, err
	}
	return idx, nil
}

// image stores a config, one layer and their OCI manifest.
func (fx *Fixture) image(t testing.TB, config string, layer []byte) blob {
	t.Helper()
	return fx.manifest(t, newBlob(ocispec.MediaTypeImageConfig, []byte(config)), newBlob(ocispec.MediaTypeImageLayerGzip, layer))
}

// manifest stores cfg, l and their OCI manifest.
func (fx *Fixture) manifest(t testing.TB, cfg, l blob) blob {
	t.Helper()
	m := ocispec.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg.desc, Layers: []ocispec.Descriptor{l.desc}}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	mb := newBlob(ocispec.MediaTypeImageManifest, data)
	for _, b := range []blob{cfg, l, mb} {
		fx.Files[bundle.BlobName(b.desc.Digest)] = b.data
	}
	return mb
}

// signature stores the signature image of d: a placeholder without key,
// else a cosign signature of ComponentRepo@d by key.
func (fx *Fixture) signature(t testing.TB, key *testbed.SigstoreKey, d digest.Digest) blob {
	t.Helper()
	if key == nil {
		return fx.image(t, `{"architecture":"","os":""}`, []byte("cosign payload of "+d.String()))
	}
	payload, err := testbed.CosignPayload(ComponentRepo+"@"+d.String(), d)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := testbed.SignCosignPayload(key, payload)
	if err != nil {
		t.Fatal(err)
	}
	cfg := newBlob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":["`+digest.FromBytes(payload).String()+`"]}}`))
	l := newBlob(testbed.MediaTypeCosignPayload, payload)
	l.desc.Annotations = map[string]string{testbed.CosignSignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}
	return fx.manifest(t, cfg, l)
}

// Image stores a single image with one layer of the given bytes and
// returns its index entry from repo, with role and tag: an image beyond
// the release chain, for a test to list (and sign the index over).
func (fx *Fixture) Image(t testing.TB, repo, role, tag string, layer []byte) bundle.Image {
	t.Helper()
	m := fx.image(t, `{"architecture":"amd64","os":"linux"}`, layer)
	return fx.indexImage(t, repo, m, role, tag)
}

// List stores an OCI image index over the images and returns its index
// entry from repo, with role and tag; the images keep their own entries.
func (fx *Fixture) List(t testing.TB, repo, role, tag string, images ...bundle.Image) bundle.Image {
	t.Helper()
	list := ocispec.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	var children []digest.Digest
	for _, img := range images {
		list.Manifests = append(list.Manifests, ocispec.Descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: img.Size,
			Platform: &ocispec.Platform{Architecture: "amd64", OS: "linux"}})
		children = append(children, img.Digest)
	}
	data, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	b := newBlob(ocispec.MediaTypeImageIndex, data)
	fx.Files[bundle.BlobName(b.desc.Digest)] = data
	return bundle.Image{Source: repo, Digest: b.desc.Digest, MediaType: b.desc.MediaType, Size: b.desc.Size,
		Tags: []string{tag}, Role: role, Children: children}
}

func (fx *Fixture) indexImage(t testing.TB, repo string, m blob, role, tag string) bundle.Image {
	t.Helper()
	var parsed ocispec.Manifest
	if err := json.Unmarshal(m.data, &parsed); err != nil {
		t.Fatal(err)
	}
	return bundle.Image{Source: repo, Digest: m.desc.Digest, MediaType: m.desc.MediaType, Size: m.desc.Size,
		Tags: []string{tag}, Role: role, Blobs: []digest.Digest{parsed.Config.Digest, parsed.Layers[0].Digest}}
}

// releaseLayer is a gzipped tar holding release-manifests/image-references
// naming refs and release-metadata, as a release image's top layer does.
func releaseLayer(t testing.TB, refs map[string]string, policy []byte) []byte {
	t.Helper()
	type tag struct {
		Name string `json:"name"`
		From struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"from"`
	}
	is := struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Tags []tag `json:"tags"`
		} `json:"spec"`
	}{Kind: "ImageStream", APIVersion: "image.openshift.io/v1"}
	is.Metadata.Name = Version
	for _, name := range sortedNames(refs) {
		var tg tag
		tg.Name, tg.From.Kind, tg.From.Name = name, "DockerImage", refs[name]
		is.Spec.Tags = append(is.Spec.Tags, tg)
	}
	imageRefs, err := json.Marshal(is)
	if err != nil {
		t.Fatal(err)
	}
	meta := []byte(`{"kind":"cincinnati-metadata-v0","version":"` + Version + `","previous":[]}`)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name string
		data []byte
	}{{"release-manifests/0000_90_openshift-cluster-image-policy.yaml", policy},
		{"release-manifests/image-references", imageRefs}, {"release-manifests/release-metadata", meta}} {
		if f.data == nil {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedNames[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
