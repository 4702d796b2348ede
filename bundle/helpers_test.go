package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
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

// tarEntry is where an entry sits in a tar file.
type tarEntry struct {
	name             string
	hdrStart, offset int64
	size             int64
}

// tarEntries lists the entries of the tar at path.
func tarEntries(t *testing.T, path string) []tarEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	sr := io.NewSectionReader(f, 0, st.Size())
	tr := tar.NewReader(sr)
	var list []tarEntry
	var end int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return list
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		off, _ := sr.Seek(0, io.SeekCurrent)
		list = append(list, tarEntry{name: hdr.Name, hdrStart: end, offset: off, size: hdr.Size})
		end = off + paddedSize(hdr.Size)
	}
}

// entryOffset finds the first entry called name in the tar at path.
func entryOffset(t *testing.T, path, name string) tarEntry {
	t.Helper()
	for _, e := range tarEntries(t, path) {
		if e.name == name {
			return e
		}
	}
	t.Fatalf("%s not found in %s", name, path)
	return tarEntry{}
}

// flipByte inverts the bits of the byte at off in the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// hostileEntry is a tar entry to append to a volume.
type hostileEntry struct {
	hdr  tar.Header
	data []byte
}

// appendEntries replaces the end of archive of the tar at path by the
// given entries, written raw (a header may declare more data than given),
// followed by a new end of archive when end is true.
func appendEntries(t *testing.T, path string, end bool, entries ...hostileEntry) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-endOfArchive); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, e := range entries {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		hdr := e.hdr
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		buf.Write(e.data)
		if pad := paddedSize(int64(len(e.data))) - int64(len(e.data)); hdr.Size == int64(len(e.data)) {
			buf.Write(make([]byte, pad))
		}
		if _, err := f.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if end {
		if _, err := f.Write(make([]byte, endOfArchive)); err != nil {
			t.Fatal(err)
		}
	}
}

// rewriteIndex replaces the index of the bundle at path (volume 0) by
// edit's result, with a matching checksum, as a forger would.
func rewriteIndex(t *testing.T, path string, edit func(idx *Index)) {
	t.Helper()
	e := entryOffset(t, path, IndexName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var idx Index
	if err := json.Unmarshal(data[e.offset:e.offset+e.size], &idx); err != nil {
		t.Fatal(err)
	}
	edit(&idx)
	js, err := json.Marshal(&idx)
	if err != nil {
		t.Fatal(err)
	}
	w := &Writer{}
	hdr, err := w.header(IndexName, int64(len(js)), map[string]string{paxComment: indexSumPrefix + digest.FromBytes(js).Encoded()})
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), data[:e.hdrStart]...)
	out = append(out, hdr...)
	out = append(out, js...)
	out = append(out, make([]byte, paddedSize(int64(len(js)))-int64(len(js))+endOfArchive)...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
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

// appendRaw replaces the end of archive of the tar at path by raw bytes
// and a new end of archive.
func appendRaw(t *testing.T, path string, raw []byte) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	data := append(raw, make([]byte, endOfArchive)...)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, st.Size()-endOfArchive); err != nil {
		t.Fatal(err)
	}
}

// paxEntry builds an entry with PAX records Go's writer would refuse to
// write (such as GNU sparse ones), by hand.
func paxEntry(t *testing.T, records map[string]string, name string, data []byte) []byte {
	t.Helper()
	var recs []byte
	keys := make([]string, 0, len(records))
	for k := range records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rec := " " + k + "=" + records[k] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		recs = append(recs, fmt.Sprint(n)+rec...)
	}
	out := ustarBlock(t, "PaxHeaders/x", int64(len(recs)), tar.TypeXHeader)
	out = append(out, recs...)
	out = append(out, make([]byte, paddedSize(int64(len(recs)))-int64(len(recs)))...)
	out = append(out, ustarBlock(t, name, int64(len(data)), tar.TypeReg)...)
	out = append(out, data...)
	return append(out, make([]byte, paddedSize(int64(len(data)))-int64(len(data)))...)
}

// ustarBlock is a ustar header block with any type flag.
func ustarBlock(t *testing.T, name string, size int64, typeflag byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()[:blockSize]
	b[156] = typeflag
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}
