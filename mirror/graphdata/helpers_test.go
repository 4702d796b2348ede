package graphdata

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixtureDir is a real slice of openshift/cincinnati-graph-data in the
// project's shared fixtures, which CI places beside the checkout.
const fixtureDir = "../../../shared/fixtures/graph/graph-data"

// fixture returns the absolute path of the fixture and its files by path
// relative to it (LICENSE included: the service does not read it).
func fixture(t testing.TB) (string, map[string][]byte) {
	t.Helper()
	abs, err := filepath.Abs(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(abs, p)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatalf("fixture %s is missing (shared/ must sit beside the checkout): %v", abs, err)
	}
	if len(files) < 400 {
		t.Fatalf("fixture %s holds %d files, want the ~490 of the real slice", abs, len(files))
	}
	return abs, files
}

// wantKept is what the service reads of files, by the test's own rule.
func wantKept(files map[string][]byte) map[string][]byte {
	kept := map[string][]byte{}
	for name, data := range files {
		dir, base := filepath.Split(name)
		if name == "version" || name == "raw/metadata.json" ||
			((dir == "channels/" || dir == "blocked-edges/") && strings.HasSuffix(base, ".yaml")) {
			kept[name] = data
		}
	}
	return kept
}

// entry is one tar entry a test writes.
type entry struct {
	name string
	typ  byte // 0 means a regular file
	data []byte
	link string
	mode int64
}

// dataEntries are files as tar entries under prefix ("" or "dir/"), with
// every directory before what it holds, in name order.
func dataEntries(files map[string][]byte, prefix string) []entry {
	dirs := map[string]bool{}
	var entries []entry
	for name, data := range files {
		entries = append(entries, entry{name: prefix + name, data: data})
		for d := filepath.Dir(prefix + name); d != "."; d = filepath.Dir(d) {
			dirs[d+"/"] = true
		}
	}
	for d := range dirs {
		entries = append(entries, entry{name: d, typ: tar.TypeDir})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return entries
}

// tarOf writes entries as a tar stream, with modification times of the
// day the test runs.
func tarOf(t testing.TB, entries []entry) []byte {
	t.Helper()
	size := 1024 // the end of the archive
	for _, e := range entries {
		size += 512 + (len(e.data)+511)/512*512 // header and content, padded
	}
	var buf bytes.Buffer
	buf.Grow(size)
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Now(), Size: int64(len(e.data))}
		if e.typ == tar.TypeXGlobalHeader { // as GitHub writes it: the commit
			hdr = &tar.Header{Typeflag: e.typ, PAXRecords: map[string]string{"comment": "731d0424"}}
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if hdr.Mode == 0 && hdr.Typeflag != tar.TypeXGlobalHeader {
			hdr.Mode = 0o644
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := tw.Write(e.data[:hdr.Size]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzipOf compresses data as one gzip member.
func gzipOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.Grow(len(data)/8 + 1024)
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeTemp writes data to a new file in a test directory and returns its
// file:// URL.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return fileURL(p)
}

func fileURL(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
}

// smallData is a valid graph data of three files, for tests that spoil
// one thing of it.
func smallData() map[string][]byte {
	return map[string][]byte{
		"version":                     []byte("1.1.0\n"),
		"raw/metadata.json":           []byte(`{"4.1.0": {"io.openshift.upgrades.graph.previous.add": "4.1.0-rc.9"}}`),
		"channels/stable-4.15.yaml":   []byte("name: stable-4.15\nversions:\n- 4.14.10\n- 4.15.0\n- 4.15.1\n"),
		"blocked-edges/4.15.1-X.yaml": []byte("to: 4.15.1\nfrom: 4[.]14[.].*\n"),
	}
}
