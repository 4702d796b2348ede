package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
)

// This file hands ferry bundles that were damaged or crafted by an attacker
// with the disk: each is refused by `ferry verify` and by `ferry apply`
// with exit code 3 and a message naming what is wrong, and apply refuses
// before it writes anything to the target registry. The bundle package's own
// tests try many more hostile tars against its reader; here they go through
// the binary, on bundles `ferry pack` made.

// Tar geometry, as in every POSIX tar.
const (
	tarBlock        = 512
	tarEndOfArchive = 2 * tarBlock
	// indexChecksumPrefix starts the PAX comment of the index entry, which
	// carries the index's sha256 (docs/design.md): a forger recomputes it.
	indexChecksumPrefix = "ferry-index sha256:"
)

// tarEntry is where one entry of a volume sits.
type tarEntry struct {
	name     string
	hdrStart int64 // first byte of its header (PAX records included)
	offset   int64 // first byte of its data
	size     int64
}

func padded(n int64) int64 { return (n + tarBlock - 1) / tarBlock * tarBlock }

// readTarEntries lists the entries of the tar at path.
func readTarEntries(t *testing.T, path string) []tarEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
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
			t.Fatalf("%s: %v", path, err)
		}
		off, _ := sr.Seek(0, io.SeekCurrent)
		list = append(list, tarEntry{name: hdr.Name, hdrStart: end, offset: off, size: hdr.Size})
		end = off + padded(hdr.Size)
	}
}

func findEntry(t *testing.T, path, name string) tarEntry {
	t.Helper()
	for _, e := range readTarEntries(t, path) {
		if e.name == name {
			return e
		}
	}
	t.Fatalf("%s: no entry %s", path, name)
	return tarEntry{}
}

// flipBit inverts one bit of the byte at off.
func flipBit(t *testing.T, path string, off int64) {
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
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// rawEntry is a tar entry, header and data, as raw bytes. The header may
// declare more data than given (a tar bomb); the data is padded only when
// it is complete.
func rawEntry(t *testing.T, hdr tar.Header, data []byte) []byte {
	t.Helper()
	if hdr.Mode == 0 {
		hdr.Mode = 0o644
	}
	if hdr.ModTime.IsZero() {
		hdr.ModTime = time.Unix(1700000000, 0)
	}
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(&hdr); err != nil {
		t.Fatalf("tar header %q: %v", hdr.Name, err)
	}
	buf.Write(data)
	if int64(len(data)) == hdr.Size {
		buf.Write(make([]byte, padded(hdr.Size)-hdr.Size))
	}
	return buf.Bytes()
}

// fileEntry is a regular file entry.
func fileEntry(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	return rawEntry(t, tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(data))}, data)
}

// spliceAt replaces the bytes of path from off to the end by tail.
func spliceAt(t *testing.T, path string, off int64, tail []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data[:off:off], tail...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// insertBeforeIndex puts raw entries into volume 0 just before the index,
// which stays the last entry: the files the index lists keep their offsets.
func insertBeforeIndex(t *testing.T, path string, raw ...[]byte) {
	t.Helper()
	e := findEntry(t, path, bundle.IndexName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tail := bytes.Join(raw, nil)
	tail = append(tail, data[e.hdrStart:]...)
	spliceAt(t, path, e.hdrStart, tail)
}

// appendEntries puts raw entries at the end of a volume, before its
// end-of-archive (when end is true, after which a new one follows).
func appendEntries(t *testing.T, path string, end bool, raw ...[]byte) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tail := bytes.Join(raw, nil)
	if end {
		tail = append(tail, make([]byte, tarEndOfArchive)...)
	}
	spliceAt(t, path, st.Size()-tarEndOfArchive, tail)
}

// forgeIndex rewrites the index of the bundle at path (volume 0) with edit
// applied and a matching checksum, as a forger with the disk would.
func forgeIndex(t *testing.T, path string, edit func(idx *bundle.Index)) {
	t.Helper()
	e := findEntry(t, path, bundle.IndexName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var idx bundle.Index
	if err := json.Unmarshal(data[e.offset:e.offset+e.size], &idx); err != nil {
		t.Fatal(err)
	}
	edit(&idx)
	js, err := json.MarshalIndent(&idx, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(js)
	entry := rawEntry(t, tar.Header{Name: bundle.IndexName, Typeflag: tar.TypeReg, Size: int64(len(js)), Format: tar.FormatPAX,
		PAXRecords: map[string]string{"comment": indexChecksumPrefix + hex.EncodeToString(sum[:])}}, js)
	spliceAt(t, path, e.hdrStart, append(entry, make([]byte, tarEndOfArchive)...))
}

// copyBundle copies every volume of the bundle at path into a new
// directory and returns the copy's volume 0.
func copyBundle(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	stem := strings.TrimSuffix(filepath.Base(path), ".tar")
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), stem) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(filepath.Dir(path), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, filepath.Base(path))
}

// tamperBed is a packed release, as one file and split into volumes.
type tamperBed struct {
	*faultBed
	single, split string
	idx, splitIdx *bundle.Index
	comp          testbed.ImageInfo // a component image
	config, layer digest.Digest     // its config and top layer
}

func newTamperBed(t *testing.T) *tamperBed {
	t.Helper()
	b := &tamperBed{faultBed: newFaultBed(t, smallRelease)}
	b.single = b.pack(t)
	b.split = b.pack(t, "--volume-size", "128KiB")
	b.idx, b.splitIdx = readIndexFile(t, b.single), readIndexFile(t, b.split)
	if len(b.splitIdx.Volumes) < 4 {
		t.Fatalf("the split bundle has %d volumes", len(b.splitIdx.Volumes))
	}
	var ok bool
	if b.comp, ok = b.rel.Image(b.rel.Components[0].Digest); !ok {
		t.Fatal("no component image")
	}
	var m struct {
		Config struct{ Digest digest.Digest }
		Layers []struct{ Digest digest.Digest }
	}
	if err := json.Unmarshal(b.comp.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	b.config, b.layer = m.Config.Digest, m.Layers[len(m.Layers)-1].Digest
	return b
}

func readIndexFile(t *testing.T, path string) *bundle.Index {
	t.Helper()
	r, err := bundle.Open(path, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Index()
}

func indexFile(t *testing.T, idx *bundle.Index, name string) bundle.File {
	t.Helper()
	for _, f := range idx.Files {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("the index lists no %s", name)
	return bundle.File{}
}

// volumePath is the path of volume n of the bundle at path.
func volumePath(path string, idx *bundle.Index, n int) string {
	return filepath.Join(filepath.Dir(path), idx.Volumes[n].Name)
}

// tamperCase damages a copy of a bundle; wants are what both verify and
// apply must say.
type tamperCase struct {
	name  string
	split bool // start from the bundle in volumes
	// tamper alters the copy whose volume 0 is at path and returns what
	// the refusal must say.
	tamper func(t *testing.T, path string) []string
}

// TestTamperedBundles: each damaged or hostile bundle is refused by verify
// and by apply, with exit code 3 and a precise message, and apply touches
// nothing: the target registry gets no request that writes (only the access
// check before the verification pass reads) and stays empty.
func TestTamperedBundles(t *testing.T) {
	t.Parallel()
	b := newTamperBed(t)
	blob := bundle.BlobName
	flipIn := func(name string) func(t *testing.T, path string) []string {
		return func(t *testing.T, path string) []string {
			f := indexFile(t, b.idx, name)
			flipBit(t, path, f.Offset+f.Size/2)
			return []string{fmt.Sprintf("volume 0 (bundle.tar) at offset %d: %s", f.Offset, name)}
		}
	}
	rel := b.idx.Releases[0]
	sigFile, cmFile := rel.Signatures[0].File, rel.ConfigMap
	cases := []tamperCase{
		{name: "bit flip in a layer", tamper: func(t *testing.T, path string) []string {
			return append(flipIn(blob(b.layer))(t, path), "content has digest sha256:")
		}},
		{name: "bit flip in a config", tamper: func(t *testing.T, path string) []string {
			return append(flipIn(blob(b.config))(t, path), "content has digest sha256:")
		}},
		{name: "bit flip in a manifest", tamper: func(t *testing.T, path string) []string {
			return append(flipIn(blob(b.comp.Digest))(t, path), "content has digest sha256:", "cannot check the manifest")
		}},
		{name: "bit flip in the release manifest", tamper: func(t *testing.T, path string) []string {
			return append(flipIn(blob(b.rel.Digest))(t, path), "content has digest sha256:")
		}},
		{name: "bit flip in the bundle index", tamper: func(t *testing.T, path string) []string {
			e := findEntry(t, path, bundle.IndexName)
			flipBit(t, path, e.offset+e.size/2)
			return []string{"index altered or damaged"}
		}},
		{name: "bit flip in the OCI layout index", tamper: func(t *testing.T, path string) []string {
			return append(flipIn(bundle.LayoutIndexName)(t, path), "the index says")
		}},
		{name: "bit flip in a signature", tamper: func(t *testing.T, path string) []string {
			return append(flipIn(sigFile)(t, path), "the index says", sigFile)
		}},
		{name: "bit flip in a signature ConfigMap", tamper: func(t *testing.T, path string) []string {
			return append(flipIn(cmFile)(t, path), "the index says")
		}},
		{name: "layer replaced, the index forged to agree", tamper: func(t *testing.T, path string) []string {
			f := indexFile(t, b.idx, blob(b.layer))
			flipBit(t, path, f.Offset+7)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data[f.Offset : f.Offset+f.Size])
			forgeIndex(t, path, func(idx *bundle.Index) {
				for i := range idx.Files {
					if idx.Files[i].Name == f.Name {
						idx.Files[i].SHA256 = hex.EncodeToString(sum[:])
					}
				}
			})
			return []string{fmt.Sprintf("%q: blob named for sha256:%s has sha256 %x", f.Name, b.layer.Encoded(), sum)}
		}},
		{name: "truncated in the middle", tamper: func(t *testing.T, path string) []string {
			f := indexFile(t, b.idx, blob(b.layer))
			if err := os.Truncate(path, f.Offset+f.Size/2); err != nil {
				t.Fatal(err)
			}
			return []string{"volume 0: the tar is damaged or truncated after \"" + f.Name + "\""}
		}},
		{name: "truncated: the end of archive missing", tamper: func(t *testing.T, path string) []string {
			st, _ := os.Stat(path)
			if err := os.Truncate(path, st.Size()-tarEndOfArchive); err != nil {
				t.Fatal(err)
			}
			return []string{"ends without a tar end-of-archive: truncated"}
		}},
		{name: "truncated data volume", split: true, tamper: func(t *testing.T, path string) []string {
			vol := volumePath(path, b.splitIdx, 2)
			if err := os.Truncate(vol, b.splitIdx.Volumes[2].Size/2); err != nil {
				t.Fatal(err)
			}
			return []string{fmt.Sprintf("volume 2 (bundle.002.tar): the volume is %d bytes, the index says %d", b.splitIdx.Volumes[2].Size/2, b.splitIdx.Volumes[2].Size)}
		}},
		{name: "missing volume", split: true, tamper: func(t *testing.T, path string) []string {
			if err := os.Remove(volumePath(path, b.splitIdx, 2)); err != nil {
				t.Fatal(err)
			}
			return []string{"volume 2 (bundle.002.tar) is missing"}
		}},
		{name: "duplicated volume", split: true, tamper: func(t *testing.T, path string) []string {
			data, err := os.ReadFile(volumePath(path, b.splitIdx, 1))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(volumePath(path, b.splitIdx, 2), data, 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"bundle.002.tar holds volume 1, expected volume 2"}
		}},
		{name: "renamed volume", split: true, tamper: func(t *testing.T, path string) []string {
			if err := os.Rename(volumePath(path, b.splitIdx, 3), filepath.Join(filepath.Dir(path), "bundle.3.tar")); err != nil {
				t.Fatal(err)
			}
			return []string{"volume 3 (bundle.003.tar) is missing"}
		}},
		{name: "swapped volumes", split: true, tamper: func(t *testing.T, path string) []string {
			a, c := volumePath(path, b.splitIdx, 1), volumePath(path, b.splitIdx, 2)
			if err := os.Rename(a, a+".tmp"); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(c, a); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(a+".tmp", c); err != nil {
				t.Fatal(err)
			}
			return []string{"holds volume 2, expected volume 1 (bundle.001.tar): renamed?"}
		}},
		{name: "unexpected extra file", tamper: func(t *testing.T, path string) []string {
			insertBeforeIndex(t, path, fileEntry(t, "mirror/config/extra.yaml", []byte("kind: Namespace\n")))
			return []string{"mirror/config/extra.yaml: not in the index"}
		}},
		{name: "extra file after the index", tamper: func(t *testing.T, path string) []string {
			appendEntries(t, path, true, fileEntry(t, "mirror/config/extra.yaml", []byte("kind: Namespace\n")))
			return []string{`the last entry is "mirror/config/extra.yaml", not ferry-index.json`}
		}},
		{name: "extra file in a data volume", split: true, tamper: func(t *testing.T, path string) []string {
			appendEntries(t, volumePath(path, b.splitIdx, 1), true, fileEntry(t, "mirror/extra", []byte("extra")))
			return []string{"volume 1 (bundle.001.tar)", "mirror/extra: not in the index"}
		}},
		{name: "entry with ..", tamper: func(t *testing.T, path string) []string {
			insertBeforeIndex(t, path, fileEntry(t, "../../etc/cron.d/ferry", []byte("* * * * * root sh\n")),
				fileEntry(t, "mirror/oci/../../../evil", []byte("x")))
			return []string{"../../etc/cron.d/ferry: unsafe name: a .. element leads out of the bundle", "mirror/oci/../../../evil: unsafe name"}
		}},
		{name: "entry with an absolute path", tamper: func(t *testing.T, path string) []string {
			insertBeforeIndex(t, path, fileEntry(t, "/etc/cron.d/ferry", []byte("* * * * * root sh\n")))
			return []string{"/etc/cron.d/ferry: unsafe name: absolute name"}
		}},
		{name: "symlinks that escape", tamper: func(t *testing.T, path string) []string {
			insertBeforeIndex(t, path,
				rawEntry(t, tar.Header{Name: "mirror/oci/blobs/sha256/passwd", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, nil),
				rawEntry(t, tar.Header{Name: "mirror/up", Typeflag: tar.TypeSymlink, Linkname: "../../../../root/.ssh"}, nil))
			return []string{"mirror/oci/blobs/sha256/passwd: not a regular file: a symbolic link to /etc/passwd",
				"mirror/up: not a regular file: a symbolic link to ../../../../root/.ssh"}
		}},
		{name: "hard links that escape", split: true, tamper: func(t *testing.T, path string) []string {
			appendEntries(t, volumePath(path, b.splitIdx, 1), true,
				rawEntry(t, tar.Header{Name: "mirror/shadow", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}, nil),
				rawEntry(t, tar.Header{Name: "mirror/key", Typeflag: tar.TypeLink, Linkname: "../../root/.ssh/id_rsa"}, nil))
			return []string{"mirror/shadow: not a regular file: a hard link to /etc/shadow",
				"mirror/key: not a regular file: a hard link to ../../root/.ssh/id_rsa"}
		}},
		{name: "two entries of the same name, different content", tamper: func(t *testing.T, path string) []string {
			f := indexFile(t, b.idx, sigFile)
			insertBeforeIndex(t, path, fileEntry(t, sigFile, []byte("another signature")))
			return []string{fmt.Sprintf("%s: the same name again (first at offset %d)", sigFile, f.Offset)}
		}},
		{name: "header declaring a huge size", tamper: func(t *testing.T, path string) []string {
			insertBeforeIndex(t, path, rawEntry(t, tar.Header{Name: "mirror/bomb", Typeflag: tar.TypeReg, Size: 1 << 50}, []byte("tiny")))
			return []string{`volume 0: the tar is damaged or truncated after "mirror/bomb" (data at offset`, "1125899906842624 bytes"}
		}},
		{name: "header declaring a huge size in a data volume", split: true, tamper: func(t *testing.T, path string) []string {
			appendEntries(t, volumePath(path, b.splitIdx, 1), false,
				rawEntry(t, tar.Header{Name: "mirror/bomb", Typeflag: tar.TypeReg, Size: 1 << 50}, []byte("tiny")))
			return []string{"mirror/bomb: not in the index", "the tar is damaged or truncated after this entry"}
		}},
		{name: "the index lists a blob twice with different sizes", tamper: func(t *testing.T, path string) []string {
			f := indexFile(t, b.idx, blob(b.layer))
			forgeIndex(t, path, func(idx *bundle.Index) {
				twice := f
				twice.Size, twice.Offset = f.Size+1, 1<<30
				idx.Files = append(idx.Files, twice)
			})
			return []string{f.Name, "listed twice"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := b.single
			if tc.split {
				src = b.split
			}
			path := copyBundle(t, src)
			wants := tc.tamper(t, path)
			res := ferryRun(t, "verify", path, "--keyring", b.keyFile, "--quiet")
			wantExit(t, "verify", res, codeVerification, wants...)
			if res.code == codeVerification && !strings.Contains(res.stderr, "did not verify") && !strings.Contains(res.stderr, "opening bundle") {
				t.Errorf("verify's error does not say the bundle did not verify:\n%s", res.stderr)
			}

			target := testbed.NewMemoryRegistry(t)
			p := testbed.NewFaultProxy(t, target.URL)
			res = ferryRun(t, applyArgs(t, path, b.keyFile, p.Host)...)
			wantExit(t, "apply", res, codeVerification, wants...)
			if n := p.Stats().Writes(); n != 0 {
				t.Errorf("apply sent %d requests that write to the target registry before refusing", n)
			}
			assertCatalogEmpty(t, target)
		})
	}
}

// assertCatalogEmpty fails if the registry holds any repository.
func assertCatalogEmpty(t *testing.T, reg *testbed.Registry) {
	t.Helper()
	repos, err := reg.Catalog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 0 {
		t.Errorf("the target registry was changed: it holds %v", repos)
	}
}
