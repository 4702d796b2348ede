package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	fx := newFixture(7, [4]int{300 << 10, 64 << 10, 1 << 20, 511})
	// Reserve from the goroutines too: reservations are concurrent here.
	w, err := Create(path, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Abort() }()
	var g errgroup.Group
	for name, data := range fx.small {
		g.Go(func() error { return w.AddFile(name, data) })
	}
	for name, data := range fx.large {
		g.Go(func() error {
			s, err := w.Reserve(name, int64(len(data)), digest.FromBytes(data).Encoded())
			if err != nil {
				return err
			}
			return fill(s, data)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	idx := fx.idx
	if err := w.Finish(&idx); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"bundle.tar"}) {
		t.Fatalf("directory holds %v", got)
	}

	r, err := Open(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var calls int
	var last int64
	rep, err := r.Verify(context.Background(), func(done, total int64) { calls++; last = done })
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if calls < 2 || last != st.Size() || rep.Bytes != st.Size() {
		t.Errorf("progress: %d calls, last %d, report %d bytes, volume %d bytes", calls, last, rep.Bytes, st.Size())
	}
	if rep.Files != len(fx.small)+len(fx.large)+1 {
		t.Errorf("report checked %d files, want %d", rep.Files, len(fx.small)+len(fx.large)+1)
	}
	if r.Index().ID != w.ID() || len(w.ID()) != 32 {
		t.Errorf("index id %q, writer id %q", r.Index().ID, w.ID())
	}
	for d, want := range fx.blobs {
		sr, size, err := r.Blob(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(sr)
		if err != nil || size != int64(len(want)) || !bytes.Equal(got, want) {
			t.Fatalf("blob %s: %d bytes read (size %d), want %d: %v", d, len(got), size, len(want), err)
		}
	}
	for _, im := range r.Index().Images {
		if _, err := r.ReadImageManifest(im.Digest); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.Blob(digest.FromString("absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent blob: %v", err)
	}
}

func TestExtractsWithSystemTar(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	fx := smallFixture()
	writeFixture(t, path, WriteOptions{}, fx)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	runTar(t, "-xf", path, "-C", out)
	for d, want := range fx.blobs {
		got, err := os.ReadFile(filepath.Join(out, "mirror/oci/blobs/sha256", d.Encoded()))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("extracted blob %s: %v", d, err)
		}
	}
	for _, name := range []string{LayoutFileName, LayoutIndexName, IndexName, VolumeMarkerName} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&^0o644 != 0 {
		t.Errorf("bundle mode %v: %v", st.Mode(), err)
	}
}

func TestVolumes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	const size = 256 << 10
	fx := newFixture(3, [4]int{100 << 10, 90 << 10, 300 << 10, 120 << 10})
	var warnings []string
	idx := writeFixture(t, path, WriteOptions{VolumeSize: size, Warn: func(m string) { warnings = append(warnings, m) }}, fx)

	if len(idx.Volumes) < 4 {
		t.Fatalf("%d volumes, want at least 4", len(idx.Volumes))
	}
	var big File
	for _, f := range idx.Files {
		if f.Size == 300<<10 {
			big = f
		}
		if f.Volume == 0 && fx.large[f.Name] != nil {
			t.Errorf("%s reserved in volume 0", f.Name)
		}
	}
	for i, v := range idx.Volumes {
		p := filepath.Join(dir, v.Name)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && st.Size() != v.Size {
			t.Errorf("%s: %d bytes, index says %d", v.Name, st.Size(), v.Size)
		}
		if i > 0 && st.Size() > size && i != big.Volume {
			t.Errorf("%s: %d bytes, more than the volume size", v.Name, st.Size())
		}
		list := runTar(t, "-tf", p)
		if !strings.HasPrefix(list, VolumeMarkerName+"\n") {
			t.Errorf("%s does not start with its marker:\n%s", v.Name, list)
		}
	}
	if want := "bundle.001.tar"; idx.Volumes[1].Name != want {
		t.Errorf("volume 1 is %s, want %s", idx.Volumes[1].Name, want)
	}
	if n := countFiles(idx, big.Volume); n != 2 {
		t.Errorf("the oversize blob shares volume %d with %d other files", big.Volume, n-2)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], big.Name) || !strings.Contains(warnings[0], "of its own") {
		t.Errorf("warnings: %q", warnings)
	}
	rep, err := openVerify(t, path, ReadOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Err())
	}
}

// countFiles counts the files of a volume, its marker included.
func countFiles(idx *Index, vol int) int {
	n := 0
	for _, f := range idx.Files {
		if f.Volume == vol {
			n++
		}
	}
	return n
}

func TestVolumesGivenExplicitly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	idx := writeFixture(t, path, WriteOptions{VolumeSize: 128 << 10}, newFixture(4, [4]int{100 << 10, 90 << 10, 60 << 10, 120 << 10}))
	// Copied elsewhere under other names, and given in reverse order.
	other := t.TempDir()
	var given []string
	for i := len(idx.Volumes) - 1; i > 0; i-- {
		p := filepath.Join(other, "part-"+string(rune('a'+i))+".tar")
		copyFile(t, filepath.Join(dir, idx.Volumes[i].Name), p)
		given = append(given, p)
		os.Remove(filepath.Join(dir, idx.Volumes[i].Name))
	}
	rep, err := openVerify(t, path, ReadOptions{Volumes: append(given, path)})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Err())
	}
}

func TestVolumeNames(t *testing.T) {
	for _, c := range []struct {
		base string
		n    int
		want string
	}{
		{"bundle.tar", 1, "bundle.001.tar"},
		{"bundle.tar", 12, "bundle.012.tar"},
		{"bundle.tar", 1000, "bundle.1000.tar"},
		{"out", 2, "out.002"},
		{"x.tar.gz", 1, "x.tar.gz.001"},
	} {
		if got := volumeName(c.base, c.n); got != c.want {
			t.Errorf("volumeName(%q, %d) = %q, want %q", c.base, c.n, got, c.want)
		}
		if !isVolumeOf(c.base, c.want) {
			t.Errorf("%s is not seen as a volume of %s", c.want, c.base)
		}
	}
	for _, name := range []string{"bundle.01.tar", "bundle.abc.tar", "bundle.001.tar.gz", "other.001.tar", "bundle.tar.001"} {
		if isVolumeOf("bundle.tar", name) {
			t.Errorf("%s seen as a volume of bundle.tar", name)
		}
	}
}

func TestCommitMismatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	w, err := Create(path, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Abort() }()
	good := []byte("the layer we expected")
	d := digest.FromBytes(good)
	s, err := w.Reserve(BlobName(d), int64(len(good)), "")
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("the layer we received")
	if _, err := s.Write(bad); err != nil {
		t.Fatal(err)
	}
	err = s.Commit()
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("commit: %v", err)
	}
	for _, want := range []string{BlobName(d), d.Encoded(), digest.FromBytes(bad).Encoded()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("commit error does not name %s: %v", want, err)
		}
	}
	err = w.Finish(&Index{})
	if err == nil || !strings.Contains(err.Error(), BlobName(d)) {
		t.Fatalf("finish with an uncommitted slot: %v", err)
	}
	// A retried download fills the slot again.
	s.Reset()
	if _, err := s.Write(good[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err == nil || !strings.Contains(err.Error(), "3 of 21 bytes") {
		t.Fatalf("short commit: %v", err)
	}
	if _, err := s.Write(good[3:]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("writing past the reservation succeeded")
	}
	if err := s.Commit(); err == nil {
		t.Fatal("commit after an overflow succeeded")
	}
	s.Reset()
	if err := fill(s, good); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(&Index{}); err != nil {
		t.Fatal(err)
	}
	rep, err := openVerify(t, path, ReadOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Err())
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, "bundle.tar"), WriteOptions{VolumeSize: MinVolumeSize})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		data := bytes.Repeat([]byte{byte(i)}, 40<<10)
		s, err := w.Reserve(BlobName(digest.FromBytes(data)), int64(len(data)), "")
		if err != nil {
			t.Fatal(err)
		}
		if err := fill(s, data); err != nil {
			t.Fatal(err)
		}
	}
	// Volume 0, three data volumes and the lock.
	if got := listDir(t, dir); len(got) != 5 || !slices.Contains(got, LockName("bundle.tar")) {
		t.Fatalf("before abort: %v, want 4 volumes and %s", got, LockName("bundle.tar"))
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Fatalf("left behind: %v", got)
	}
	if err := w.Finish(&Index{}); err == nil {
		t.Fatal("finish after abort succeeded")
	}
	if _, err := w.Reserve("mirror/x", 1, ""); err == nil {
		t.Fatal("reserve after abort succeeded")
	}
}

func TestAbortAfterFinishKeepsBundle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	w, err := Create(path, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(&Index{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(&Index{}); err == nil {
		t.Fatal("second finish succeeded")
	}
}

func TestExistingBundle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	writeFixture(t, path, WriteOptions{VolumeSize: 128 << 10}, newFixture(5, [4]int{100 << 10, 90 << 10, 60 << 10, 120 << 10}))
	before := listDir(t, dir)
	if len(before) < 3 {
		t.Fatalf("only %v", before)
	}
	// Any volume of the old bundle stops a new one without force.
	os.Remove(path)
	_, err := Create(path, WriteOptions{})
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "bundle.001.tar") {
		t.Fatalf("create over an existing bundle: %v", err)
	}
	var warnings []string
	writeFixture(t, path, WriteOptions{Force: true, Warn: func(m string) { warnings = append(warnings, m) }}, smallFixture())
	if got := listDir(t, dir); !slices.Equal(got, []string{"bundle.tar"}) {
		t.Errorf("after a forced overwrite: %v (warnings %q)", got, warnings)
	}
	rep, err := openVerify(t, path, ReadOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Err())
	}
}

func TestPartialLeftovers(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"bundle.tar.partial", "bundle.003.tar.partial", "other.tar.partial"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var warnings []string
	w, err := Create(filepath.Join(dir, "bundle.tar"), WriteOptions{Warn: func(m string) { warnings = append(warnings, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "removed leftovers of an interrupted pack") ||
		!strings.Contains(warnings[0], "bundle.003.tar.partial") || strings.Contains(warnings[0], "other") {
		t.Errorf("warnings: %q", warnings)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{LockName("bundle.tar"), "bundle.tar.partial", "other.tar.partial"}) {
		t.Errorf("directory: %v", got)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
}

func TestCreateRefusesBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, opts := range []WriteOptions{{VolumeSize: -1}, {VolumeSize: 1000}, {ID: "../x"}} {
		if _, err := Create(filepath.Join(dir, "b.tar"), opts); err == nil {
			t.Errorf("create with %+v succeeded", opts)
		}
	}
	if _, err := Create(filepath.Join(dir, "missing", "b.tar"), WriteOptions{}); err == nil {
		t.Error("create in a missing directory succeeded")
	}
	w, err := Create(filepath.Join(dir, "b.tar"), WriteOptions{ID: "fixed-id"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Abort() }()
	for _, name := range []string{"../x", "/abs", "mirror/../x", VolumeMarkerName, IndexName, "mirror\\x", "top.txt",
		"mirror/oci/blobs/sha256/abc", "mirror/oci/blobs/sha512/" + strings.Repeat("a", 128)} {
		if err := w.AddFile(name, nil); err == nil {
			t.Errorf("AddFile(%q) succeeded", name)
		}
		if _, err := w.Reserve(name, 0, ""); err == nil {
			t.Errorf("Reserve(%q) succeeded", name)
		}
	}
	if err := w.AddFile("mirror/a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reserve("mirror/a", 1, ""); err == nil {
		t.Error("reserving a name twice succeeded")
	}
	if err := w.AddFile(BlobName(digest.FromString("x")), []byte("y")); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("adding a blob under another digest: %v", err)
	}
	if _, err := w.Reserve(BlobName(digest.FromString("x")), 1, digest.FromString("y").Encoded()); err == nil {
		t.Error("reserving a blob with an expected digest other than its name succeeded")
	}
}

// TestHugeEntryHeader checks that an entry past the 8 GiB ustar limit gets
// a PAX header the tar reader understands, without writing its data (the
// file stays sparse).
func TestHugeEntryHeader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	w, err := Create(path, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Abort() }()
	const size = 9 << 30
	s, err := w.Reserve("mirror/huge", size, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path + partialSuffix)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sr := io.NewSectionReader(f, 0, 1<<40)
	tr := tar.NewReader(sr)
	if _, err := tr.Next(); err != nil { // the marker
		t.Fatal(err)
	}
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	off, _ := sr.Seek(0, io.SeekCurrent)
	if hdr.Name != "mirror/huge" || hdr.Size != size || hdr.Format != tar.FormatPAX || off != s.offset {
		t.Fatalf("header %q size %d format %v at %d, slot at %d", hdr.Name, hdr.Size, hdr.Format, off, s.offset)
	}
}

func TestSlotsConcurrentWithReserve(t *testing.T) {
	// Many small slots reserved and filled at once across volumes.
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar")
	w, err := Create(path, WriteOptions{VolumeSize: MinVolumeSize})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Abort() }()
	var mu sync.Mutex
	blobs := map[digest.Digest][]byte{}
	var g errgroup.Group
	for i := range 64 {
		g.Go(func() error {
			data := bytes.Repeat([]byte{byte(i), byte(i >> 8), 7}, 1000+i*97)
			d := digest.FromBytes(data)
			mu.Lock()
			blobs[d] = data
			mu.Unlock()
			s, err := w.Reserve(BlobName(d), int64(len(data)), "")
			if err != nil {
				return err
			}
			return fill(s, data)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(&Index{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Verify(context.Background(), nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Err())
	}
	for d, want := range blobs {
		sr, _, err := r.Blob(d)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(sr)
		if !bytes.Equal(got, want) {
			t.Fatalf("blob %s differs", d)
		}
	}
}
