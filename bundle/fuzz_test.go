package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// seedBundles returns small bundles, sound and hostile, as volume-0 bytes.
func seedBundles(tb testing.TB) map[string][]byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "bundle.tar")
	w, err := Create(path, WriteOptions{ID: "0123456789abcdef0123456789abcdef"})
	if err != nil {
		tb.Fatal(err)
	}
	// The smallest bundle that exercises every check: one OCI image.
	fx := &fixture{small: map[string][]byte{}, large: map[string][]byte{}, blobs: map[digest.Digest][]byte{}}
	m := fx.image(v1.MediaTypeImageManifest, []byte(`{"architecture":"amd64"}`),
		fx.blob([]byte("layer"), v1.MediaTypeImageLayerGzip))
	fx.small[LayoutFileName] = OCILayout()
	fx.small[LayoutIndexName], err = OCIIndex([]LayoutEntry{{Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, RefName: "t"}})
	if err != nil {
		tb.Fatal(err)
	}
	fx.idx.Images = []Image{{Source: "quay.io/x", Digest: m.Digest, MediaType: m.MediaType, Size: m.Size, Role: RoleComponent}}
	for _, name := range sortedKeys(fx.small) {
		if err := w.AddFile(name, fx.small[name]); err != nil {
			tb.Fatal(err)
		}
	}
	for _, name := range sortedKeys(fx.large) {
		s, err := w.Reserve(name, int64(len(fx.large[name])), "")
		if err == nil {
			err = fill(s, fx.large[name])
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	idx := fx.idx
	if err := w.Finish(&idx); err != nil {
		tb.Fatal(err)
	}
	sound, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	seeds := map[string][]byte{"sound": sound}
	for name, e := range map[string]struct {
		hdr  tar.Header
		data []byte
	}{
		"symlink":  {tar.Header{Name: "mirror/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, nil},
		"dotdot":   {tar.Header{Name: "../evil", Size: 1, Mode: 0o644}, []byte("x")},
		"huge":     {tar.Header{Name: "mirror/huge", Size: 1 << 40, Mode: 0o644}, nil},
		"hugepax":  {tar.Header{Name: "mirror/huge", Size: 1 << 40, Mode: 0o644, Format: tar.FormatPAX}, nil},
		"dup":      {tar.Header{Name: LayoutFileName, Size: 2, Mode: 0o644}, []byte("{}")},
		"sparsepx": {tar.Header{Name: "mirror/sparse", Size: 10, Mode: 0o644, PAXRecords: map[string]string{"GNU.sparse.map": "0,1", "GNU.sparse.realsize": "1000000000"}}, []byte("0123456789")},
	} {
		// Just before the index, so that Open still finds the index last
		// and Verify meets the entry.
		seeds[name] = tartamper.InsertBeforeIn(tb, sound, IndexName, tartamper.Raw(tb, e.hdr, e.data))
	}
	return seeds
}

func FuzzVerifyTar(f *testing.F) {
	for _, seed := range seedBundles(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "bundle.tar")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path, ReadOptions{})
		if err != nil {
			return
		}
		defer r.Close()
		rep, err := r.Verify(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Faults) > maxFaults {
			t.Fatalf("%d faults", len(rep.Faults))
		}
		_ = rep.Err()
		for _, file := range r.Index().Files {
			if sr, err := r.Open(file.Name); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(sr, 1<<10))
			}
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	valid, err := json.Marshal(validIndex())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"formatVersion":1}`))
	f.Add([]byte(`{"formatVersion":1,"id":"x","volumes":[{"name":"a"}],"files":[{"name":"ferry-volume.json","size":1,"sha256":"` + hexA + `","volume":0,"offset":512}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := ParseIndex(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What was accepted must survive a round trip unchanged in meaning.
		again, err := json.Marshal(idx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseIndex(bytes.NewReader(again)); err != nil {
			t.Fatalf("re-encoded index refused: %v\n%s", err, again)
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpora under
// testdata/fuzz when FERRY_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("FERRY_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set FERRY_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(target, name string, data []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seeds := seedBundles(t)
	// A few hostile ones are committed; the fuzz target adds all at run time.
	for _, name := range []string{"sound", "symlink", "dotdot", "hugepax"} {
		write("FuzzVerifyTar", name, seeds[name])
	}
	sound := seeds["sound"]
	e := tartamper.FindIn(t, sound, IndexName)
	write("FuzzParseIndex", "bundle-index", sound[e.Offset:e.Offset+e.Size])
	valid, _ := json.Marshal(validIndex())
	write("FuzzParseIndex", "valid", valid)
}

// TestSeedBundles checks that the sound seed verifies and each hostile one
// is refused, so that the fuzz seeds start from both sides of the line.
func TestSeedBundles(t *testing.T) {
	for name, data := range seedBundles(t) {
		path := filepath.Join(t.TempDir(), "bundle.tar")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := openVerify(t, path, ReadOptions{})
		switch {
		case name == "sound" && (err != nil || !rep.OK()):
			t.Errorf("sound seed: %v %v", err, rep.Err())
		case name != "sound" && err == nil && rep.OK():
			t.Errorf("hostile seed %s verifies", name)
		}
	}
}
