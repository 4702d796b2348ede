package inventory

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func sample() *Inventory {
	return &Inventory{
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Source:  "registry mirror.example:5000/ocp4/openshift4",
		Releases: []Release{
			{Version: "4.15.1", Arch: "x86_64", Digest: digest.FromString("r2")},
			{Version: "4.15.0", Arch: "x86_64", Digest: digest.FromString("r1")},
		},
		Manifests: []digest.Digest{digest.FromString("m2"), digest.FromString("m1")},
		Blobs: []Blob{
			{Digest: digest.FromString("b2"), Size: 20, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"},
			{Digest: digest.FromString("b1"), Size: 10},
		},
	}
}

func TestMarshalParseRoundTrip(t *testing.T) {
	inv := sample()
	data, err := inv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v\n%s", err, data)
	}
	if got.FormatVersion != FormatVersion || got.Kind != Kind || got.Source != inv.Source || !got.Created.Equal(inv.Created) {
		t.Errorf("header: %+v", got)
	}
	// Sorted on the way out, so the same holdings give the same file.
	if got.Releases[0].Version != "4.15.0" || got.Manifests[0] > got.Manifests[1] || got.Blobs[0].Digest > got.Blobs[1].Digest {
		t.Errorf("not sorted: %+v", got)
	}
	again, err := got.Marshal()
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("second Marshal differs (%v):\n%s\n%s", err, data, again)
	}
	if got.Bytes() != 30 || len(got.BlobSet()) != 2 {
		t.Errorf("Bytes %d, BlobSet %d", got.Bytes(), len(got.BlobSet()))
	}
	if strings.Contains(string(data), "auth") || strings.Contains(string(data), "password") {
		t.Errorf("an inventory must hold nothing secret:\n%s", data)
	}
}

// TestInventoryWithoutRepositories: a file written before inventories
// read repositories under the target has no such key, and still parses,
// knowing nothing of them.
func TestInventoryWithoutRepositories(t *testing.T) {
	data, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "repositories") {
		t.Errorf("an inventory without repositories writes the key:\n%s", data)
	}
	old := `{"formatVersion":1,"kind":"FerryInventory","created":"2026-01-02T03:04:05Z","source":"registry r/x","releases":[],"manifests":[],"blobs":[]}`
	inv, err := Parse(strings.NewReader(old))
	if err != nil || inv.Repository("graph-image") != nil {
		t.Errorf("Parse of a version-1 file without repositories: %v, %+v", err, inv)
	}
}

func TestEmptyInventoryHasLists(t *testing.T) {
	data, err := (&Inventory{Source: "registry r/x"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"releases": []`, `"manifests": []`, `"blobs": []`, `"kind": "FerryInventory"`, `"formatVersion": 1`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("lacks %s:\n%s", want, data)
		}
	}
}

// TestParseRefuses: every way a file can be wrong is refused, with a
// message that says what.
func TestParseRefuses(t *testing.T) {
	valid, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		out, _ := json.Marshal(m)
		return string(out)
	}
	blob := func(m map[string]any) map[string]any { return m["blobs"].([]any)[0].(map[string]any) }
	cases := []struct{ name, doc, want string }{
		{"not JSON", "{", "parsing inventory"},
		{"a bundle index", `{"formatVersion":1,"id":"x"}`, "not a ferry inventory"},
		{"no version", edit(func(m map[string]any) { delete(m, "formatVersion") }), "formatVersion missing"},
		{"newer version", edit(func(m map[string]any) { m["formatVersion"] = 2; m["newField"] = 1 }), "unsupported formatVersion 2"},
		{"unknown field", edit(func(m map[string]any) { m["token"] = "secret" }), `unknown field "token"`},
		{"unknown blob field", edit(func(m map[string]any) { blob(m)["url"] = "x" }), `unknown field "url"`},
		{"bad digest", edit(func(m map[string]any) { m["manifests"].([]any)[0] = "sha256:abc" }), "manifests[0]"},
		{"sha512", edit(func(m map[string]any) { blob(m)["digest"] = digest.SHA512.FromString("x").String() }), "only sha256"},
		{"negative size", edit(func(m map[string]any) { blob(m)["size"] = -1 }), "out of range"},
		{"duplicate blob", edit(func(m map[string]any) { m["blobs"] = append(m["blobs"].([]any), blob(m)) }), "listed twice"},
		{"duplicate manifest", edit(func(m map[string]any) { m["manifests"] = append(m["manifests"].([]any), m["manifests"].([]any)[0]) }), "listed twice"},
		{"release without arch", edit(func(m map[string]any) { m["releases"].([]any)[0].(map[string]any)["arch"] = "" }), "version and arch required"},
		{"trailing data", string(valid) + "{}", "after top-level value"},
		{"repository without path", edit(func(m map[string]any) {
			m["repositories"] = []any{map[string]any{"path": "", "tags": []any{}, "manifests": []any{}, "blobs": []any{}}}
		}), "repositories[0]"},
		{"repository read twice", edit(func(m map[string]any) {
			r := map[string]any{"path": "tool", "tags": []any{}, "manifests": []any{}, "blobs": []any{}}
			m["repositories"] = []any{r, r}
		}), "listed twice"},
		{"tag twice", edit(func(m map[string]any) {
			tag := map[string]any{"name": "v1", "digest": digest.FromString("x").String()}
			m["repositories"] = []any{map[string]any{"path": "tool", "tags": []any{tag, tag}, "manifests": []any{}, "blobs": []any{}}}
		}), "tags[1]"},
		{"tag with a bad digest", edit(func(m map[string]any) {
			m["repositories"] = []any{map[string]any{"path": "tool", "tags": []any{map[string]any{"name": "v1", "digest": "sha256:1"}},
				"manifests": []any{}, "blobs": []any{}}}
		}), "tags[0] v1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse: %v, want an error containing %q\n%s", err, tc.want, tc.doc)
			}
		})
	}
}

func TestParseCapsSize(t *testing.T) {
	huge := bytes.Repeat([]byte(" "), MaxSize+1)
	if _, err := Parse(bytes.NewReader(huge)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Parse of %d bytes: %v", len(huge), err)
	}
}

func TestBuilderAddManifest(t *testing.T) {
	cfg := digest.FromString("config")
	layer := digest.FromString("layer")
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",` +
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"` + cfg.String() + `"},` +
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":5,"digest":"` + layer.String() + `"}]}`)
	md := digest.FromBytes(m)
	list := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[` +
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":` + strconv.Itoa(len(m)) + `,"digest":"` + md.String() +
		`","platform":{"architecture":"amd64","os":"linux"}}]}`)
	b := NewBuilder()
	children, err := b.AddManifest(digest.FromBytes(list), "application/vnd.docker.distribution.manifest.list.v2+json", list)
	if err != nil || len(children) != 1 || children[0] != md {
		t.Fatalf("list: children %v, %v", children, err)
	}
	if _, err := b.AddManifest(md, "application/vnd.docker.distribution.manifest.v2+json", m); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddManifest(digest.FromString("other"), "application/vnd.docker.distribution.manifest.v2+json", m); err == nil {
		t.Error("a manifest under another digest was accepted")
	}
	b.AddRelease("4.15.0", "multi", digest.FromBytes(list))
	inv := b.Inventory("test")
	want := map[digest.Digest]Blob{
		cfg:   {Digest: cfg, Size: 7, MediaType: "application/vnd.docker.container.image.v1+json"},
		layer: {Digest: layer, Size: 5, MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip"},
	}
	if !reflect.DeepEqual(inv.BlobSet(), want) || len(inv.Manifests) != 2 || len(inv.Releases) != 1 {
		t.Errorf("inventory %+v", inv)
	}
}

func TestReleaseTag(t *testing.T) {
	const single, list = "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"
	cases := []struct {
		tag, mediaType string
		ok             bool
	}{
		{"4.15.0-x86_64", single, true},
		{"4.15.0-rc.1-aarch64", single, true},
		{"4.15.0-multi", list, true},
		{"4.15.0-multi", single, false},
		{"4.15.0-x86_64", list, false},
		{"4.15.0-x86_64-etcd", single, false},
		{"sha256-" + strings.Repeat("a", 64) + ".sig", single, false},
		{"latest", single, false},
	}
	for _, tc := range cases {
		if _, _, ok := releaseTag(tc.tag, tc.mediaType); ok != tc.ok {
			t.Errorf("releaseTag(%q, %s) = %t, want %t", tc.tag, tc.mediaType, ok, tc.ok)
		}
	}
}
