package bundle

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// fileOfSize finds the file of a given size in idx.
func fileOfSize(t *testing.T, idx *Index, size int64) File {
	t.Helper()
	for _, f := range idx.Files {
		if f.Size == size {
			return f
		}
	}
	t.Fatalf("no file of %d bytes", size)
	return File{}
}

func fileNamed(t *testing.T, idx *Index, name string) File {
	t.Helper()
	for _, f := range idx.Files {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no file %s", name)
	return File{}
}

// TestTamperSingleFile alters a one-file bundle in ways Verify must report.
func TestTamperSingleFile(t *testing.T) {
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, path string, idx *Index) []string
	}{
		{"flipped byte in a blob", func(t *testing.T, path string, idx *Index) []string {
			f := fileOfSize(t, idx, 12000)
			tartamper.Flip(t, path, f.Offset+1234, 0xff)
			return []string{f.Name, fmt.Sprintf("offset %d", f.Offset), "content has digest sha256:"}
		}},
		{"flipped byte in a manifest", func(t *testing.T, path string, idx *Index) []string {
			f := fileNamed(t, idx, BlobName(idx.Images[2].Digest))
			tartamper.Flip(t, path, f.Offset+f.Size/2, 0xff)
			return []string{f.Name + ": content has digest", "cannot check the manifest"}
		}},
		{"flipped byte in the layout index", func(t *testing.T, path string, idx *Index) []string {
			f := fileNamed(t, idx, LayoutIndexName)
			tartamper.Flip(t, path, f.Offset+3, 0xff)
			return []string{LayoutIndexName + ": sha256 ", "the index says " + f.SHA256}
		}},
		{"flipped byte in padding", func(t *testing.T, path string, idx *Index) []string {
			f := fileOfSize(t, idx, 12000)
			tartamper.Flip(t, path, f.Offset+f.Size+5, 0xff)
			return []string{fmt.Sprintf("offset %d: %s: non-zero bytes in the padding", f.Offset+f.Size+5, f.Name)}
		}},
		{"flipped byte in the padding of the index's PAX header", func(t *testing.T, path string, idx *Index) []string {
			e := tartamper.Find(t, path, IndexName)
			tartamper.Flip(t, path, e.Offset-blockSize-10, 0xff)
			return []string{fmt.Sprintf("offset %d: %s: non-zero bytes in the padding of its extended header", e.Offset-blockSize-10, IndexName)}
		}},
		{"index lists a file whose bytes are missing", func(t *testing.T, path string, idx *Index) []string {
			rewriteIndex(t, path, func(idx *Index) {
				idx.Files = append(idx.Files, File{Name: "mirror/config/extra.yaml", Size: 10,
					SHA256: digest.FromString("x").Encoded(), Volume: 0, Offset: 1 << 30})
			})
			return []string{"mirror/config/extra.yaml: listed in the index but not in the volume"}
		}},
		{"index moves a file", func(t *testing.T, path string, idx *Index) []string {
			f := fileOfSize(t, idx, 700)
			rewriteIndex(t, path, func(idx *Index) {
				for i := range idx.Files {
					if idx.Files[i].Name == f.Name {
						idx.Files[i].Offset = 1 << 30
					}
				}
			})
			return []string{f.Name, "the index says 700 bytes at offset 1073741824"}
		}},
		{"volume 0 without end of archive", func(t *testing.T, path string, idx *Index) []string {
			st, _ := os.Stat(path)
			if err := os.Truncate(path, st.Size()-endOfArchive); err != nil {
				t.Fatal(err)
			}
			return []string{"ends without a tar end-of-archive: truncated"}
		}},
		{"trailing garbage", func(t *testing.T, path string, idx *Index) []string {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			if _, err := f.Write(append(make([]byte, 700), "garbage"...)); err != nil {
				t.Fatal(err)
			}
			return []string{fmt.Sprintf("offset %d: unexpected data after the end of archive", st.Size()+700)}
		}},
		{"trailing zeros are fine, garbage is not", func(t *testing.T, path string, idx *Index) []string {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(make([]byte, 9000)); err != nil {
				t.Fatal(err)
			}
			m := fileNamed(t, idx, LayoutFileName)
			tartamper.Flip(t, path, m.Offset, 0xff)
			return []string{LayoutFileName + ": sha256", LayoutFileName + ": parsing"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bundle.tar")
			idx := writeFixture(t, path, WriteOptions{}, smallFixture())
			wants := c.tamper(t, path, idx)
			mustFault(t, path, ReadOptions{}, wants...)
		})
	}
}

// TestTamperOpen alters a one-file bundle in ways Open must refuse.
func TestTamperOpen(t *testing.T) {
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, path string, idx *Index)
		want   string
	}{
		{"flipped byte in the index", func(t *testing.T, path string, idx *Index) {
			e := tartamper.Find(t, path, IndexName)
			tartamper.Flip(t, path, e.Offset+e.Size/2, 0xff)
		}, "index altered or damaged"},
		{"flipped byte in the index checksum", func(t *testing.T, path string, idx *Index) {
			e := tartamper.Find(t, path, IndexName)
			// Inside the sha256 of the PAX comment record.
			tartamper.Flip(t, path, e.Offset-2*blockSize+40, 0xff)
		}, "index altered or damaged"},
		{"index cut short", func(t *testing.T, path string, idx *Index) {
			e := tartamper.Find(t, path, IndexName)
			if err := os.Truncate(path, e.Offset+e.Size-10); err != nil {
				t.Fatal(err)
			}
		}, "unexpected EOF"},
		{"index lost", func(t *testing.T, path string, idx *Index) {
			e := tartamper.Find(t, path, IndexName)
			if err := os.Truncate(path, e.HeaderStart); err != nil {
				t.Fatal(err)
			}
		}, `the last entry is "mirror/oci/blobs/sha256/`},
		{"index lists a blob twice", func(t *testing.T, path string, idx *Index) {
			rewriteIndex(t, path, func(idx *Index) {
				f := idx.Files[3]
				f.Size++
				f.Offset = 1 << 30
				idx.Files = append(idx.Files, f)
			})
		}, "listed twice"},
		{"index lists overlapping files", func(t *testing.T, path string, idx *Index) {
			rewriteIndex(t, path, func(idx *Index) { idx.Files[3].Size += 2048 })
		}, "overlap in volume 0"},
		{"index of another format version", func(t *testing.T, path string, idx *Index) {
			rewriteIndex(t, path, func(idx *Index) { idx.FormatVersion = 2 })
		}, "unsupported formatVersion 2"},
		{"entry appended after the index", func(t *testing.T, path string, idx *Index) {
			tartamper.Append(t, path, true, tartamper.Raw(t, tar.Header{Name: "mirror/evil", Size: 4}, []byte("evil")))
		}, `the last entry is "mirror/evil", not ferry-index.json`},
		{"not a bundle", func(t *testing.T, path string, idx *Index) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tw := tar.NewWriter(f)
			_ = tw.WriteHeader(&tar.Header{Name: "README", Size: 2, Mode: 0o644})
			_, _ = tw.Write([]byte("hi"))
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
		}, "not a ferry bundle"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bundle.tar")
			idx := writeFixture(t, path, WriteOptions{}, smallFixture())
			c.tamper(t, path, idx)
			mustOpenFail(t, path, ReadOptions{}, c.want)
		})
	}
}

// volumeFixture writes a bundle of at least three data volumes in dir.
func volumeFixture(t *testing.T, dir string) *Index {
	t.Helper()
	idx := writeFixture(t, filepath.Join(dir, "bundle.tar"), WriteOptions{VolumeSize: 128 << 10},
		newFixture(9, [4]int{100 << 10, 90 << 10, 60 << 10, 120 << 10}))
	if len(idx.Volumes) < 4 {
		t.Fatalf("only %d volumes", len(idx.Volumes))
	}
	return idx
}

// TestTamperVolumes alters data volumes in ways Verify must report.
func TestTamperVolumes(t *testing.T) {
	symlink := tar.Header{Name: "mirror/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, vol1 string, idx *Index) []string
	}{
		{"truncated volume", func(t *testing.T, vol1 string, idx *Index) []string {
			if err := os.Truncate(vol1, idx.Volumes[1].Size-5000); err != nil {
				t.Fatal(err)
			}
			return []string{fmt.Sprintf("volume 1 (bundle.001.tar): the volume is %d bytes, the index says %d",
				idx.Volumes[1].Size-5000, idx.Volumes[1].Size), "truncated"}
		}},
		{"extra entry appended", func(t *testing.T, vol1 string, idx *Index) []string {
			tartamper.Append(t, vol1, true, tartamper.Raw(t, tar.Header{Name: "mirror/extra", Size: 5}, []byte("extra")))
			return []string{"mirror/extra: not in the index"}
		}},
		{"symlink", func(t *testing.T, vol1 string, idx *Index) []string {
			tartamper.Append(t, vol1, true, tartamper.Raw(t, symlink, nil))
			return []string{"mirror/link: not a regular file: a symbolic link to /etc/passwd"}
		}},
		{"hard link and directory", func(t *testing.T, vol1 string, idx *Index) []string {
			tartamper.Append(t, vol1, true,
				tartamper.Raw(t, tar.Header{Name: "mirror/hard", Typeflag: tar.TypeLink, Linkname: "mirror/oci/oci-layout"}, nil),
				tartamper.Raw(t, tar.Header{Name: "mirror/dir/", Typeflag: tar.TypeDir, Mode: 0o755}, nil))
			return []string{"mirror/hard: not a regular file: a hard link to mirror/oci/oci-layout", "mirror/dir/: not a regular file: a directory"}
		}},
		{"dot-dot and absolute names", func(t *testing.T, vol1 string, idx *Index) []string {
			tartamper.Append(t, vol1, true,
				tartamper.Raw(t, tar.Header{Name: "../../evil", Size: 1}, []byte("x")),
				tartamper.Raw(t, tar.Header{Name: "/etc/cron.d/evil", Size: 1}, []byte("x")),
				tartamper.Raw(t, tar.Header{Name: "mirror/oci/../../../evil", Size: 1}, []byte("x")),
				tartamper.Raw(t, tar.Header{Name: "mirror/\x1b[2Jevil", Size: 1}, []byte("x")))
			return []string{`../../evil: unsafe name: a .. element leads out of the bundle`, `/etc/cron.d/evil: unsafe name: absolute name`,
				`mirror/oci/../../../evil: unsafe name`, `"mirror/\x1b[2Jevil": unsafe name: character '\x1b' not allowed`}
		}},
		{"the same name twice", func(t *testing.T, vol1 string, idx *Index) []string {
			var f File
			for _, g := range idx.Files {
				if g.Volume == 1 && g.Name != VolumeMarkerName {
					f = g
				}
			}
			data, err := os.ReadFile(vol1)
			if err != nil {
				t.Fatal(err)
			}
			tartamper.Append(t, vol1, true, tartamper.Raw(t, tar.Header{Name: f.Name, Size: f.Size}, data[f.Offset:f.Offset+f.Size]))
			return []string{f.Name + ": the same name again (first at offset " + fmt.Sprint(f.Offset) + ")"}
		}},
		{"a header declaring a huge size", func(t *testing.T, vol1 string, idx *Index) []string {
			tartamper.Append(t, vol1, false, tartamper.Raw(t, tar.Header{Name: "mirror/huge", Size: 1 << 50}, []byte("tiny")))
			return []string{"mirror/huge: not in the index", "the tar is damaged or truncated after this entry"}
		}},
		{"a listed name with a huge size", func(t *testing.T, vol1 string, idx *Index) []string {
			f := fileNamed(t, idx, VolumeMarkerName)
			tartamper.Append(t, vol1, false, tartamper.Raw(t, tar.Header{Name: VolumeMarkerName, Size: 1 << 50}, []byte("tiny")))
			return []string{"ferry-volume.json: the same name again (first at offset " + fmt.Sprint(f.Offset)}
		}},
		{"a sparse file", func(t *testing.T, vol1 string, idx *Index) []string {
			tartamper.Append(t, vol1, true, tartamper.PAXEntry(t, map[string]string{"GNU.sparse.major": "0", "GNU.sparse.minor": "1",
				"GNU.sparse.numblocks": "1", "GNU.sparse.map": "0,10", "GNU.sparse.size": "100000000"}, "mirror/sparse", []byte("0123456789")))
			return []string{"mirror/sparse: a sparse file; the rest of the volume cannot be checked"}
		}},
		{"a PAX global header", func(t *testing.T, vol1 string, idx *Index) []string {
			tartamper.Append(t, vol1, true, tartamper.USTARBlock(t, "pax_global_header", 0, tar.TypeXGlobalHeader))
			return []string{"pax_global_header: not a regular file: type 'g'"}
		}},
		{"a blob in the wrong volume", func(t *testing.T, vol1 string, idx *Index) []string {
			var f File
			for _, g := range idx.Files {
				if g.Volume == 2 && g.Name != VolumeMarkerName {
					f = g
				}
			}
			tartamper.Append(t, vol1, true, tartamper.Raw(t, tar.Header{Name: f.Name, Size: 1}, []byte("x")))
			return []string{f.Name + ": found here, but the index puts it in volume 2 (bundle.002.tar)"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			idx := volumeFixture(t, dir)
			wants := c.tamper(t, filepath.Join(dir, "bundle.001.tar"), idx)
			mustFault(t, filepath.Join(dir, "bundle.tar"), ReadOptions{}, wants...)
		})
	}
}

// TestVolumeMixups checks Open's errors for missing, duplicated, renamed
// and foreign volumes.
func TestVolumeMixups(t *testing.T) {
	dir := t.TempDir()
	volumeFixture(t, dir)
	path := filepath.Join(dir, "bundle.tar")
	vol := func(n int) string { return filepath.Join(dir, volumeName("bundle.tar", n)) }
	foreign := t.TempDir()
	volumeFixture(t, foreign)
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, work string) ReadOptions
		wants []string
	}{
		{"missing", func(t *testing.T, work string) ReadOptions {
			os.Remove(filepath.Join(work, "bundle.002.tar"))
			return ReadOptions{}
		}, []string{"volume 2 (bundle.002.tar) is missing"}},
		{"duplicated", func(t *testing.T, work string) ReadOptions {
			copyFile(t, filepath.Join(work, "bundle.001.tar"), filepath.Join(work, "bundle.002.tar"))
			return ReadOptions{}
		}, []string{"bundle.002.tar holds volume 1, expected volume 2"}},
		{"swapped names", func(t *testing.T, work string) ReadOptions {
			a, b := filepath.Join(work, "bundle.001.tar"), filepath.Join(work, "bundle.002.tar")
			tmp := a + ".tmp"
			_ = os.Rename(a, tmp)
			_ = os.Rename(b, a)
			_ = os.Rename(tmp, b)
			return ReadOptions{}
		}, []string{"bundle.001.tar holds volume 2, expected volume 1 (bundle.001.tar): renamed?", "bundle.002.tar holds volume 1"}},
		{"renamed", func(t *testing.T, work string) ReadOptions {
			_ = os.Rename(filepath.Join(work, "bundle.003.tar"), filepath.Join(work, "bundle.3.tar"))
			return ReadOptions{}
		}, []string{"volume 3 (bundle.003.tar) is missing"}},
		{"from another bundle", func(t *testing.T, work string) ReadOptions {
			copyFile(t, filepath.Join(foreign, "bundle.001.tar"), filepath.Join(work, "bundle.001.tar"))
			return ReadOptions{}
		}, []string{"bundle.001.tar belongs to bundle "}},
		{"given twice", func(t *testing.T, work string) ReadOptions {
			cp := filepath.Join(t.TempDir(), "copy.tar")
			copyFile(t, filepath.Join(work, "bundle.001.tar"), cp)
			return ReadOptions{Volumes: []string{filepath.Join(work, "bundle.001.tar"), cp}}
		}, []string{"volume 1 given twice"}},
		{"foreign given", func(t *testing.T, work string) ReadOptions {
			return ReadOptions{Volumes: []string{filepath.Join(foreign, "bundle.002.tar")}}
		}, []string{"belongs to bundle"}},
		{"given but missing", func(t *testing.T, work string) ReadOptions {
			return ReadOptions{Volumes: []string{filepath.Join(work, "nope.tar")}}
		}, []string{"nope.tar: no such file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			for _, p := range append([]string{path}, vol(1), vol(2), vol(3)) {
				copyFile(t, p, filepath.Join(work, filepath.Base(p)))
			}
			for n := 4; ; n++ {
				if _, err := os.Stat(vol(n)); err != nil {
					break
				}
				copyFile(t, vol(n), filepath.Join(work, filepath.Base(vol(n))))
			}
			opts := c.setup(t, work)
			err := mustOpenFail(t, filepath.Join(work, "bundle.tar"), opts, c.wants...)
			if c.name == "missing" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a missing volume does not wrap fs.ErrNotExist: %v", err)
			}
		})
	}
}

// TestContentChecks writes bundles whose manifests reference what is not
// there.
func TestContentChecks(t *testing.T) {
	t.Run("missing layer", func(t *testing.T) {
		fx := smallFixture()
		missing := fx.idx.Images[2].Blobs[1]
		delete(fx.large, BlobName(missing))
		path := filepath.Join(t.TempDir(), "bundle.tar")
		writeFixture(t, path, WriteOptions{}, fx)
		mustFault(t, path, ReadOptions{}, "references blob "+string(missing)+", which is neither in the bundle nor a prerequisite")
	})
	t.Run("missing layer is a prerequisite", func(t *testing.T) {
		fx := smallFixture()
		missing := fx.idx.Images[2].Blobs[1]
		fx.idx.Prerequisites = []Prerequisite{{Digest: missing, MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
			Size: int64(len(fx.large[BlobName(missing)]))}}
		delete(fx.large, BlobName(missing))
		path := filepath.Join(t.TempDir(), "bundle.tar")
		writeFixture(t, path, WriteOptions{}, fx)
		rep, err := openVerify(t, path, ReadOptions{})
		if err != nil || !rep.OK() {
			t.Fatalf("verify: %v %v", err, rep.Err())
		}
	})
	t.Run("update path names a release not carried", func(t *testing.T) {
		fx := smallFixture()
		fx.idx.UpdatePath = []string{fx.idx.Releases[0].Version, "9.9.9"}
		path := filepath.Join(t.TempDir(), "bundle.tar")
		writeFixture(t, path, WriteOptions{}, fx)
		mustFault(t, path, ReadOptions{}, "updatePath[1] 9.9.9 is not a release of the bundle")
	})
	t.Run("missing child", func(t *testing.T) {
		fx := smallFixture()
		child := fx.idx.Images[1].Digest
		delete(fx.small, BlobName(child))
		path := filepath.Join(t.TempDir(), "bundle.tar")
		writeFixture(t, path, WriteOptions{}, fx)
		mustFault(t, path, ReadOptions{}, "references child manifest "+string(child),
			"child manifest "+string(child)+" is not in the bundle", BlobName(child)+": the manifest of image")
	})
	t.Run("missing signature and layout", func(t *testing.T) {
		fx := smallFixture()
		sig := fx.idx.Releases[0].Signatures[0].File
		delete(fx.small, sig)
		delete(fx.small, LayoutIndexName)
		fx.idx.Releases[0].Signatures = append(fx.idx.Releases[0].Signatures, ReleaseSignature{File: "mirror/signatures/other"})
		path := filepath.Join(t.TempDir(), "bundle.tar")
		writeFixture(t, path, WriteOptions{}, fx)
		mustFault(t, path, ReadOptions{}, sig+": signature of release 4.15.0 (x86_64) is not in the bundle",
			"signature 2 is mirror/signatures/other, expected", LayoutIndexName+": missing")
	})
	t.Run("manifest of the wrong media type", func(t *testing.T) {
		fx := smallFixture()
		fx.idx.Images[2].MediaType = MediaTypeDockerManifestList
		path := filepath.Join(t.TempDir(), "bundle.tar")
		writeFixture(t, path, WriteOptions{}, fx)
		mustFault(t, path, ReadOptions{}, "declares media type")
	})
}

func TestVerifyCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.tar")
	writeFixture(t, path, WriteOptions{}, smallFixture())
	r, err := Open(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Verify(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("verify with a cancelled context: %v", err)
	}
}

func TestFaultCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.tar")
	writeFixture(t, path, WriteOptions{}, smallFixture())
	var entries [][]byte
	for i := range maxFaults + 50 {
		entries = append(entries, tartamper.Raw(t, tar.Header{Name: fmt.Sprintf("mirror/x%d", i)}, nil))
	}
	// Entries after the index make Open refuse, so put them before it: the
	// index stays last and Verify meets them in its volume 0 scan.
	tartamper.InsertBefore(t, path, IndexName, entries...)
	rep := mustFault(t, path, ReadOptions{}, "mirror/x0: not in the index")
	if len(rep.Faults) != maxFaults || rep.Omitted < 50 || !strings.Contains(rep.Err().Error(), "more") {
		t.Errorf("%d faults, %d omitted", len(rep.Faults), rep.Omitted)
	}
}

// TestSideHashes: entries of sideHashMin bytes or more are hashed beside
// the scan; a flipped byte in two of them is reported for each, at its
// offset, in volume order among the scan's own faults (a byte flipped in
// the padding between them), and only they go uncounted.
func TestSideHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.tar")
	idx := writeFixture(t, path, WriteOptions{}, newFixture(3, [4]int{2 << 20, 3 << 20, 3<<20 + 1000, 1}))
	clean, err := openVerify(t, path, ReadOptions{})
	if err != nil || !clean.OK() {
		t.Fatalf("an untouched bundle: %v, %v", err, clean.Err())
	}
	if clean.Files != len(idx.Files) {
		t.Fatalf("an untouched bundle: %d files hashed, the index lists %d", clean.Files, len(idx.Files))
	}
	big, bigger := fileOfSize(t, idx, 2<<20), fileOfSize(t, idx, 3<<20)
	padded := fileOfSize(t, idx, 3<<20+1000)
	tartamper.Flip(t, path, big.Offset+big.Size-1, 0xff)
	tartamper.Flip(t, path, bigger.Offset+7, 0xff)
	tartamper.Flip(t, path, padded.Offset+padded.Size+5, 0xff)
	rep := mustFault(t, path, ReadOptions{},
		fmt.Sprintf("offset %d: %s: content has digest sha256:", big.Offset, big.Name),
		fmt.Sprintf("offset %d: %s: content has digest sha256:", bigger.Offset, bigger.Name),
		fmt.Sprintf("offset %d: %s: non-zero bytes in the padding", padded.Offset+padded.Size+5, padded.Name))
	if rep.Files != clean.Files-2 {
		t.Errorf("%d files hashed, want %d: all but the two flipped", rep.Files, clean.Files-2)
	}
	last := int64(-1)
	for _, f := range rep.Faults {
		if f.Offset < 0 {
			continue
		}
		if f.Offset < last {
			t.Errorf("faults out of volume order: %v after offset %d", f, last)
		}
		last = f.Offset
	}
}

// TestSideHashesCancelled: a verify cancelled while entries are hashed
// beside the scan ends with the cancellation once they have stopped.
func TestSideHashesCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.tar")
	writeFixture(t, path, WriteOptions{}, newFixture(4, [4]int{3 << 20, 3 << 20, 3 << 20, 3 << 20}))
	r, err := Open(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := r.Verify(ctx, func(done, _ int64) {
		if done >= progressStep { // past the first large entries
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || rep != nil {
		t.Fatalf("verify cancelled midway: %v, %v", rep, err)
	}
}

// TestSideHashesSkipped: the scan seeks over the data of entries hashed
// beside it, yet its progress still ends at every byte of the volume; a
// volume cut inside such an entry is refused, naming the entry.
func TestSideHashesSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.tar")
	idx := writeFixture(t, path, WriteOptions{}, newFixture(5, [4]int{2 << 20, 3 << 20, 1, 1}))
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var done, total int64
	rep, err := r.Verify(context.Background(), func(d, tot int64) { done, total = d, tot })
	r.Close()
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v, %v", err, rep.Err())
	}
	if done != st.Size() || total != st.Size() {
		t.Errorf("progress ended at %d of %d, want the volume's %d bytes", done, total, st.Size())
	}

	big := fileOfSize(t, idx, 3<<20)
	if err := os.Truncate(path, big.Offset+big.Size/2); err != nil {
		t.Fatal(err)
	}
	mustOpenFail(t, path, ReadOptions{}, "damaged or truncated", big.Name)
}
