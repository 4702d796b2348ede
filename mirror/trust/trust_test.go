package trust

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/trust/trusttest"
)

func check(t *testing.T, path string, opts Options) *Report {
	t.Helper()
	r, err := bundle.Open(path, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return Check(context.Background(), r, opts)
}

func TestCheckGenuine(t *testing.T) {
	fx := trusttest.Write(t, t.TempDir(), []string{"etcd", "cli"}, bundle.WriteOptions{})
	rep := check(t, fx.Path, Options{Keyring: fx.Keyring})
	if !rep.OK() {
		t.Fatalf("faults: %v", rep.Faults)
	}
	tags := map[string]digest.Digest{}
	for _, img := range rep.Images {
		if img.Proof != ReleaseChain {
			t.Errorf("%s@%s proven by %s", img.Source, img.Digest, img.Proof)
		}
		for _, tag := range img.Tags {
			tags[tag] = img.Digest
		}
	}
	want := map[string]digest.Digest{
		"4.15.0-x86_64": fx.Release, "4.15.0-x86_64-etcd": fx.Components["etcd"], "4.15.0-x86_64-cli": fx.Components["cli"],
		"sha256-" + fx.Components["etcd"].Encoded() + ".sig": "", "sha256-" + fx.Components["cli"].Encoded() + ".sig": "",
	}
	for tag, d := range want {
		if _, ok := tags[tag]; !ok || (d != "" && tags[tag] != d) {
			t.Errorf("tag %s: got %s, want %s", tag, tags[tag], d)
		}
	}
	if len(tags) != len(want) {
		t.Errorf("tags %v, want exactly %v", tags, want)
	}
	if !slices.Equal(rep.Sources, []string{trusttest.ReleaseRepo, trusttest.ComponentRepo}) {
		t.Errorf("sources %v", rep.Sources)
	}
	if len(rep.Steps) != 1 || rep.Steps[0].Digest != fx.Release || len(rep.ConfigMaps) != 1 || len(rep.Unverified) != 0 {
		t.Errorf("steps %+v, config maps %v, unverified %v", rep.Steps, rep.ConfigMaps, rep.Unverified)
	}
}

// rewrite writes the fixture's files again with an edited copy of its
// index: a forger's bundle, every checksum right.
func rewrite(t *testing.T, fx *trusttest.Fixture, edit func(idx *bundle.Index), opts bundle.WriteOptions) string {
	t.Helper()
	data, err := json.Marshal(fx.Index)
	if err != nil {
		t.Fatal(err)
	}
	var idx bundle.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	idx.Files, idx.Volumes, idx.ID = nil, nil, ""
	edit(&idx)
	path := filepath.Join(t.TempDir(), "forged.tar")
	trusttest.WriteFiles(t, path, fx.Files, &idx, opts)
	return path
}

func TestCheckRefuses(t *testing.T) {
	fx := trusttest.Write(t, t.TempDir(), []string{"etcd", "cli"}, bundle.WriteOptions{})
	etcd := fx.Components["etcd"]
	for _, tc := range []struct {
		name string
		edit func(idx *bundle.Index)
		opts Options
		want string
	}{
		{"no keyring", func(*bundle.Index) {}, Options{}, "no keyring to verify its signatures"},
		{"a foreign source", func(idx *bundle.Index) {
			img := idx.Images[1]
			img.Source = "docker.io/library/nginx"
			idx.Images = append(idx.Images, img)
		}, Options{Keyring: fx.Keyring}, "image docker.io/library/nginx@"},
		{"an extra tag", func(idx *bundle.Index) { idx.Images[1].Tags = append(idx.Images[1].Tags, "latest") },
			Options{Keyring: fx.Keyring}, "tag latest on image"},
		{"a blob the manifest does not name", func(idx *bundle.Index) { idx.Images[1].Blobs = append(idx.Images[1].Blobs, etcd) },
			Options{Keyring: fx.Keyring}, "blobs its manifest does not name exactly"},
		{"a component renamed", func(idx *bundle.Index) { idx.Releases[0].Components[0].Name = "kube-apiserver" },
			Options{Keyring: fx.Keyring}, "which image-references does not name"},
		{"unsigned without the flag", func(idx *bundle.Index) {
			idx.Releases[0].Unsigned, idx.Releases[0].Signatures, idx.Releases[0].ConfigMap = true, nil, ""
		}, Options{Keyring: fx.Keyring}, "is unsigned"},
		{"a source the signature does not name", func(idx *bundle.Index) {
			idx.Releases[0].Source = "registry.example/ocp-release@" + fx.Release.String()
		}, Options{Keyring: fx.Keyring}, "is not the repository its signatures name"},
		{"a signature image whose subject is not proven", func(idx *bundle.Index) {
			img := idx.Images[2]
			img.Source = "docker.io/library/nginx"
			idx.Images = append(idx.Images, img)
		}, Options{Keyring: fx.Keyring}, "docker.io/library/nginx@"},
		{"a release listed twice", func(idx *bundle.Index) { idx.Releases = append(idx.Releases, idx.Releases[0]) },
			Options{Keyring: fx.Keyring}, "is listed twice"},
		{"a downgrade path", func(idx *bundle.Index) { idx.UpdatePath = []string{"4.16.0", "4.15.0"} },
			Options{Keyring: fx.Keyring}, "4.16.0 is not a proven release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := check(t, rewrite(t, fx, tc.edit, bundle.WriteOptions{}), tc.opts)
			if rep.OK() || !strings.Contains(strings.Join(rep.Faults, "\n"), tc.want) {
				t.Fatalf("faults %q, want one containing %q", rep.Faults, tc.want)
			}
			if len(rep.Faults) > maxUnprovenNamed+5 {
				t.Errorf("%d faults for one forgery: %q", len(rep.Faults), rep.Faults)
			}
		})
	}
}

// packerKey is a signing key and a keyring of its public half.
func packerKey(t *testing.T) (*signature.SigningKey, *signature.Keyring) {
	t.Helper()
	k := testbed.NewKey(t, "packer")
	key, err := signature.ParseSigningKey("packer.key", k.PrivateArmored(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := signature.ParseKeyring("packer.pub", k.PublicArmored(t))
	if err != nil {
		t.Fatal(err)
	}
	return key, kr
}

func signWith(key *signature.SigningKey) bundle.WriteOptions {
	return bundle.WriteOptions{SignIndex: func(index []byte) ([]byte, error) {
		var sig bytes.Buffer
		err := key.SignDetached(&sig, bytes.NewReader(index))
		return sig.Bytes(), err
	}}
}

func TestCheckBundleSignature(t *testing.T) {
	key, kr := packerKey(t)
	_, strangerKeyring := packerKey(t)
	fx := trusttest.Write(t, t.TempDir(), []string{"etcd"}, bundle.WriteOptions{})
	extra := func(idx *bundle.Index) {
		img := idx.Images[1]
		img.Source, img.Tags = "registry.example/extras/tool", []string{"v1"}
		idx.Images = append(idx.Images, img)
	}
	signed := rewrite(t, fx, extra, signWith(key))

	rep := check(t, signed, Options{Keyring: fx.Keyring, BundleKeyring: kr})
	if !rep.OK() || rep.BundleSigner == nil || !strings.Contains(rep.BundleSigner.UserID, "packer") {
		t.Fatalf("signed: faults %q, signer %+v", rep.Faults, rep.BundleSigner)
	}
	var found bool
	for _, img := range rep.Images {
		if img.Source == "registry.example/extras/tool" {
			found = img.Proof == BundleSignature && slices.Equal(img.Tags, []string{"v1"})
		}
	}
	if !found || !slices.Contains(rep.Sources, "registry.example/extras/tool") {
		t.Errorf("the signed extra image is not proven by the bundle signature: %+v", rep.Images)
	}

	rep = check(t, signed, Options{Keyring: fx.Keyring})
	if rep.OK() || !strings.Contains(strings.Join(rep.Unverified, "\n"), "no bundle keyring was given") {
		t.Errorf("signed, no keyring: faults %q, unverified %q", rep.Faults, rep.Unverified)
	}
	rep = check(t, signed, Options{Keyring: fx.Keyring, BundleKeyring: strangerKeyring})
	if rep.OK() || !strings.Contains(strings.Join(rep.Faults, "\n"), "which is not in the keyring") {
		t.Errorf("another packer's keyring: faults %q", rep.Faults)
	}
	rep = check(t, signed, Options{Keyring: fx.Keyring, AllowUnproven: true})
	if !rep.OK() || !strings.Contains(strings.Join(rep.Unverified, "\n"), "registry.example/extras/tool") {
		t.Errorf("--allow-unproven: faults %q, unverified %q", rep.Faults, rep.Unverified)
	}
}

// FuzzCheck feeds the proof any index a forger could write (releases,
// images, prerequisites, update path) over a genuine bundle's files: the
// path from ParseIndex through Check must never panic, and what it proves
// must be pushable: valid tags, each naming one manifest, every blob at hand.
func FuzzCheck(f *testing.F) {
	// The release ships an image policy and each component a cosign
	// signature: whatever the index says, the Sigstore proof runs too.
	key, err := testbed.NewSigstoreKey(testbed.SigstoreKeyECDSA)
	if err != nil {
		f.Fatal(err)
	}
	fx := trusttest.WriteWithPolicy(f, f.TempDir(), []string{"etcd", "cli"}, bundle.WriteOptions{}, key, key)
	seed, err := json.Marshal(struct {
		Releases      []bundle.Release      `json:"releases"`
		Images        []bundle.Image        `json:"images"`
		Prerequisites []bundle.Prerequisite `json:"prerequisites"`
		UpdatePath    []string              `json:"updatePath"`
	}{fx.Index.Releases, fx.Index.Images, fx.Index.Prerequisites, []string{"4.14.9", "4.15.0"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"releases":[],"images":[]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		var idx bundle.Index
		if json.Unmarshal(data, &idx) != nil {
			return
		}
		idx.Files, idx.Volumes, idx.ID, idx.FormatVersion = nil, nil, "", 0
		path := filepath.Join(dir, "fuzz.tar")
		if _, err := trusttest.TryWriteFiles(path, fx.Files, &idx, bundle.WriteOptions{}); err != nil {
			return // the writer refuses what a reader would
		}
		r, err := bundle.Open(path, bundle.ReadOptions{})
		if err != nil {
			return
		}
		defer r.Close()
		rep := Check(context.Background(), r, Options{Keyring: fx.Keyring, AllowUnsigned: true})
		owners := map[string]digest.Digest{}
		for _, img := range rep.Images {
			for _, tag := range img.Tags {
				if !reference.TagRegexp.MatchString(tag) && rep.OK() {
					t.Fatalf("proven tag %q is not a tag", tag)
				}
				at := img.Target + ":" + tag // a tag names one manifest per repository
				if prior, ok := owners[at]; ok && prior != img.Digest && rep.OK() {
					t.Fatalf("tag %s proven for %s and %s", at, prior, img.Digest)
				}
				owners[at] = img.Digest
			}
			if rep.OK() && img.Proof != ReleaseChain {
				t.Fatalf("without a bundle keyring or --allow-unproven, %s@%s is proven by %q", img.Source, img.Digest, img.Proof)
			}
		}
		if len(rep.Faults) > maxFaults {
			t.Fatalf("%d faults, more than the cap", len(rep.Faults))
		}
	})
}
