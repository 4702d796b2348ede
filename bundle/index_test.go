package bundle

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

var (
	hexA = digest.FromString("a").Encoded()
	hexB = digest.FromString("b").Encoded()
)

func validIndex() *Index {
	return &Index{
		FormatVersion: FormatVersion,
		ID:            "0123456789abcdef0123456789abcdef",
		Files: []File{
			{Name: VolumeMarkerName, Size: 50, SHA256: hexA, Volume: 0, Offset: 512},
			{Name: "mirror/oci/blobs/sha256/" + hexB, Size: 10, SHA256: hexB, Volume: 0, Offset: 1536},
			{Name: VolumeMarkerName, Size: 50, SHA256: hexA, Volume: 1, Offset: 512},
			{Name: "mirror/oci/blobs/sha256/" + hexA, Size: 513, SHA256: hexA, Volume: 1, Offset: 1536},
			{Name: "mirror/signatures/sha256=" + hexA + "/signature-1", Size: 1, SHA256: hexA, Volume: 1, Offset: 3072},
		},
		Volumes: []Volume{{Name: "bundle.tar"}, {Name: "bundle.001.tar", Size: 5120}},
		Images: []Image{{Source: "quay.io/x", Digest: digest.FromString("b"), MediaType: MediaTypeDockerManifest,
			Size: 10, Role: RoleComponent}},
	}
}

func TestParseIndexValid(t *testing.T) {
	data, err := json.Marshal(validIndex())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ParseIndex(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Files) != 5 || idx.Volumes[1].Size != 5120 {
		t.Fatalf("parsed %+v", idx)
	}
}

func TestParseIndexRefuses(t *testing.T) {
	blob := "mirror/oci/blobs/sha256/" + hexB
	for _, c := range []struct {
		name string
		edit func(idx *Index)
		want string
	}{
		{"bad id", func(idx *Index) { idx.ID = "../x" }, `id "../x"`},
		{"no volumes", func(idx *Index) { idx.Volumes = nil; idx.Files = nil }, "volumes: none"},
		{"volume name with a slash", func(idx *Index) { idx.Volumes[1].Name = "../b.tar" }, `volumes[1]: invalid name "../b.tar"`},
		{"same volume name twice", func(idx *Index) { idx.Volumes[1].Name = "bundle.tar" }, "already used by volume 0"},
		{"volume 0 with a size", func(idx *Index) { idx.Volumes[0].Size = 1 }, "volume 0 cannot state its size"},
		{"dot-dot", func(idx *Index) { idx.Files[1].Name = "mirror/../../etc/passwd" }, `files[1] "mirror/../../etc/passwd": name is not clean`},
		{"leading dot-dot", func(idx *Index) { idx.Files[1].Name = "../etc/passwd" }, "a .. element leads out of the bundle"},
		{"absolute", func(idx *Index) { idx.Files[1].Name = "/etc/passwd" }, "absolute name"},
		{"backslash", func(idx *Index) { idx.Files[1].Name = `mirror\..\x` }, `character '\\' not allowed`},
		{"colon", func(idx *Index) { idx.Files[1].Name = "mirror/c:x" }, `character ':' not allowed`},
		{"trailing slash", func(idx *Index) { idx.Files[1].Name = "mirror/x/" }, "not clean"},
		{"outside mirror", func(idx *Index) { idx.Files[1].Name = "etc/passwd" }, "name outside mirror/"},
		{"the index itself", func(idx *Index) { idx.Files[1].Name = IndexName }, "the index and its signature are not files of the index"},
		{"blob of another algorithm", func(idx *Index) { idx.Files[1].Name = "mirror/oci/blobs/md5/abc" }, "blob name is not"},
		{"blob named for another digest", func(idx *Index) { idx.Files[1].SHA256 = hexA }, "blob named for sha256:" + hexB + " has sha256 " + hexA},
		{"upper-case sha", func(idx *Index) { idx.Files[1].SHA256 = strings.ToUpper(hexB) }, "want 64 lower-case hex digits"},
		{"negative size", func(idx *Index) { idx.Files[1].Size = -1 }, "size -1 out of range"},
		{"huge size", func(idx *Index) { idx.Files[1].Size = 1 << 62 }, "out of range"},
		{"unaligned offset", func(idx *Index) { idx.Files[1].Offset = 1537 }, "offset 1537 is not a data offset"},
		{"zero offset", func(idx *Index) { idx.Files[1].Offset = 0 }, "offset 0 is not a data offset"},
		{"missing volume", func(idx *Index) { idx.Files[1].Volume = 7 }, "volume 7 does not exist"},
		{"listed twice", func(idx *Index) {
			f := idx.Files[1]
			f.Offset, f.Size = 9216, 11
			idx.Files = append(idx.Files, f)
		}, blob + `": listed twice`},
		{"two markers in a volume", func(idx *Index) { idx.Files[2].Volume = 0; idx.Files[2].Offset = 4096 }, "marker at offset 4096"},
		{"volume without marker", func(idx *Index) { idx.Files = idx.Files[:2] }, "volume 1 has no ferry-volume.json"},
		{"overlap", func(idx *Index) { idx.Files[3].Size = 1536 }, "overlap in volume 1"},
		{"file and directory", func(idx *Index) { idx.Files[4].Name = "mirror/signatures"; idx.Files[1].Name = "mirror/signatures/x" },
			`"mirror/signatures" is both a file and the directory`},
		{"bad image digest", func(idx *Index) { idx.Images[0].Digest = "sha256:xyz" }, "images[0] sha256:xyz: digest"},
		{"image of another algorithm", func(idx *Index) { idx.Images[0].Digest = digest.Digest("sha512:" + hexA + hexA) }, "unsupported digest algorithm"},
		{"unknown role", func(idx *Index) { idx.Images[0].Role = "extra" }, `role "extra"`},
		{"target climbing out", func(idx *Index) { idx.Images[0].Target = "../../other" }, `target "../../other" is not a repository path`},
		{"target with a dot-dot component", func(idx *Index) { idx.Images[0].Target = "org/../other" }, `target "org/../other"`},
		{"target with a leading slash", func(idx *Index) { idx.Images[0].Target = "/org/tool" }, `target "/org/tool"`},
		{"target with a trailing slash", func(idx *Index) { idx.Images[0].Target = "org/tool/" }, `target "org/tool/"`},
		{"target with an empty component", func(idx *Index) { idx.Images[0].Target = "org//tool" }, `target "org//tool"`},
		{"target with a host", func(idx *Index) { idx.Images[0].Target = "evil.example:5000/tool" }, `target "evil.example:5000/tool"`},
		{"target with a tag", func(idx *Index) { idx.Images[0].Target = "org/tool:v1" }, `target "org/tool:v1"`},
		{"target upper case", func(idx *Index) { idx.Images[0].Target = "Org/tool" }, `target "Org/tool"`},
		{"target too long", func(idx *Index) { idx.Images[0].Target = strings.Repeat("a/", 128) + "a" }, "target of 257 characters, more than 255"},
		{"bad release signature name", func(idx *Index) {
			idx.Releases = []Release{{Digest: digest.FromString("r"), Signatures: []ReleaseSignature{{File: "/tmp/sig"}}}}
		}, "releases[0]: signatures[0] file"},
		{"prerequisite twice", func(idx *Index) {
			p := Prerequisite{Digest: digest.FromString("p"), MediaType: "x", Size: 1}
			idx.Prerequisites = []Prerequisite{p, p}
		}, "listed twice"},
		{"prerequisite twice in one path", func(idx *Index) {
			p := Prerequisite{Digest: digest.FromString("p"), MediaType: "x", Size: 1, Target: "org/tool"}
			idx.Prerequisites = []Prerequisite{p, p}
		}, "listed twice"},
		{"prerequisite target climbing out", func(idx *Index) {
			idx.Prerequisites = []Prerequisite{{Digest: digest.FromString("p"), MediaType: "x", Size: 1, Target: "../other"}}
		}, `target "../other" is not a repository path`},
		{"additional image's moved-from digest", func(idx *Index) {
			idx.Additional = []AdditionalImage{{Ref: "r/x:v1", Source: "r/x", Digest: digest.FromString("x"), MovedFrom: "sha256:1", Target: "x"}}
		}, "additionalImages[0] r/x:v1: movedFrom"},
		{"additional image's source digest", func(idx *Index) {
			idx.Additional = []AdditionalImage{{Ref: "r/x:v1", Source: "r/x", Digest: digest.FromString("x"), SourceDigest: "md5:1", Target: "x"}}
		}, "additionalImages[0] r/x:v1: sourceDigest"},
		{"one digest, two media types", func(idx *Index) {
			im := idx.Images[0]
			im.Source, im.MediaType = "docker.io/library/nginx", "application/vnd.oci.image.index.v1+json"
			idx.Images = append(idx.Images, im)
		}, "images[1]: " + digest.FromString("b").String() + " is application/vnd.oci.image.index.v1+json"},
		{"one digest, two sizes", func(idx *Index) {
			im := idx.Images[0]
			im.Size++
			idx.Images = append(idx.Images, im)
		}, "but images[0] says"},
		{"a prerequisite that is a manifest", func(idx *Index) {
			idx.Prerequisites = []Prerequisite{{Digest: idx.Images[0].Digest, MediaType: "application/vnd.oci.image.layer.v1.tar", Size: 1}}
		}, "prerequisites[0]: "},
		{"options not an object", func(idx *Index) { idx.Options = json.RawMessage(`[1]`) }, "options: not a JSON object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			idx := validIndex()
			c.edit(idx)
			data, err := json.Marshal(idx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseIndex(bytes.NewReader(data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestParseIndexTargets: a Target is empty or a repository path, as
// distribution names them.
func TestParseIndexTargets(t *testing.T) {
	for _, target := range []string{"", "org/tool", "graph-image", "a__b/c.d/e--f", strings.Repeat("a", MaxTargetLength)} {
		idx := validIndex()
		idx.Images[0].Target = target
		data, err := json.Marshal(idx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseIndex(bytes.NewReader(data)); err != nil {
			t.Errorf("target %q: %v", target, err)
		}
	}
}

// TestParseIndexPrerequisitePerPath: one blob may be a prerequisite of the
// target and of a path under it, once each.
func TestParseIndexPrerequisitePerPath(t *testing.T) {
	idx := validIndex()
	p := Prerequisite{Digest: digest.FromString("p"), MediaType: "x", Size: 1}
	inPath := p
	inPath.Target = "graph-image"
	idx.Prerequisites = []Prerequisite{p, inPath}
	data, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseIndex(bytes.NewReader(data)); err != nil {
		t.Errorf("a prerequisite of the target and of graph-image: %v", err)
	}
}

func TestParseIndexRefusesRaw(t *testing.T) {
	valid, _ := json.Marshal(validIndex())
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"unknown field", append([]byte(`{"bogus":1,`), valid[1:]...), `unknown field "bogus"`},
		{"newer version with new fields", []byte(`{"formatVersion":2,"novelty":true}`), "unsupported formatVersion 2"},
		{"no version", []byte(`{"id":"x"}`), "formatVersion missing"},
		{"trailing data", append(append([]byte(nil), valid...), `{}`...), "after top-level value"},
		{"not JSON", []byte("PK\x03\x04"), "parsing index"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseIndex(bytes.NewReader(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestParseIndexTooLarge(t *testing.T) {
	_, err := ParseIndex(io.MultiReader(spaces{}, bytes.NewReader([]byte("{}"))))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}

// spaces is an endless stream of JSON white space.
type spaces struct{}

var spaceBlock = bytes.Repeat([]byte(" "), 64<<10)

func (spaces) Read(p []byte) (int, error) {
	return copy(p, spaceBlock), nil
}

func TestLayout(t *testing.T) {
	if got := string(OCILayout()); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %s", got)
	}
	d := digest.FromString("m")
	data, err := OCIIndex([]LayoutEntry{
		{Digest: d, MediaType: MediaTypeDockerManifestList, Size: 3, RefName: "4.15.0-x86_64"},
		{Digest: d, MediaType: MediaTypeDockerManifestList, Size: 3, RefName: "4.15.0-x86_64"},
		{Digest: d, MediaType: MediaTypeDockerManifestList, Size: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, entries, err := parseManifest(data, "application/vnd.oci.image.index.v1+json")
	if err != nil || len(entries) != 2 || entries[0].MediaType != MediaTypeDockerManifestList {
		t.Fatalf("entries %+v: %v", entries, err)
	}
	if !strings.Contains(string(data), `"org.opencontainers.image.ref.name": "4.15.0-x86_64"`) {
		t.Errorf("no ref name annotation in %s", data)
	}
	if _, err := OCIIndex([]LayoutEntry{{Digest: "sha256:nope", MediaType: "x"}}); err == nil {
		t.Error("a bad digest was accepted")
	}
	if got, want := BlobName(d), "mirror/oci/blobs/sha256/"+d.Encoded(); got != want {
		t.Errorf("BlobName = %s, want %s", got, want)
	}
	if got := BlobName("garbage"); checkName(got) == nil {
		t.Errorf("BlobName of garbage gives the valid name %s", got)
	}
	if got, want := SignatureName(d, 2), "mirror/signatures/sha256="+d.Encoded()+"/signature-2"; got != want {
		t.Errorf("SignatureName = %s, want %s", got, want)
	}
}
