// Package tartamper damages and forges tar files as an attacker with the
// disk would: it finds entries, flips bits, splices raw entries in and
// rewrites an index entry with a checksum that agrees. The bundle package's
// tests and the CLI and end-to-end tests share it.
//
// It knows tar, not ferry: the index's entry name and checksum prefix are
// the caller's, and the index is edited as bytes, so that the bundle
// package's own tests can use it without an import cycle. Every function
// fails the test on an error.
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
	"slices"
	"sort"
	"testing"
	"time"
)

// Tar geometry, as in every POSIX tar.
const (
	BlockSize    = 512
	EndOfArchive = 2 * BlockSize
)

// defaultModTime is the modification time of the entries made here when
// the caller gives none, so that they look like what a real tar holds.
var defaultModTime = time.Unix(1700000000, 0)

// Padded is n rounded up to whole tar blocks.
func Padded(n int64) int64 { return (n + BlockSize - 1) / BlockSize * BlockSize }

// Entry is where one entry of a tar sits.
type Entry struct {
	Name        string
	HeaderStart int64 // first byte of its header (PAX records included)
	Offset      int64 // first byte of its data
	Size        int64 // bytes of data, as the header declares
}

// Entries lists the entries of the tar at path, in order.
func Entries(tb testing.TB, path string) []Entry {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	list, err := entries(f, st.Size())
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return list
}

// EntriesIn lists the entries of the tar in data, in order.
func EntriesIn(tb testing.TB, data []byte) []Entry {
	tb.Helper()
	list, err := entries(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		tb.Fatalf("tar of %d bytes: %v", len(data), err)
	}
	return list
}

func entries(r io.ReaderAt, size int64) ([]Entry, error) {
	sr := io.NewSectionReader(r, 0, size)
	tr := tar.NewReader(sr)
	var list []Entry
	var end int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return list, nil
		}
		if err != nil {
			return nil, err
		}
		off, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		list = append(list, Entry{Name: hdr.Name, HeaderStart: end, Offset: off, Size: hdr.Size})
		end = off + Padded(hdr.Size)
	}
}

// Find returns the first entry called name in the tar at path.
func Find(tb testing.TB, path, name string) Entry {
	tb.Helper()
	return find(tb, Entries(tb, path), path, name)
}

// FindIn returns the first entry called name in the tar in data.
func FindIn(tb testing.TB, data []byte, name string) Entry {
	tb.Helper()
	return find(tb, EntriesIn(tb, data), "the tar", name)
}

func find(tb testing.TB, list []Entry, where, name string) Entry {
	tb.Helper()
	for _, e := range list {
		if e.Name == name {
			return e
		}
	}
	tb.Fatalf("%s: no entry %s", where, name)
	return Entry{}
}

// Flip inverts the bits set in mask of the byte at off in the file at path.
func Flip(tb testing.TB, path string, off int64, mask byte) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		tb.Fatalf("%s at offset %d: %v", path, off, err)
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b, off); err != nil {
		tb.Fatalf("%s at offset %d: %v", path, off, err)
	}
}

// Raw is a tar entry, header and data, as raw bytes. A zero Mode is 0644
// and a zero ModTime a fixed time. The header may declare more data than
// given (a tar bomb); the data is padded only when it is complete.
func Raw(tb testing.TB, hdr tar.Header, data []byte) []byte {
	tb.Helper()
	if hdr.Mode == 0 {
		hdr.Mode = 0o644
	}
	if hdr.ModTime.IsZero() {
		hdr.ModTime = defaultModTime
	}
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(&hdr); err != nil {
		tb.Fatalf("tar header %q: %v", hdr.Name, err)
	}
	buf.Write(data)
	if int64(len(data)) == hdr.Size {
		buf.Write(make([]byte, Padded(hdr.Size)-hdr.Size))
	}
	return buf.Bytes()
}

// File is a regular file entry holding data.
func File(tb testing.TB, name string, data []byte) []byte {
	tb.Helper()
	return Raw(tb, tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(data))}, data)
}

// Splice replaces the bytes of the file at path from off to its end by tail.
func Splice(tb testing.TB, path string, off int64, tail []byte) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if off > int64(len(data)) {
		tb.Fatalf("%s: splice at offset %d of %d bytes", path, off, len(data))
	}
	if err := os.WriteFile(path, append(data[:off:off], tail...), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// InsertBefore puts raw entries into the tar at path just before the entry
// called name: the entries before it keep their offsets, and it and what
// follows it stay in order after the new ones.
func InsertBefore(tb testing.TB, path, name string, raw ...[]byte) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, InsertBeforeIn(tb, data, name, raw...), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// InsertBeforeIn is InsertBefore on a tar in memory; it returns a new tar.
func InsertBeforeIn(tb testing.TB, data []byte, name string, raw ...[]byte) []byte {
	tb.Helper()
	e := FindIn(tb, data, name)
	out := append([]byte(nil), data[:e.HeaderStart]...)
	out = append(out, bytes.Join(raw, nil)...)
	return append(out, data[e.HeaderStart:]...)
}

// Append puts raw entries at the end of the tar at path, in place of its
// end-of-archive; a new end-of-archive follows when end is true.
func Append(tb testing.TB, path string, end bool, raw ...[]byte) {
	tb.Helper()
	st, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	tail := bytes.Join(raw, nil)
	if end {
		tail = append(tail, make([]byte, EndOfArchive)...)
	}
	Splice(tb, path, st.Size()-EndOfArchive, tail)
}

// PAXEntry builds, by hand, a regular file entry preceded by a PAX header
// of records Go's writer would refuse to write (GNU sparse ones, say).
func PAXEntry(tb testing.TB, records map[string]string, name string, data []byte) []byte {
	tb.Helper()
	var recs []byte
	keys := make([]string, 0, len(records))
	for k := range records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rec := " " + k + "=" + records[k] + "\n"
		n := len(rec) + 1 // the record's length counts its own digits
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		recs = append(recs, fmt.Sprint(n)+rec...)
	}
	out := USTARBlock(tb, "PaxHeaders/x", int64(len(recs)), tar.TypeXHeader)
	out = append(out, recs...)
	out = append(out, make([]byte, Padded(int64(len(recs)))-int64(len(recs)))...)
	out = append(out, USTARBlock(tb, name, int64(len(data)), tar.TypeReg)...)
	out = append(out, data...)
	return append(out, make([]byte, Padded(int64(len(data)))-int64(len(data)))...)
}

// USTARBlock is a ustar header block with any type flag, its checksum
// recomputed.
func USTARBlock(tb testing.TB, name string, size int64, typeflag byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
		tb.Fatal(err)
	}
	b := buf.Bytes()[:BlockSize]
	b[156] = typeflag
	copy(b[148:156], "        ") // the checksum counts its own field as spaces
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// Forgery is what Forge does to a tar whose last entries are an index and,
// optionally, one entry after it (a signature of the index).
type Forgery struct {
	// Index names the index entry.
	Index string
	// ChecksumPrefix starts the PAX "comment" record of the forged index
	// entry; the hex sha256 of the forged index follows it.
	ChecksumPrefix string
	// Files are added where the index was, in name order.
	Files map[string][]byte
	// Edit returns the forged index from the original one and where the
	// added files landed (in name order). Nil keeps the index as it was.
	Edit func(index []byte, added []Entry) ([]byte, error)
	// Keep names an entry after the index that is put back after the
	// forged one, as a forger hoping it is not checked would; any other
	// entry after the index is dropped.
	Keep string
}

// Forge rewrites the tar at path from its entry f.Index on: the added
// files, the edited index with a checksum that agrees, the kept entry if
// it was the last one, and an end-of-archive.
func Forge(tb testing.TB, path string, f Forgery) {
	tb.Helper()
	list := Entries(tb, path)
	index := find(tb, list, path, f.Index)
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var kept []byte
	if last := list[len(list)-1]; f.Keep != "" && last.Name == f.Keep {
		kept = File(tb, last.Name, data[last.Offset:last.Offset+last.Size])
	}
	out := append([]byte(nil), data[:index.HeaderStart]...)
	names := make([]string, 0, len(f.Files))
	for name := range f.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	var added []Entry
	for _, name := range names {
		content := f.Files[name]
		entry := File(tb, name, content)
		size := int64(len(content))
		start := int64(len(out))
		added = append(added, Entry{Name: name, HeaderStart: start, Offset: start + int64(len(entry)) - Padded(size), Size: size})
		out = append(out, entry...)
	}
	js := data[index.Offset : index.Offset+index.Size]
	if f.Edit != nil {
		if js, err = f.Edit(slices.Clone(js), added); err != nil {
			tb.Fatalf("forging %s in %s: %v", f.Index, path, err)
		}
	}
	sum := sha256.Sum256(js)
	out = append(out, Raw(tb, tar.Header{Name: f.Index, Typeflag: tar.TypeReg, Size: int64(len(js)), Format: tar.FormatPAX,
		PAXRecords: map[string]string{"comment": f.ChecksumPrefix + hex.EncodeToString(sum[:])}}, js)...)
	out = append(out, kept...)
	out = append(out, make([]byte, EndOfArchive)...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		tb.Fatal(err)
	}
}
