package tartamper

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const (
	indexName = "index.json"
	sigName   = "index.json.asc"
	prefix    = "test-index sha256:"
)

// read is what the tar at path holds, by entry, as Go's reader sees it.
type read struct {
	names []string
	data  map[string][]byte
	hdrs  map[string]*tar.Header
}

func readTar(t *testing.T, path string) read {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := read{data: map[string][]byte{}, hdrs: map[string]*tar.Header{}}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return r
		}
		if err != nil {
			t.Fatalf("reading back %s: %v", path, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		r.names = append(r.names, hdr.Name)
		r.data[hdr.Name], r.hdrs[hdr.Name] = data, hdr
	}
}

// signedTar writes a tar like a signed bundle's volume 0: a file, an index
// with its checksum comment, and the index's signature.
func signedTar(t *testing.T) string {
	t.Helper()
	index := []byte(`{"files":["a"]}`)
	sum := sha256.Sum256(index)
	var buf bytes.Buffer
	buf.Write(File(t, "a", []byte("abc")))
	buf.Write(Raw(t, tar.Header{Name: indexName, Typeflag: tar.TypeReg, Size: int64(len(index)),
		PAXRecords: map[string]string{"comment": prefix + hex.EncodeToString(sum[:])}}, index))
	buf.Write(File(t, sigName, []byte("signature")))
	buf.Write(make([]byte, EndOfArchive))
	path := filepath.Join(t.TempDir(), "v.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEntries(t *testing.T) {
	path := signedTar(t)
	list := Entries(t, path)
	var names []string
	for _, e := range list {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"a", indexName, sigName}) {
		t.Fatalf("entries %v", names)
	}
	a, idx := Find(t, path, "a"), Find(t, path, indexName)
	if a.HeaderStart != 0 || a.Offset != BlockSize || a.Size != 3 {
		t.Errorf("a: %+v", a)
	}
	// a's header and padded data, then a PAX header and its records.
	if idx.HeaderStart != 2*BlockSize || idx.Offset != 5*BlockSize {
		t.Errorf("index: %+v", idx)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := FindIn(t, data, indexName); got != idx {
		t.Errorf("FindIn %+v, Find %+v", got, idx)
	}
}

func TestFlip(t *testing.T) {
	path := signedTar(t)
	a := Find(t, path, "a")
	Flip(t, path, a.Offset+1, 0x01)
	if got := readTar(t, path).data["a"]; string(got) != "acc" {
		t.Errorf("after the flip a holds %q", got)
	}
}

func TestInsertBeforeAndAppend(t *testing.T) {
	path := signedTar(t)
	a := Find(t, path, "a")
	InsertBefore(t, path, indexName, File(t, "x", []byte("inserted")), Raw(t, tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, nil))
	Append(t, path, true, File(t, "y", []byte("appended")))
	r := readTar(t, path)
	if !slices.Equal(r.names, []string{"a", "x", "l", indexName, sigName, "y"}) {
		t.Fatalf("entries %v", r.names)
	}
	if string(r.data["x"]) != "inserted" || string(r.data["y"]) != "appended" || r.hdrs["l"].Linkname != "/etc" {
		t.Errorf("x %q, y %q, l -> %q", r.data["x"], r.data["y"], r.hdrs["l"].Linkname)
	}
	if got := Find(t, path, "a"); got != a {
		t.Errorf("a moved from %+v to %+v", a, got)
	}

	// A header declaring more than follows, without an end-of-archive:
	// the tar ends four bytes into the bomb's data.
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	bomb := Raw(t, tar.Header{Name: "bomb", Typeflag: tar.TypeReg, Size: 1 << 40}, []byte("tiny"))
	Append(t, path, false, bomb)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := before.Size() - EndOfArchive
	if !bytes.Equal(data[at:], bomb) || !bytes.HasSuffix(bomb, []byte("tiny")) {
		t.Errorf("the tar ends in %q after its old end-of-archive; want the bomb entry, unpadded", data[at:])
	}
	hdr, err := tar.NewReader(bytes.NewReader(bomb)).Next()
	if err != nil || hdr.Name != "bomb" || hdr.Size != 1<<40 || hdr.Mode != 0o644 {
		t.Errorf("bomb header %+v, %v", hdr, err)
	}
}

func TestForge(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep=%t", keep), func(t *testing.T) {
			path := signedTar(t)
			f := Forgery{Index: indexName, ChecksumPrefix: prefix, Files: map[string][]byte{"c": []byte("sea"), "b": []byte("bee")},
				Edit: func(index []byte, added []Entry) ([]byte, error) {
					if string(index) != `{"files":["a"]}` {
						return nil, fmt.Errorf("index %q", index)
					}
					return fmt.Appendf(nil, `{"files":["a","b@%d","c@%d"]}`, added[0].Offset, added[1].Offset), nil
				}}
			if keep {
				f.Keep = sigName
			}
			Forge(t, path, f)
			r := readTar(t, path)
			want := []string{"a", "b", "c", indexName}
			if keep {
				want = append(want, sigName)
			}
			if !slices.Equal(r.names, want) {
				t.Fatalf("entries %v, want %v", r.names, want)
			}
			b, c := Find(t, path, "b"), Find(t, path, "c")
			index := r.data[indexName]
			if string(index) != fmt.Sprintf(`{"files":["a","b@%d","c@%d"]}`, b.Offset, c.Offset) {
				t.Errorf("forged index %s; b at %d, c at %d", index, b.Offset, c.Offset)
			}
			sum := sha256.Sum256(index)
			if got := r.hdrs[indexName].PAXRecords["comment"]; got != prefix+hex.EncodeToString(sum[:]) {
				t.Errorf("checksum comment %q does not match the forged index", got)
			}
			if keep && string(r.data[sigName]) != "signature" {
				t.Errorf("kept signature %q", r.data[sigName])
			}
		})
	}
}

func TestHandMadeHeaders(t *testing.T) {
	path := signedTar(t)
	Append(t, path, true, PAXEntry(t, map[string]string{"comment": "hand made", "path": "long/name"}, "short", []byte("data")),
		USTARBlock(t, "pax_global_header", 0, tar.TypeXGlobalHeader))
	r := readTar(t, path)
	if !slices.Equal(r.names, []string{"a", indexName, sigName, "long/name", "pax_global_header"}) {
		t.Fatalf("entries %v", r.names)
	}
	if h := r.hdrs["long/name"]; h.PAXRecords["comment"] != "hand made" || string(r.data["long/name"]) != "data" {
		t.Errorf("PAX entry: records %v, data %q", h.PAXRecords, r.data["long/name"])
	}
	if h := r.hdrs["pax_global_header"]; h.Typeflag != tar.TypeXGlobalHeader {
		t.Errorf("type %q", h.Typeflag)
	}
}
