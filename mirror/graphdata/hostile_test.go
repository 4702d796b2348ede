package graphdata

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Each hostile archive is smallData, valid, plus one entry that only its
// own defence can catch.
func TestFetchRefusesHostileArchives(t *testing.T) {
	valid := dataEntries(smallData(), "")
	ctx := context.Background()
	if _, err := Fetch(ctx, writeTemp(t, "valid.tar.gz", gzipOf(t, tarOf(t, valid))), FetchOptions{}); err != nil {
		t.Fatalf("the valid archive: %v", err)
	}
	unsafe := func(name, reason string) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			t.Helper()
			u, ok := errors.AsType[*UnsafeEntryError](err)
			if !ok || u.Name != name || !bytes.Contains([]byte(u.Reason), []byte(reason)) {
				t.Fatalf("error %v: want an UnsafeEntryError for %q saying %q", err, name, reason)
			}
		}
	}
	for name, c := range map[string]struct {
		extra []entry
		check func(*testing.T, error)
	}{
		"symlink": {[]entry{{name: "channels/fast-4.15.yaml", typ: tar.TypeSymlink, link: "/etc/passwd"}},
			unsafe("channels/fast-4.15.yaml", "a link")},
		"hard link": {[]entry{{name: "channels/fast-4.15.yaml", typ: tar.TypeLink, link: "channels/stable-4.15.yaml"}},
			unsafe("channels/fast-4.15.yaml", "a link")},
		"symlink not kept": {[]entry{{name: "hack/tool", typ: tar.TypeSymlink, link: "../../bin/sh"}},
			unsafe("hack/tool", "a link")},
		"device": {[]entry{{name: "channels/null.yaml", typ: tar.TypeChar}},
			unsafe("channels/null.yaml", "neither a regular file nor a directory")},
		"dot-dot": {[]entry{{name: "../channels/fast-4.15.yaml", data: []byte("name: x\n")}},
			unsafe("../channels/fast-4.15.yaml", `".."`)},
		"dot-dot inside": {[]entry{{name: "channels/../../etc/cron.d/x", data: []byte("* * * * * root sh")}},
			unsafe("channels/../../etc/cron.d/x", `".."`)},
		"absolute path": {[]entry{{name: "/etc/cron.d/x", data: []byte("* * * * * root sh")}},
			unsafe("/etc/cron.d/x", "absolute")},
		"kept file twice": {[]entry{{name: "channels/stable-4.15.yaml", data: []byte("name: stable-4.15\nversions: [4.15.99]\n")}},
			func(t *testing.T, err error) {
				if m, ok := errors.AsType[*MalformedError](err); !ok || m.File != "channels/stable-4.15.yaml" {
					t.Fatalf("error %v: want a MalformedError for the channel", err)
				}
			}},
	} {
		t.Run(name, func(t *testing.T) {
			archive := gzipOf(t, tarOf(t, append(append([]entry{}, valid...), c.extra...)))
			_, err := Fetch(ctx, writeTemp(t, "hostile.tar.gz", archive), FetchOptions{})
			c.check(t, err)
			t.Log(err)
		})
	}
}

func TestFetchRefusesTooManyEntries(t *testing.T) {
	entries := dataEntries(smallData(), "")
	for i := len(entries); i <= MaxEntries; i++ {
		entries = append(entries, entry{name: fmt.Sprintf("padding/%06d", i)})
	}
	archive := gzipOf(t, tarOf(t, entries))
	_, err := Fetch(context.Background(), writeTemp(t, "many.tar.gz", archive), FetchOptions{})
	if b, ok := errors.AsType[*BoundError](err); !ok || b.Bound != "MaxEntries" || b.Limit != MaxEntries {
		t.Fatalf("error %v: want a BoundError at MaxEntries", err)
	}
	t.Log(err)

	// One entry fewer is fine.
	archive = gzipOf(t, tarOf(t, entries[:MaxEntries]))
	if _, err := Fetch(context.Background(), writeTemp(t, "enough.tar.gz", archive), FetchOptions{}); err != nil {
		t.Fatalf("%d entries: %v", MaxEntries, err)
	}
}

// A gzip bomb: valid data, then a file of zeros that unpacks past
// MaxUncompressedSize from a tarball of a few hundred KB. The zeros are
// gzip members of 1 MiB each, repeated, so the test does not compress
// 128 MiB itself.
func TestFetchRefusesGzipBomb(t *testing.T) {
	const mib = 1 << 20
	bombSize := int64(MaxUncompressedSize + mib)
	var head bytes.Buffer
	tw := tar.NewWriter(&head)
	for _, e := range dataEntries(smallData(), "") {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	// The header alone: the content follows as gzip members of zeros,
	// then the end of the archive, two blocks of zeros.
	if err := tw.WriteHeader(&tar.Header{Name: "LICENSE", Typeflag: tar.TypeReg, Mode: 0o644, Size: bombSize}); err != nil {
		t.Fatal(err)
	}
	bomb := gzipOf(t, head.Bytes())
	zeros := gzipOf(t, make([]byte, mib))
	for range bombSize / mib {
		bomb = append(bomb, zeros...)
	}
	bomb = append(bomb, gzipOf(t, make([]byte, 1024))...)
	if len(bomb) > MaxCompressedSize/32 {
		t.Fatalf("the bomb is %d bytes compressed: not a bomb", len(bomb))
	}

	_, err := Fetch(context.Background(), writeTemp(t, "bomb.tar.gz", bomb), FetchOptions{})
	if b, ok := errors.AsType[*BoundError](err); !ok || b.Bound != "MaxUncompressedSize" || b.Limit != MaxUncompressedSize {
		t.Fatalf("error %v: want a BoundError at MaxUncompressedSize", err)
	}
	t.Log(err)
}

func TestFetchMalformed(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]struct {
		change func(map[string][]byte)
		file   string
	}{
		"channel not YAML":      {func(f map[string][]byte) { f["channels/stable-4.15.yaml"] = []byte("name: [unclosed\n") }, "channels/stable-4.15.yaml"},
		"channel without name":  {func(f map[string][]byte) { f["channels/stable-4.15.yaml"] = []byte("versions: [4.15.0]\n") }, "channels/stable-4.15.yaml"},
		"channel bad version":   {func(f map[string][]byte) { f["channels/stable-4.15.yaml"] = []byte("name: s\nversions: [4.15]\n") }, "channels/stable-4.15.yaml"},
		"channel versions map":  {func(f map[string][]byte) { f["channels/stable-4.15.yaml"] = []byte("name: s\nversions: {a: b}\n") }, "channels/stable-4.15.yaml"},
		"two documents":         {func(f map[string][]byte) { f["channels/stable-4.15.yaml"] = []byte("name: s\n---\nname: t\n") }, "channels/stable-4.15.yaml"},
		"channel defined twice": {func(f map[string][]byte) { f["channels/z.yaml"] = f["channels/stable-4.15.yaml"] }, "channels/z.yaml"},
		"no channels":           {func(f map[string][]byte) { delete(f, "channels/stable-4.15.yaml") }, "channels/"},
		"no version":            {func(f map[string][]byte) { delete(f, "version") }, "version"},
		"bad version":           {func(f map[string][]byte) { f["version"] = []byte("one\n") }, "version"},
		"no raw metadata":       {func(f map[string][]byte) { delete(f, "raw/metadata.json") }, "raw/metadata.json"},
		"raw metadata not JSON": {func(f map[string][]byte) { f["raw/metadata.json"] = []byte("{") }, "raw/metadata.json"},
	} {
		t.Run(name, func(t *testing.T) {
			files := smallData()
			c.change(files)
			for what, src := range map[string]string{
				"tarball":   writeTemp(t, "data.tar.gz", gzipOf(t, tarOf(t, dataEntries(files, "")))),
				"directory": fileURL(writeTree(t, files)),
			} {
				_, err := Fetch(ctx, src, FetchOptions{})
				m, ok := errors.AsType[*MalformedError](err)
				if !ok || m.File != c.file || !bytes.Contains([]byte(err.Error()), []byte(c.file)) {
					t.Fatalf("%s: error %v: want a MalformedError naming %s", what, err, c.file)
				}
				t.Logf("%s: %v", what, err)
			}
		})
	}

	_, err := Fetch(ctx, writeTemp(t, "plain.tar", tarOf(t, dataEntries(smallData(), ""))), FetchOptions{})
	if m, ok := errors.AsType[*MalformedError](err); !ok || !bytes.Contains([]byte(m.Error()), []byte("not a gzip tarball")) {
		t.Errorf("an uncompressed tar: %v", err)
	}
	truncated := gzipOf(t, tarOf(t, dataEntries(smallData(), "")))
	_, err = Fetch(ctx, writeTemp(t, "cut.tar.gz", truncated[:len(truncated)-10]), FetchOptions{})
	if _, ok := errors.AsType[*MalformedError](err); !ok {
		t.Errorf("a truncated tarball: %v", err)
	}
}

func TestFetchDirectoryRefusesLinks(t *testing.T) {
	dir := writeTree(t, smallData())
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "channels", "fast-4.15.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err := Fetch(context.Background(), fileURL(dir), FetchOptions{})
	if u, ok := errors.AsType[*UnsafeEntryError](err); !ok || u.Name != "channels/fast-4.15.yaml" {
		t.Fatalf("error %v: want an UnsafeEntryError for the link", err)
	}
	t.Log(err)

	dir = writeTree(t, smallData())
	if err := os.Remove(filepath.Join(dir, "version")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../etc/os-release", filepath.Join(dir, "version")); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(context.Background(), fileURL(dir), FetchOptions{}); !isUnsafe(err, "version") {
		t.Fatalf("error %v: want an UnsafeEntryError for version", err)
	}
}

func isUnsafe(err error, name string) bool {
	u, ok := errors.AsType[*UnsafeEntryError](err)
	return ok && u.Name == name
}

func TestFetchSourceErrors(t *testing.T) {
	for _, src := range []string{"ftp://example.com/x", "file://relative.tar.gz", "https:///graph-data", "file://"} {
		if _, err := Fetch(context.Background(), src, FetchOptions{}); err == nil {
			t.Errorf("%s: no error", src)
		}
	}
	_, err := Fetch(context.Background(), fileURL(filepath.Join(t.TempDir(), "missing.tar.gz")), FetchOptions{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
