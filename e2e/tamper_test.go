package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// This file hands ferry bundles that were damaged or crafted by an attacker
// with the disk: each is refused by `ferry verify` and by `ferry apply`
// with exit code 3 and a message naming what is wrong, and apply refuses
// before it writes anything to the target registry. The bundle package's own
// tests try many more hostile tars against its reader; here they go through
// the binary, on bundles `ferry pack` made.

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
			tartamper.Flip(t, path, f.Offset+f.Size/2, 0x10)
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
			e := tartamper.Find(t, path, bundle.IndexName)
			tartamper.Flip(t, path, e.Offset+e.Size/2, 0x10)
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
			tartamper.Flip(t, path, f.Offset+7, 0x10)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data[f.Offset : f.Offset+f.Size])
			forge(t, path, forgery{edit: func(idx *bundle.Index) {
				for i := range idx.Files {
					if idx.Files[i].Name == f.Name {
						idx.Files[i].SHA256 = hex.EncodeToString(sum[:])
					}
				}
			}})
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
			if err := os.Truncate(path, st.Size()-tartamper.EndOfArchive); err != nil {
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
			tartamper.InsertBefore(t, path, bundle.IndexName, tartamper.File(t, "mirror/config/extra.yaml", []byte("kind: Namespace\n")))
			return []string{"mirror/config/extra.yaml: not in the index"}
		}},
		{name: "extra file after the index", tamper: func(t *testing.T, path string) []string {
			tartamper.Append(t, path, true, tartamper.File(t, "mirror/config/extra.yaml", []byte("kind: Namespace\n")))
			return []string{`the last entry is "mirror/config/extra.yaml", not ferry-index.json`}
		}},
		{name: "extra file in a data volume", split: true, tamper: func(t *testing.T, path string) []string {
			tartamper.Append(t, volumePath(path, b.splitIdx, 1), true, tartamper.File(t, "mirror/extra", []byte("extra")))
			return []string{"volume 1 (bundle.001.tar)", "mirror/extra: not in the index"}
		}},
		{name: "entry with ..", tamper: func(t *testing.T, path string) []string {
			tartamper.InsertBefore(t, path, bundle.IndexName, tartamper.File(t, "../../etc/cron.d/ferry", []byte("* * * * * root sh\n")),
				tartamper.File(t, "mirror/oci/../../../evil", []byte("x")))
			return []string{"../../etc/cron.d/ferry: unsafe name: a .. element leads out of the bundle", "mirror/oci/../../../evil: unsafe name"}
		}},
		{name: "entry with an absolute path", tamper: func(t *testing.T, path string) []string {
			tartamper.InsertBefore(t, path, bundle.IndexName, tartamper.File(t, "/etc/cron.d/ferry", []byte("* * * * * root sh\n")))
			return []string{"/etc/cron.d/ferry: unsafe name: absolute name"}
		}},
		{name: "symlinks that escape", tamper: func(t *testing.T, path string) []string {
			tartamper.InsertBefore(t, path, bundle.IndexName,
				tartamper.Raw(t, tar.Header{Name: "mirror/oci/blobs/sha256/passwd", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, nil),
				tartamper.Raw(t, tar.Header{Name: "mirror/up", Typeflag: tar.TypeSymlink, Linkname: "../../../../root/.ssh"}, nil))
			return []string{"mirror/oci/blobs/sha256/passwd: not a regular file: a symbolic link to /etc/passwd",
				"mirror/up: not a regular file: a symbolic link to ../../../../root/.ssh"}
		}},
		{name: "hard links that escape", split: true, tamper: func(t *testing.T, path string) []string {
			tartamper.Append(t, volumePath(path, b.splitIdx, 1), true,
				tartamper.Raw(t, tar.Header{Name: "mirror/shadow", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}, nil),
				tartamper.Raw(t, tar.Header{Name: "mirror/key", Typeflag: tar.TypeLink, Linkname: "../../root/.ssh/id_rsa"}, nil))
			return []string{"mirror/shadow: not a regular file: a hard link to /etc/shadow",
				"mirror/key: not a regular file: a hard link to ../../root/.ssh/id_rsa"}
		}},
		{name: "two entries of the same name, different content", tamper: func(t *testing.T, path string) []string {
			f := indexFile(t, b.idx, sigFile)
			tartamper.InsertBefore(t, path, bundle.IndexName, tartamper.File(t, sigFile, []byte("another signature")))
			return []string{fmt.Sprintf("%s: the same name again (first at offset %d)", sigFile, f.Offset)}
		}},
		{name: "header declaring a huge size", tamper: func(t *testing.T, path string) []string {
			tartamper.InsertBefore(t, path, bundle.IndexName, tartamper.Raw(t, tar.Header{Name: "mirror/bomb", Typeflag: tar.TypeReg, Size: 1 << 50}, []byte("tiny")))
			return []string{`volume 0: the tar is damaged or truncated after "mirror/bomb" (data at offset`, "1125899906842624 bytes"}
		}},
		{name: "header declaring a huge size in a data volume", split: true, tamper: func(t *testing.T, path string) []string {
			tartamper.Append(t, volumePath(path, b.splitIdx, 1), false,
				tartamper.Raw(t, tar.Header{Name: "mirror/bomb", Typeflag: tar.TypeReg, Size: 1 << 50}, []byte("tiny")))
			return []string{"mirror/bomb: not in the index", "the tar is damaged or truncated after this entry"}
		}},
		{name: "the index lists a blob twice with different sizes", tamper: func(t *testing.T, path string) []string {
			f := indexFile(t, b.idx, blob(b.layer))
			forge(t, path, forgery{edit: func(idx *bundle.Index) {
				twice := f
				twice.Size, twice.Offset = f.Size+1, 1<<30
				idx.Files = append(idx.Files, twice)
			}})
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
