package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
)

const targetRepo = "ocp4/openshift4"

// packed is a signed test-bed release packed into a bundle.
type packed struct {
	*signedRelease
	bundle string
	outDir string // --output-dir unless a test gives its own
}

func newPacked(t *testing.T, opts testbed.ReleaseOptions, packFlags ...string) *packed {
	t.Helper()
	s := newSignedRelease(t, opts)
	out := filepath.Join(t.TempDir(), "bundle.tar")
	mustFerry(t, s.packArgs(out, packFlags...)...)
	return &packed{signedRelease: s, bundle: out, outDir: t.TempDir()}
}

func (p *packed) applyArgs(target *testbed.Registry, extra ...string) []string {
	args := []string{"apply", p.bundle, "--to", target.Host + "/" + targetRepo, "--dest-tls-verify=false",
		"--keyring", p.keyFile, "--no-cluster", "--quiet", "--json"}
	if !slices.Contains(extra, "--output-dir") {
		args = append(args, "--output-dir", p.outDir)
	}
	return append(args, extra...)
}

func applySummaryOf(t *testing.T, stdout string) applySummary {
	t.Helper()
	var s applySummary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("apply --json output: %v\n%s", err, stdout)
	}
	return s
}

// TestApplyIntoDebianRegistry packs from the in-process registry and
// applies into Debian's docker-registry process: every reference the target
// serves has exactly the source manifest bytes, and a second apply pushes
// no blob.
func TestApplyIntoDebianRegistry(t *testing.T) {
	p := newPacked(t, testbed.ReleaseOptions{Components: 8, Sigstore: true})
	target := testbed.StartDockerRegistry(t)
	outDir := t.TempDir()
	sum := applySummaryOf(t, mustFerry(t, p.applyArgs(target.Registry, "--output-dir", outDir)...))
	if sum.BlobsPushed != len(p.rel.Blobs) || sum.BlobsSkipped != 0 {
		t.Errorf("first apply pushed %d, skipped %d blobs; the release has %d", sum.BlobsPushed, sum.BlobsSkipped, len(p.rel.Blobs))
	}
	want := "oc adm upgrade --allow-explicit-upgrade --to-image=" + target.Host + "/" + targetRepo + "@" + p.rel.Digest.String()
	if len(sum.NextSteps) != 1 || sum.NextSteps[0] != want {
		t.Errorf("next steps %q, want %q", sum.NextSteps, want)
	}

	// Every tag and every digest in the target holds the source bytes.
	idx := readIndex(t, p.bundle)
	tags := 0
	for _, img := range idx.Images {
		src, _ := p.rel.Image(img.Digest)
		refs := append([]string{"@" + img.Digest.String()}, prefixAll(":", img.Tags)...)
		for _, ref := range refs {
			raw := testbed.Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+target.Host+"/"+targetRepo+ref)
			if !bytes.Equal(bytes.TrimSpace(raw), bytes.TrimSpace(src.Manifest)) {
				t.Errorf("target %s differs from the source manifest", ref)
			}
		}
		tags += len(img.Tags)
	}
	if tags < 10 {
		t.Errorf("only %d tags checked", tags)
	}
	for _, name := range []string{"signature-sha256-" + p.rel.Digest.Encoded()[:16] + ".yaml", "install-config-snippet.yaml"} {
		if _, err := os.Stat(filepath.Join(outDir, name)); err != nil {
			t.Errorf("rendered file missing: %v", err)
		}
	}

	again := applySummaryOf(t, mustFerry(t, p.applyArgs(target.Registry, "--output-dir", outDir)...))
	if again.BlobsPushed != 0 || again.BlobsSkipped != len(p.rel.Blobs) {
		t.Errorf("second apply pushed %d blobs (skipped %d); want 0 pushed", again.BlobsPushed, again.BlobsSkipped)
	}
}

func TestApplyDryRunTouchesNothing(t *testing.T) {
	p := newPacked(t, testbed.ReleaseOptions{Components: 3})
	target := testbed.NewMemoryRegistry(t)
	outDir := filepath.Join(t.TempDir(), "out")
	sum := applySummaryOf(t, mustFerry(t, p.applyArgs(target, "--dry-run", "--output-dir", outDir)...))
	if sum.WouldPush != len(p.rel.Blobs) {
		t.Errorf("dry run would push %d blobs, want %d", sum.WouldPush, len(p.rel.Blobs))
	}
	assertCatalogEmpty(t, target)
	assertEmptyDir(t, outDir)
}

// TestApplyRefusesBrokenTrust: each break in the chain of trust is refused
// before a byte is pushed.
func TestApplyRefusesBrokenTrust(t *testing.T) {
	p := newPacked(t, testbed.ReleaseOptions{Components: 4})
	idx := readIndex(t, p.bundle)
	component := componentImage(t, idx)

	cases := []struct {
		name string
		edit func(t *testing.T, idx *bundle.Index, files map[string][]byte)
		want string
	}{
		{"re-signed by a stranger", func(t *testing.T, idx *bundle.Index, files map[string][]byte) {
			stranger := testbed.NewKey(t, "stranger")
			rel := idx.Releases[0]
			files[rel.Signatures[0].File] = stranger.SignRelease(t, rel.Digest.String(), rel.Source)
		}, "key"},
		{"component missing", func(t *testing.T, idx *bundle.Index, files map[string][]byte) {
			delete(files, bundle.BlobName(component.Digest))
			idx.Images = removeImage(idx.Images, component.Digest)
			comps := idx.Releases[0].Components[:0]
			for _, c := range idx.Releases[0].Components {
				if !strings.HasSuffix(c.Image, component.Digest.String()) {
					comps = append(comps, c)
				}
			}
			idx.Releases[0].Components = comps
		}, component.Digest.String()},
		{"component swapped", func(t *testing.T, idx *bundle.Index, files map[string][]byte) {
			// Another valid manifest takes the component's place: its
			// bytes and the index agree, image-references does not.
			data := files[bundle.BlobName(component.Digest)]
			swapped := append(bytes.TrimRight(data, "\n "), '\n')
			d := digest.FromBytes(swapped)
			delete(files, bundle.BlobName(component.Digest))
			files[bundle.BlobName(d)] = swapped
			for i := range idx.Images {
				if idx.Images[i].Digest == component.Digest {
					idx.Images[i].Digest, idx.Images[i].Size = d, int64(len(swapped))
				}
			}
			for i, c := range idx.Releases[0].Components {
				if strings.HasSuffix(c.Image, component.Digest.String()) {
					idx.Releases[0].Components[i].Image = strings.Replace(c.Image, component.Digest.String(), d.String(), 1)
				}
			}
		}, "image-references"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tampered := rewriteBundle(t, p.bundle, tc.edit)
			target := testbed.NewMemoryRegistry(t)
			args := p.applyArgs(target)
			args[1] = tampered
			code, stdout, errOut := ferry(t, args...)
			if code != exitVerification || !strings.Contains(stdout+errOut, tc.want) {
				t.Errorf("exit %d (want %d); output should mention %q:\n%s\n%s", code, exitVerification, tc.want, stdout, errOut)
			}
			assertCatalogEmpty(t, target)
		})
	}
}

func TestApplyRefusesMissingVolume(t *testing.T) {
	p := newPacked(t, testbed.ReleaseOptions{Components: 4, LayerSize: 200 << 10}, "--volume-size", "512KiB")
	idx := readIndex(t, p.bundle)
	if len(idx.Volumes) < 2 {
		t.Fatalf("want volumes, got %d", len(idx.Volumes))
	}
	if err := os.Remove(filepath.Join(filepath.Dir(p.bundle), idx.Volumes[1].Name)); err != nil {
		t.Fatal(err)
	}
	target := testbed.NewMemoryRegistry(t)
	code, _, errOut := ferry(t, p.applyArgs(target)...)
	if code != exitVerification || !strings.Contains(errOut, idx.Volumes[1].Name) {
		t.Errorf("exit %d (want %d), stderr should name %s:\n%s", code, exitVerification, idx.Volumes[1].Name, errOut)
	}
	assertCatalogEmpty(t, target)
}

func componentImage(t *testing.T, idx *bundle.Index) bundle.Image {
	t.Helper()
	for _, img := range idx.Images {
		if img.Role == bundle.RoleComponent && len(img.Children) == 0 {
			return img
		}
	}
	t.Fatal("no single-arch component in the bundle")
	return bundle.Image{}
}

func removeImage(images []bundle.Image, d digest.Digest) []bundle.Image {
	var out []bundle.Image
	for _, img := range images {
		if img.Digest != d {
			out = append(out, img)
		}
	}
	return out
}

func prefixAll(prefix string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = prefix + s
	}
	return out
}

func assertCatalogEmpty(t *testing.T, reg *testbed.Registry) {
	t.Helper()
	repos, err := reg.Client().Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 0 {
		t.Errorf("the target registry was changed: it holds %v", repos)
	}
}

// rewriteBundle writes a copy of a single-volume bundle with edit applied
// to its files and index, as an attacker with the disk could: every file's
// size and sha256 in the new index agree with the new bytes.
func rewriteBundle(t *testing.T, src string, edit func(t *testing.T, idx *bundle.Index, files map[string][]byte)) string {
	t.Helper()
	r, err := bundle.Open(src, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	old := r.Index()
	files := map[string][]byte{}
	var order []string
	for _, f := range old.Files {
		if f.Name == bundle.VolumeMarkerName {
			continue
		}
		sr, err := r.Open(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, f.Size)
		if _, err := sr.ReadAt(data, 0); err != nil && f.Size > 0 {
			t.Fatal(err)
		}
		files[f.Name] = data
		order = append(order, f.Name)
	}
	idx := *old
	idx.Images = append([]bundle.Image(nil), old.Images...)
	idx.Releases = append([]bundle.Release(nil), old.Releases...)
	idx.Releases[0].Components = append([]bundle.Component(nil), old.Releases[0].Components...)
	edit(t, &idx, files)
	idx.Files, idx.Volumes, idx.ID = nil, nil, ""
	out := filepath.Join(t.TempDir(), "tampered.tar")
	w, err := bundle.Create(out, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, name := range order {
		if data, ok := files[name]; ok {
			written[name] = true
			if err := w.AddFile(name, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, data := range files {
		if !written[name] {
			if err := w.AddFile(name, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Finish(&idx); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestApplyUnsignedNeedsFlag: an unsigned bundle is refused unless
// --allow-unsigned, and then apply names what is unverified.
func TestApplyUnsignedNeedsFlag(t *testing.T) {
	s := newSignedRelease(t, testbed.ReleaseOptions{Components: 2})
	stranger := writeTemp(t, "stranger.asc", testbed.NewKey(t, "stranger").PublicArmored(t))
	out := filepath.Join(t.TempDir(), "unsigned.tar")
	args := s.packArgs(out, "--allow-unsigned")
	args[slices.Index(args, "--keyring")+1] = stranger // a key that did not sign it
	mustFerry(t, args...)
	p := &packed{signedRelease: s, bundle: out, outDir: t.TempDir()}
	target := testbed.NewMemoryRegistry(t)
	code, stdout, errOut := ferry(t, p.applyArgs(target)...)
	if code != exitVerification || !strings.Contains(stdout+errOut, "--allow-unsigned") {
		t.Errorf("exit %d (want %d):\n%s\n%s", code, exitVerification, stdout, errOut)
	}
	assertCatalogEmpty(t, target)
	sum := applySummaryOf(t, mustFerry(t, p.applyArgs(target, "--allow-unsigned")...))
	if len(sum.Unverified) != 1 || !strings.Contains(sum.Unverified[0], s.rel.Digest.String()) {
		t.Errorf("unverified = %q", sum.Unverified)
	}
}
