package bundle

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// fixture is the content of a test bundle: a release (a Docker manifest
// list), a component with a Docker manifest, one with an OCI index, shared
// layers, a signature, a ConfigMap and the OCI layout.
type fixture struct {
	idx   Index
	small map[string][]byte // added with AddFile
	large map[string][]byte // reserved and filled by goroutines
	// blobs maps every digest to its bytes, small and large.
	blobs map[digest.Digest][]byte
}

// newFixture makes a fixture whose four layers have the given sizes,
// filled with incompressible random bytes.
func newFixture(seed uint64, layerSizes [4]int) *fixture {
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	fx := &fixture{small: map[string][]byte{}, large: map[string][]byte{}, blobs: map[digest.Digest][]byte{}}
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rng.Read(b)
		return b
	}
	var layers [4]descriptor
	for i, n := range layerSizes {
		layers[i] = fx.blob(random(n), "application/vnd.docker.image.rootfs.diff.tar.gzip")
	}
	a := fx.image(MediaTypeDockerManifest, random(300), layers[0], layers[1])
	b := fx.image(v1.MediaTypeImageManifest, random(280), layers[0], layers[2])
	c := fx.image(MediaTypeDockerManifest, random(310), layers[3])
	rel := fx.list(MediaTypeDockerManifestList, c)
	d := fx.list(v1.MediaTypeImageIndex, b)
	src := "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
	fx.idx.Images = []Image{
		{Source: "quay.io/openshift-release-dev/ocp-release", Digest: rel.Digest, MediaType: rel.MediaType, Size: rel.Size,
			Tags: []string{"4.15.0-x86_64"}, Role: RoleRelease, Children: []digest.Digest{c.Digest}},
		{Source: src, Digest: c.Digest, MediaType: c.MediaType, Size: c.Size, Role: RoleChild,
			Blobs: fx.blobsOf(c)},
		{Source: src, Digest: a.Digest, MediaType: a.MediaType, Size: a.Size, Role: RoleComponent,
			Tags: []string{"4.15.0-x86_64-etcd"}, Blobs: fx.blobsOf(a)},
		{Source: src, Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, Role: RoleComponent,
			Tags: []string{"4.15.0-x86_64-console"}, Children: []digest.Digest{b.Digest}},
		{Source: src, Digest: b.Digest, MediaType: b.MediaType, Size: b.Size, Role: RoleChild, Blobs: fx.blobsOf(b)},
	}
	sig := SignatureName(rel.Digest, 1)
	fx.small[sig] = random(566)
	cm := "mirror/config/signature-sha256-" + rel.Digest.Encoded()[:16] + ".yaml"
	fx.small[cm] = []byte("apiVersion: v1\nkind: ConfigMap\n")
	fx.idx.Releases = []Release{{Version: "4.15.0", Arch: "x86_64", Source: "quay.io/openshift-release-dev/ocp-release@" + string(rel.Digest),
		Digest: rel.Digest, MediaType: rel.MediaType, Tag: "4.15.0-x86_64",
		Signatures: []ReleaseSignature{{File: sig, KeyFingerprint: "567E347AD0044ADE55BA8A5F199E2F91FD431D51", Identity: "Red Hat, Inc.", Creator: "test"}},
		ConfigMap:  cm,
		Components: []Component{{Name: "etcd", Image: src + "@" + string(a.Digest)}, {Name: "console", Image: src + "@" + string(d.Digest)}}}}
	fx.idx.Tool = Tool{Name: "ferry", Version: "test", Commit: "0000000"}
	fx.idx.Options = json.RawMessage(`{"volumeSize":0}`)
	fx.small[LayoutFileName] = OCILayout()
	layout, err := OCIIndex([]LayoutEntry{
		{Digest: rel.Digest, MediaType: rel.MediaType, Size: rel.Size, RefName: "4.15.0-x86_64"},
		{Digest: a.Digest, MediaType: a.MediaType, Size: a.Size, RefName: "4.15.0-x86_64-etcd"},
		{Digest: d.Digest, MediaType: d.MediaType, Size: d.Size, RefName: "4.15.0-x86_64-console"},
	})
	if err != nil {
		panic(err)
	}
	fx.small[LayoutIndexName] = layout
	return fx
}

func (fx *fixture) blob(data []byte, mediaType string) descriptor {
	d := digest.FromBytes(data)
	fx.large[BlobName(d)] = data
	fx.blobs[d] = data
	return descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func (fx *fixture) manifest(mediaType string, v any) descriptor {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	d := digest.FromBytes(data)
	fx.small[BlobName(d)] = data
	fx.blobs[d] = data
	return descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func (fx *fixture) image(mediaType string, config []byte, layers ...descriptor) descriptor {
	cfgType := "application/vnd.docker.container.image.v1+json"
	if mediaType == v1.MediaTypeImageManifest {
		cfgType = v1.MediaTypeImageConfig
	}
	cfg := fx.blob(config, cfgType)
	return fx.manifest(mediaType, map[string]any{"schemaVersion": 2, "mediaType": mediaType, "config": cfg, "layers": layers})
}

func (fx *fixture) list(mediaType string, children ...descriptor) descriptor {
	var ms []map[string]any
	for _, c := range children {
		ms = append(ms, map[string]any{"mediaType": c.MediaType, "digest": c.Digest, "size": c.Size,
			"platform": map[string]string{"architecture": "amd64", "os": "linux"}})
	}
	return fx.manifest(mediaType, map[string]any{"schemaVersion": 2, "mediaType": mediaType, "manifests": ms})
}

func (fx *fixture) blobsOf(m descriptor) []digest.Digest {
	blobs, _, err := parseManifest(fx.blobs[m.Digest], m.MediaType)
	if err != nil {
		panic(err)
	}
	var ds []digest.Digest
	for _, b := range blobs {
		ds = append(ds, b.Digest)
	}
	return ds
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeFixture writes fx as a bundle at path: small files first, then the
// large ones reserved in a fixed order and filled concurrently in chunks
// of varying sizes. It returns the index as finished.
func writeFixture(t *testing.T, path string, opts WriteOptions, fx *fixture) *Index {
	t.Helper()
	w, err := Create(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Abort() }()
	for _, name := range sortedKeys(fx.small) {
		if err := w.AddFile(name, fx.small[name]); err != nil {
			t.Fatal(err)
		}
	}
	slots := map[*Slot][]byte{}
	for _, name := range sortedKeys(fx.large) {
		s, err := w.Reserve(name, int64(len(fx.large[name])), "")
		if err != nil {
			t.Fatal(err)
		}
		slots[s] = fx.large[name]
	}
	var g errgroup.Group
	for s, data := range slots {
		g.Go(func() error { return fill(s, data) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	idx := fx.idx
	if err := w.Finish(&idx); err != nil {
		t.Fatal(err)
	}
	return &idx
}

// fill writes data into s in chunks of 1 to 7 KiB, then commits.
func fill(s *Slot, data []byte) error {
	for i, chunk := 0, 1<<10; len(data) > 0; i++ {
		n := min(len(data), chunk*(1+i%7))
		if _, err := s.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return s.Commit()
}

// smallFixture is a one-file bundle's worth of content.
func smallFixture() *fixture {
	return newFixture(1, [4]int{5000, 700, 12000, 1})
}

// openVerify opens the bundle at path and verifies it.
func openVerify(t *testing.T, path string, opts ReadOptions) (*Report, error) {
	t.Helper()
	r, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Verify(context.Background(), nil)
}

// mustFault verifies the bundle and fails unless a fault contains every
// one of wants.
func mustFault(t *testing.T, path string, opts ReadOptions, wants ...string) *Report {
	t.Helper()
	rep, err := openVerify(t, path, opts)
	if err != nil {
		t.Fatalf("open or verify: %v", err)
	}
	if rep.OK() {
		t.Fatal("verify found no fault")
	}
	msgs := rep.Err().Error()
	if os.Getenv("FERRY_SHOW_FAULTS") != "" {
		t.Log(msgs)
	}
	for _, want := range wants {
		if !strings.Contains(msgs, want) {
			t.Errorf("no fault mentions %q; faults:\n%s", want, msgs)
		}
	}
	return rep
}

// mustOpenFail fails unless Open fails with an error containing wants.
func mustOpenFail(t *testing.T, path string, opts ReadOptions, wants ...string) error {
	t.Helper()
	r, err := Open(path, opts)
	if err == nil {
		r.Close()
		t.Fatal("open succeeded")
	}
	if os.Getenv("FERRY_SHOW_FAULTS") != "" {
		t.Log(err)
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	return err
}

// rewriteIndex replaces the index of the bundle at path (volume 0) by
// edit's result, with a matching checksum, as a forger would.
func rewriteIndex(t *testing.T, path string, edit func(idx *Index)) {
	t.Helper()
	tartamper.Forge(t, path, tartamper.Forgery{Index: IndexName, ChecksumPrefix: indexSumPrefix,
		Edit: func(index []byte, _ []tartamper.Entry) ([]byte, error) {
			var idx Index
			if err := json.Unmarshal(index, &idx); err != nil {
				return nil, err
			}
			edit(&idx)
			return json.Marshal(&idx)
		}})
}

// runTar runs the system tar, skipping the test if there is none.
func runTar(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar on PATH")
	}
	out, err := exec.Command("tar", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tar %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
