package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// signedRelease is a test-bed release in a real registry with its signature
// in a real store, and the key to check it.
type signedRelease struct {
	reg     *testbed.Registry
	rel     *testbed.Release
	store   *testbed.SignatureStore
	keyFile string
}

func newSignedRelease(t *testing.T, opts testbed.ReleaseOptions) *signedRelease {
	t.Helper()
	reg := testbed.NewRegistry(t)
	rel := testbed.BuildRelease(t, reg.Host, opts)
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	store.SignRelease(t, key, rel)
	return &signedRelease{reg: reg, rel: rel, store: store, keyFile: writeTemp(t, "key.asc", key.PublicArmored(t))}
}

func (s *signedRelease) packArgs(out string, extra ...string) []string {
	// --no-self: in-process, the running binary is the (large) test binary.
	return append([]string{"pack", s.rel.PullSpec, "-o", out, "--no-self", "--src-tls-verify=false", "--keyring", s.keyFile,
		"--signature-store", s.store.URL, "--quiet"}, extra...)
}

func readIndex(t *testing.T, path string) *bundle.Index {
	t.Helper()
	r, err := bundle.Open(path, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Index()
}

func TestPackVerifyAndReadBackWithSkopeo(t *testing.T) {
	s := newSignedRelease(t, testbed.ReleaseOptions{Components: 20, Sigstore: true})
	out := filepath.Join(t.TempDir(), "bundle.tar")
	summary := mustFerry(t, s.packArgs(out)...)
	if !strings.Contains(summary, "packed 1 release ("+s.rel.Tag+")") {
		t.Errorf("summary: %s", summary)
	}
	verifyOut := mustFerry(t, "verify", out, "--keyring", s.keyFile, "--quiet")
	if !strings.Contains(verifyOut, "verified") {
		t.Errorf("verify output: %s", verifyOut)
	}

	idx := readIndex(t, out)
	if len(idx.Releases) != 1 || idx.Releases[0].Digest != s.rel.Digest || idx.Releases[0].Unsigned {
		t.Fatalf("index releases = %+v", idx.Releases)
	}
	// Every manifest the test bed pushed is in the bundle, byte for byte,
	// and each blob is stored once.
	names := map[string]int{}
	for _, f := range idx.Files {
		names[f.Name]++
	}
	for _, img := range s.rel.Images {
		if names[bundle.BlobName(img.Digest)] != 1 {
			t.Errorf("manifest %s (%s) stored %d times", img.Digest, img.Role, names[bundle.BlobName(img.Digest)])
		}
	}
	for d := range s.rel.Blobs {
		if names[bundle.BlobName(d)] != 1 {
			t.Errorf("blob %s stored %d times", d, names[bundle.BlobName(d)])
		}
	}

	// Every tagged image reads back out of the unpacked OCI layout with
	// exactly the source manifest bytes.
	dir := t.TempDir()
	untar(t, out, dir)
	checked := 0
	for _, img := range idx.Images {
		src, ok := s.rel.Image(img.Digest)
		if !ok {
			t.Errorf("bundle image %s is not one the test bed pushed", img.Digest)
			continue
		}
		for _, tag := range img.Tags {
			if raw := testbed.ReadLayoutManifest(t, filepath.Join(dir, "mirror", "oci"), tag, img.MediaType); !bytes.Equal(raw, src.Manifest) {
				t.Errorf("oci layout manifest %s differs from the source manifest", tag)
			}
			checked++
		}
	}
	if checked < 22 {
		t.Errorf("checked only %d tagged images", checked)
	}
	if len(s.rel.SigTags) == 0 || names[bundle.BlobName(firstSigstore(t, s.rel))] != 1 {
		t.Errorf("the bundle lacks the release's cosign signature")
	}

	// One flipped byte in a layer makes verify fail.
	largest := largestBlob(idx)
	tartamper.Flip(t, out, largest.Offset+largest.Size/2, 0x01)
	code, vout, _ := ferry(t, "verify", out, "--keyring", s.keyFile, "--quiet")
	if code != exitVerification || !strings.Contains(vout, "sha256") {
		t.Errorf("verify after a flipped byte: exit %d, want %d\n%s", code, exitVerification, vout)
	}
}

func TestPackMultiArchRelease(t *testing.T) {
	s := newSignedRelease(t, testbed.ReleaseOptions{Multi: true, Components: 4})
	out := filepath.Join(t.TempDir(), "multi.tar")
	mustFerry(t, s.packArgs(out)...)
	mustFerry(t, "verify", out, "--keyring", s.keyFile, "--quiet")
	idx := readIndex(t, out)
	if idx.Releases[0].Arch != "multi" {
		t.Errorf("arch %q, want multi", idx.Releases[0].Arch)
	}
	have := map[string]bool{}
	for _, img := range idx.Images {
		have[img.Digest.String()] = true
	}
	for _, img := range s.rel.Images {
		if !have[img.Digest.String()] {
			t.Errorf("multi release lacks %s %s", img.Role, img.Digest)
		}
	}
}

func TestPackVolumes(t *testing.T) {
	s := newSignedRelease(t, testbed.ReleaseOptions{Components: 6, LayerSize: 300 << 10})
	out := filepath.Join(t.TempDir(), "vol.tar")
	mustFerry(t, s.packArgs(out, "--volume-size", "1MiB")...)
	idx := readIndex(t, out)
	if len(idx.Volumes) < 3 {
		t.Fatalf("want several volumes, got %d", len(idx.Volumes))
	}
	for _, v := range idx.Volumes[1:] {
		p := filepath.Join(filepath.Dir(out), v.Name)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over the 1 MiB volume size", v.Name, st.Size())
		}
		if err := exec.Command("tar", "-tf", p).Run(); err != nil {
			t.Errorf("%s is not a valid tar on its own: %v", v.Name, err)
		}
	}
	mustFerry(t, "verify", out, "--keyring", s.keyFile, "--quiet")
	// A missing volume is named.
	missing := filepath.Join(filepath.Dir(out), idx.Volumes[2].Name)
	if err := os.Rename(missing, missing+".away"); err != nil {
		t.Fatal(err)
	}
	code, vout, _ := ferry(t, "verify", out, "--keyring", s.keyFile, "--quiet")
	if code != exitVerification || !strings.Contains(vout, idx.Volumes[2].Name) {
		t.Errorf("missing volume: exit %d\n%s", code, vout)
	}
}

func TestPackDryRunFetchesNoLayer(t *testing.T) {
	s := newSignedRelease(t, testbed.ReleaseOptions{Components: 3})
	out := filepath.Join(t.TempDir(), "dry.tar")
	stdout := mustFerry(t, s.packArgs(out, "--dry-run")...)
	if !strings.Contains(stdout, "would pack") || !strings.Contains(stdout, s.rel.Digest.String()) {
		t.Errorf("dry run output:\n%s", stdout)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("dry run wrote %s", out)
	}
}

func TestPackRefusesBadReleases(t *testing.T) {
	cases := []struct {
		name string
		opts testbed.ReleaseOptions
		want string
	}{
		{"component by tag", testbed.ReleaseOptions{Components: 3, TagReference: true}, "not pinned by digest"},
		{"missing component", testbed.ReleaseOptions{Components: 3, MissingComponent: true}, "component"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSignedRelease(t, tc.opts)
			dir := t.TempDir()
			code, _, errOut := ferry(t, s.packArgs(filepath.Join(dir, "b.tar"))...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr should mention %q:\n%s", code, tc.want, errOut)
			}
			assertEmptyDir(t, dir)
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		s := newSignedRelease(t, testbed.ReleaseOptions{Components: 2})
		other := testbed.NewKey(t, "stranger")
		s.keyFile = writeTemp(t, "other.asc", other.PublicArmored(t))
		dir := t.TempDir()
		code, _, errOut := ferry(t, s.packArgs(filepath.Join(dir, "b.tar"))...)
		if code != exitVerification || !strings.Contains(errOut, "--allow-unsigned") {
			t.Errorf("exit %d, want %d:\n%s", code, exitVerification, errOut)
		}
		assertEmptyDir(t, dir)
		_, _, errOut = ferry(t, s.packArgs(filepath.Join(dir, "b.tar"), "--allow-unsigned")...)
		if !strings.Contains(errOut, "UNSIGNED") {
			t.Errorf("--allow-unsigned should warn:\n%s", errOut)
		}
		if idx := readIndex(t, filepath.Join(dir, "b.tar")); !idx.Releases[0].Unsigned {
			t.Error("index does not record the release as unsigned")
		}
	})
	t.Run("existing bundle", func(t *testing.T) {
		s := newSignedRelease(t, testbed.ReleaseOptions{Components: 2})
		out := filepath.Join(t.TempDir(), "b.tar")
		mustFerry(t, s.packArgs(out)...)
		code, _, errOut := ferry(t, s.packArgs(out)...)
		if code != exitUsage || !strings.Contains(errOut, "--force") {
			t.Errorf("overwrote an existing bundle: exit %d\n%s", code, errOut)
		}
		mustFerry(t, s.packArgs(out, "--force")...)
	})
}

func firstSigstore(t *testing.T, rel *testbed.Release) digest.Digest {
	t.Helper()
	for _, img := range rel.Images {
		if img.Role == testbed.RoleSigstore {
			return img.Digest
		}
	}
	t.Fatal("the test bed release has no sigstore image")
	return ""
}

func largestBlob(idx *bundle.Index) bundle.File {
	var best bundle.File
	for _, f := range idx.Files {
		if strings.HasPrefix(f.Name, "mirror/oci/blobs/") && f.Size > best.Size {
			best = f
		}
	}
	return best
}

func untar(t *testing.T, tarPath, dir string) {
	t.Helper()
	if out, err := exec.Command("tar", "-xf", tarPath, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf %s: %v\n%s", tarPath, err, out)
	}
}

// TestPackTwoReleasesShareBlobs: two releases sharing most layers in one
// bundle store every shared blob once.
func TestPackTwoReleasesShareBlobs(t *testing.T) {
	s := newSignedRelease(t, testbed.ReleaseOptions{Components: 6})
	key := testbed.NewKey(t, "second")
	second := testbed.BuildRelease(t, s.reg.Host, testbed.ReleaseOptions{Components: 6, Version: "4.15.1", ShareWith: s.rel})
	s.store.SignRelease(t, key, second)
	keys := writeTemp(t, "second.asc", key.PublicArmored(t))
	out := filepath.Join(t.TempDir(), "two.tar")
	mustFerry(t, "pack", s.rel.PullSpec, second.PullSpec, "-o", out, "--no-self", "--src-tls-verify=false",
		"--keyring", s.keyFile, "--keyring", keys, "--signature-store", s.store.URL, "--quiet")
	idx := readIndex(t, out)
	if len(idx.Releases) != 2 {
		t.Fatalf("%d releases in the index", len(idx.Releases))
	}
	union := map[digest.Digest]bool{}
	shared := 0
	for d := range s.rel.Blobs {
		union[d] = true
	}
	for d := range second.Blobs {
		if union[d] {
			shared++
		}
		union[d] = true
	}
	if shared == 0 {
		t.Fatal("the test releases share no blob")
	}
	count := map[string]int{}
	for _, f := range idx.Files {
		count[f.Name]++
	}
	for d := range union {
		if count[bundle.BlobName(d)] != 1 {
			t.Errorf("blob %s stored %d times", d, count[bundle.BlobName(d)])
		}
	}
	mustFerry(t, "verify", out, "--keyring", s.keyFile, "--keyring", keys, "--quiet")
}

// TestPackCacheDir: a rerun with --cache-dir takes blobs from the cache, and
// a corrupt cache entry is fetched again, not packed.
func TestPackCacheDir(t *testing.T) {
	s := newSignedRelease(t, testbed.ReleaseOptions{Components: 3})
	cache := t.TempDir()
	out := filepath.Join(t.TempDir(), "b.tar")
	mustFerry(t, s.packArgs(out, "--cache-dir", cache)...)
	cached := 0
	for d := range s.rel.Blobs {
		if _, err := os.Stat(filepath.Join(cache, "sha256", d.Encoded())); err == nil {
			cached++
		}
	}
	if cached != len(s.rel.Blobs) {
		t.Fatalf("%d of %d blobs cached", cached, len(s.rel.Blobs))
	}
	var victim digest.Digest
	for d := range s.rel.Blobs {
		victim = d
		break
	}
	if err := os.WriteFile(filepath.Join(cache, "sha256", victim.Encoded()), []byte("corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := ferry(t, s.packArgs(out, "--cache-dir", cache, "--force")...)
	if code != 0 || !strings.Contains(errOut, "corrupt") {
		t.Errorf("rerun over a corrupt cache entry: exit %d\n%s", code, errOut)
	}
	mustFerry(t, "verify", out, "--keyring", s.keyFile, "--quiet")
}

func TestInspectJSON(t *testing.T) {
	s := newSignedRelease(t, testbed.ReleaseOptions{Components: 2})
	out := filepath.Join(t.TempDir(), "b.tar")
	mustFerry(t, s.packArgs(out)...)
	var idx bundle.Index
	if err := json.Unmarshal([]byte(mustFerry(t, "inspect", out, "--json")), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Releases) != 1 || idx.Releases[0].Digest != s.rel.Digest || idx.Tool.Name != "ferry" || len(idx.Volumes) != 1 {
		t.Errorf("inspect --json: %+v", idx)
	}
	text := mustFerry(t, "inspect", out)
	for _, want := range []string{s.rel.Digest.String(), "signature:", "unique blobs:", "volume 0: b.tar"} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect lacks %q:\n%s", want, text)
		}
	}
}
