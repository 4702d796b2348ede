package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/e2e/testbed/tartamper"
)

// This file plays the courier who controls the media: it adds images, tags,
// mirror sources and update steps to genuine bundles and recomputes every
// checksum, which needs no key. Only the proof (docs/design.md, "Trust")
// can catch these: verify and apply refuse each with exit code 3 naming
// the unproven item, apply contacts the target not at all, and nothing is
// rendered.

// forgery is what a forger does to a bundle's volume 0.
type forgery struct {
	// files are added before the index and listed in it.
	files map[string][]byte
	// edit changes the index.
	edit func(idx *bundle.Index)
	// keepSignature puts the original index signature back after the
	// forged index, as a forger hoping it is not checked would.
	keepSignature bool
}

// indexChecksumPrefix starts the PAX comment of the index entry, which
// carries the index's sha256 (docs/design.md): a forger recomputes it.
const indexChecksumPrefix = "ferry-index sha256:"

// forge rewrites volume 0 of the bundle at path: new files, an edited index
// with a matching checksum and, optionally, the old signature after it.
func forge(t *testing.T, path string, f forgery) {
	t.Helper()
	keep := ""
	if f.keepSignature {
		keep = bundle.IndexSignatureName
	}
	tartamper.Forge(t, path, tartamper.Forgery{Index: bundle.IndexName, ChecksumPrefix: indexChecksumPrefix, Files: f.files, Keep: keep,
		Edit: func(index []byte, added []tartamper.Entry) ([]byte, error) {
			var idx bundle.Index
			if err := json.Unmarshal(index, &idx); err != nil {
				return nil, err
			}
			for _, e := range added {
				sum := sha256.Sum256(f.files[e.Name])
				idx.Files = append(idx.Files, bundle.File{Name: e.Name, Size: e.Size, SHA256: hex.EncodeToString(sum[:]), Offset: e.Offset})
			}
			if f.edit != nil {
				f.edit(&idx)
			}
			return json.MarshalIndent(&idx, "", "  ")
		}})
}

// foreignImage is an image no release names: an OCI manifest and its
// config, as bundle files.
func foreignImage(t *testing.T) (digest.Digest, map[string][]byte) {
	t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	m := ocispec.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers: []ocispec.Descriptor{}}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	return d, map[string][]byte{bundle.BlobName(d): data, bundle.BlobName(m.Config.Digest): config}
}

// imageOfRole is the index's first image of role.
func imageOfRole(t *testing.T, idx *bundle.Index, role string) bundle.Image {
	t.Helper()
	for _, img := range idx.Images {
		if img.Role == role {
			return img
		}
	}
	t.Fatalf("the index has no %s image", role)
	return bundle.Image{}
}

func TestUnprovenContentRefused(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	genuine := b.pack(t, "--no-self")
	idx := readIndexFile(t, genuine)
	rel := idx.Releases[0]
	comp := imageOfRole(t, idx, bundle.RoleComponent)
	foreign, foreignFiles := foreignImage(t)
	const nginx = "docker.io/library/nginx"

	cases := []struct {
		name  string
		f     forgery
		wants []string
	}{
		{"a genuine manifest under a foreign source and tag", forgery{edit: func(idx *bundle.Index) {
			img := comp
			img.Source, img.Tags = nginx, []string{"latest"}
			idx.Images = append(idx.Images, img)
		}}, []string{"image " + nginx + "@" + comp.Digest.String(), "is not proven by the release chain"}},
		{"an image no release names", forgery{files: foreignFiles, edit: func(idx *bundle.Index) {
			idx.Images = append(idx.Images, bundle.Image{Source: nginx, Digest: foreign, MediaType: ocispec.MediaTypeImageManifest,
				Size: int64(len(foreignFiles[bundle.BlobName(foreign)])), Tags: []string{rel.Tag + "-etcd"}, Role: bundle.RoleComponent})
		}}, []string{"image " + nginx + "@" + foreign.String(), "is not proven"}},
		{"a release tag on a component", forgery{edit: func(idx *bundle.Index) {
			for i := range idx.Images {
				if idx.Images[i].Digest == comp.Digest {
					idx.Images[i].Tags = append(idx.Images[i].Tags, "latest", rel.Tag)
				}
			}
		}}, []string{"tag latest on image " + comp.Source + "@" + comp.Digest.String() + " is not derived from the release chain",
			"tag " + rel.Tag + " on image"}},
		{"no release at all", forgery{edit: func(idx *bundle.Index) { idx.Releases = nil }},
			[]string{"the bundle carries no release and no bundle signature", "is not proven by the release chain"}},
		{"the release's architecture rewritten", forgery{edit: func(idx *bundle.Index) {
			idx.Releases[0].Arch, idx.Releases[0].Tag = "aarch64", rel.Version+"-aarch64"
		}}, []string{"the release image is for x86_64, the index says aarch64"}},
		{"an update path that is no upgrade", forgery{edit: func(idx *bundle.Index) { idx.UpdatePath = []string{rel.Version, rel.Version} }},
			[]string{"update path: " + rel.Version + " -> " + rel.Version + " is not an upgrade"}},
		{"an update path through a release the bundle lacks", forgery{edit: func(idx *bundle.Index) { idx.UpdatePath = []string{"4.1.0", rel.Version} }},
			[]string{"update path: 4.1.0 is not a proven release of the bundle"}},
		{"one digest listed with two media types", forgery{edit: func(idx *bundle.Index) {
			img := comp
			img.MediaType = ocispec.MediaTypeImageIndex
			idx.Images = append(idx.Images, img)
		}}, []string{comp.Digest.String() + " is " + ocispec.MediaTypeImageIndex}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := copyBundle(t, genuine)
			forge(t, path, tc.f)
			assertRefused(t, b, path, nginx, tc.wants...)
		})
	}
}

// assertRefused: verify and apply both exit 3 saying wants; apply writes
// nothing to the target and renders nothing naming injected.
func assertRefused(t *testing.T, b *faultBed, path, injected string, wants ...string) {
	t.Helper()
	res := ferryRun(t, "verify", path, "--keyring", b.keyFile, "--quiet")
	wantExit(t, "verify", res, codeVerification, wants...)
	target := testbed.NewMemoryRegistry(t)
	p := testbed.NewFaultProxy(t, target.URL)
	out := filepath.Join(t.TempDir(), "manifests")
	res = ferryRun(t, "apply", path, "--to", p.Host+"/"+targetRepo, "--dest-tls-verify=false",
		"--keyring", b.keyFile, "--no-cluster", "--output-dir", out, "--quiet")
	wantExit(t, "apply", res, codeVerification, wants...)
	if n := p.Stats().Writes(); n != 0 {
		t.Errorf("apply sent %d requests that write to the target registry before refusing", n)
	}
	assertCatalogEmpty(t, target)
	rendered, _ := filepath.Glob(filepath.Join(out, "*"))
	for _, f := range rendered {
		if data, _ := os.ReadFile(f); bytes.Contains(data, []byte(injected)) {
			t.Errorf("apply rendered %s naming %s", f, injected)
		}
	}
}

// TestControlCharactersEscaped: strings from a hostile index reach the
// terminal escaped, never as the escape sequences they hold, and --json
// stays valid JSON.
func TestControlCharactersEscaped(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	path := b.pack(t, "--no-self")
	comp := imageOfRole(t, readIndexFile(t, path), bundle.RoleComponent)
	const hostile = "docker.io/library/nginx\x1b[2J\x1b[H\rbundle verified\u202e"
	forge(t, path, forgery{edit: func(idx *bundle.Index) {
		img := comp
		img.Source, img.Tags = hostile, []string{"latest\x1b[31m"}
		idx.Images = append(idx.Images, img)
		idx.Releases[0].Source = hostile
	}})
	for _, args := range [][]string{
		{"verify", path, "--keyring", b.keyFile, "--quiet"},
		{"inspect", path},
		{"apply", path, "--to", testbed.NewMemoryRegistry(t).Host + "/" + targetRepo, "--dest-tls-verify=false", "--keyring", b.keyFile,
			"--no-cluster", "--output-dir", t.TempDir(), "--quiet"},
	} {
		res := ferryRun(t, args...)
		out := res.stdout + res.stderr
		if strings.ContainsAny(out, "\x1b\r\u202e") {
			t.Errorf("ferry %s printed a raw control character:\n%q", args[0], out)
		}
		if args[0] != "inspect" && !strings.Contains(out, `\x1b[2J`) {
			t.Errorf("ferry %s does not show the escape sequence escaped:\n%s", args[0], out)
		}
	}
	res := ferryRun(t, "verify", path, "--keyring", b.keyFile, "--quiet", "--json")
	var report struct {
		OK     bool     `json:"ok"`
		Faults []string `json:"faults"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &report); err != nil || report.OK || len(report.Faults) == 0 {
		t.Errorf("verify --json: %v, %+v\n%s", err, report, res.stdout)
	}
}

// TestAllowUnproven: the explicit flag lets an admin push what no proof
// covers; every such item is named UNVERIFIED, and it lands.
func TestAllowUnproven(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	path := b.pack(t, "--no-self")
	foreign, files := foreignImage(t)
	const source = "docker.io/library/nginx"
	forge(t, path, forgery{files: files, edit: func(idx *bundle.Index) {
		idx.Images = append(idx.Images, bundle.Image{Source: source, Digest: foreign, MediaType: ocispec.MediaTypeImageManifest,
			Size: int64(len(files[bundle.BlobName(foreign)])), Tags: []string{"1.27"}, Role: bundle.RoleComponent})
	}})
	res := ferryRun(t, "verify", path, "--keyring", b.keyFile, "--quiet", "--allow-unproven")
	wantExit(t, "verify --allow-unproven", res, codeOK, "UNVERIFIED: image "+source+"@"+foreign.String(), "1 images accepted UNPROVEN")

	target := testbed.NewMemoryRegistry(t)
	out := filepath.Join(t.TempDir(), "manifests")
	res = ferryRun(t, "apply", path, "--to", target.Host+"/"+targetRepo, "--dest-tls-verify=false", "--keyring", b.keyFile,
		"--no-cluster", "--output-dir", out, "--quiet", "--allow-unproven")
	wantExit(t, "apply --allow-unproven", res, codeOK, "UNVERIFIED")
	if d := targetState(t, target, targetRepo)["1.27"]; d != foreign {
		t.Errorf("the unproven image's tag names %s, want %s", d, foreign)
	}
	idms, err := os.ReadFile(filepath.Join(out, "idms-ferry-"+readIndexFile(t, path).ID+".yaml"))
	if err != nil || !bytes.Contains(idms, []byte(source)) {
		t.Errorf("the mirror set does not route the accepted source %s: %v\n%s", source, err, idms)
	}
}

// TestApplyChecksTargetFirst: apply finds wrong credentials (or a target it
// cannot reach) before the verification pass, so a large bundle is not
// read for minutes only to fail at the first push: here a bundle that would
// fail verification fails on the credentials instead, with nothing written.
func TestApplyChecksTargetFirst(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	path := b.pack(t, "--no-self")
	forge(t, path, forgery{edit: func(idx *bundle.Index) { idx.Releases = nil }})
	target := testbed.NewMemoryRegistry(t)
	p := testbed.NewFaultProxy(t, target.URL)
	p.SetAuth(&testbed.TokenAuth{Username: faultUser, Password: faultPassword})
	args := applyArgs(t, path, b.keyFile, p.Host, "--authfile", writeAuthFile(t, p.Host, faultUser, "not the password"))
	res := ferryRun(t, args...)
	wantExit(t, "apply with wrong credentials", res, codeFailure, "checking access to "+p.Host+"/"+targetRepo)
	if strings.Contains(res.stdout+res.stderr, "not proven") {
		t.Errorf("apply verified the bundle before checking the target:\n%s", res.stderr)
	}
	if n := p.Stats().Writes(); n != 0 {
		t.Errorf("apply sent %d requests that write", n)
	}
	assertCatalogEmpty(t, target)
}
