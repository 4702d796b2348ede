package release

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseImageReferences(t *testing.T) {
	refs, err := ParseImageReferences(readTestdata(t, "image-references.json"))
	if err != nil {
		t.Fatal(err)
	}
	if refs.Version != "4.15.0" {
		t.Errorf("Version = %q", refs.Version)
	}
	const repo = "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
	want := []Component{
		{Name: "cluster-version-operator", Repository: repo, Digest: digest.Digest("sha256:" + strings.Repeat("1", 64))},
		{Name: "etcd", Repository: repo, Digest: digest.Digest("sha256:" + strings.Repeat("2", 64))},
		{Name: "rhel-coreos", Repository: repo, Digest: digest.Digest("sha256:" + strings.Repeat("3", 64))},
	}
	if len(refs.Components) != len(want) {
		t.Fatalf("got %d components, want %d (ImageStreamTag entries do not count): %+v", len(refs.Components), len(want), refs.Components)
	}
	for i, w := range want {
		w.Image = w.Repository + "@" + w.Digest.String()
		if refs.Components[i] != w {
			t.Errorf("component %d = %+v, want %+v", i, refs.Components[i], w)
		}
	}
}

// imageStreamJSON builds an image-references document from tag entries.
func imageStreamJSON(kind, apiVersion, name string, tags ...string) string {
	return fmt.Sprintf(`{"kind":%q,"apiVersion":%q,"metadata":{"name":%q},"spec":{"tags":[%s]}}`,
		kind, apiVersion, name, strings.Join(tags, ","))
}

func tagJSON(name, kind, from string) string {
	return fmt.Sprintf(`{"name":%q,"annotations":{},"from":{"kind":%q,"name":%q}}`, name, kind, from)
}

func TestParseImageReferencesErrors(t *testing.T) {
	good := "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:" + hexA
	ok := tagJSON("etcd", "DockerImage", good)
	for _, tc := range []struct{ name, doc, msg string }{
		{"tag not digest", imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0", ok,
			tagJSON("cli", "DockerImage", "quay.io/openshift-release-dev/ocp-v4.0-art-dev:latest")), `component "cli"`},
		{"tag and digest", imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0",
			tagJSON("cli", "DockerImage", "quay.io/x/y:latest@sha256:"+hexA)), `component "cli"`},
		{"bad digest", imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0",
			tagJSON("cli", "DockerImage", "quay.io/x/y@sha256:1234")), `component "cli"`},
		{"empty image", imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0",
			tagJSON("cli", "DockerImage", "")), `component "cli"`},
		{"duplicate", imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0", ok, ok), `"etcd" is listed twice`},
		{"bad name", imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0",
			tagJSON("a/b", "DockerImage", good)), "invalid component name"},
		{"wrong kind", imageStreamJSON("ImageStreamList", "image.openshift.io/v1", "4.15.0", ok), "kind"},
		{"wrong apiVersion", imageStreamJSON("ImageStream", "v1", "4.15.0", ok), "apiVersion"},
		{"bad version", imageStreamJSON("ImageStream", "image.openshift.io/v1", "latest", ok), "metadata.name"},
		{"no components", imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0",
			tagJSON("x", "ImageStreamTag", "x:latest")), "no DockerImage components"},
		{"trailing data", imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0", ok) + "{}", "data after"},
		{"not json", "ImageStream", "invalid JSON"},
		{"wrong type", `{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"4.15.0"},"spec":{"tags":{}}}`, "invalid JSON"},
		{"too big", imageStreamJSON("ImageStream", "image.openshift.io/v1", "4.15.0", ok) + strings.Repeat(" ", MaxImageReferencesSize), "larger than"},
	} {
		_, err := ParseImageReferences([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error = %v, want it to contain %q", tc.name, err, tc.msg)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	m, err := ParseMetadata(readTestdata(t, "release-metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "4.15.0" || len(m.Previous) != 3 || m.Metadata["url"] == "" {
		t.Errorf("got %+v", m)
	}
	for _, tc := range []struct{ name, doc, msg string }{
		{"kind", `{"kind":"cincinnati-metadata-v1","version":"4.15.0"}`, "kind"},
		{"no kind", `{"version":"4.15.0"}`, "kind"},
		{"version", `{"kind":"cincinnati-metadata-v0","version":"4.15"}`, "version"},
		{"previous", `{"kind":"cincinnati-metadata-v0","version":"4.15.0","previous":["4.14.x"]}`, "previous[0]"},
		{"next", `{"kind":"cincinnati-metadata-v0","version":"4.15.0","next":["4.15.1","x"]}`, "next[1]"},
		{"metadata type", `{"kind":"cincinnati-metadata-v0","version":"4.15.0","metadata":{"a":1}}`, "invalid JSON"},
		{"trailing", `{"kind":"cincinnati-metadata-v0","version":"4.15.0"} x`, "data after"},
		{"too big", `{"kind":"cincinnati-metadata-v0","version":"4.15.0"}` + strings.Repeat(" ", MaxMetadataSize), "larger than"},
	} {
		_, err := ParseMetadata([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error = %v, want it to contain %q", tc.name, err, tc.msg)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	files := &Files{
		ImageReferences: readTestdata(t, "image-references.json"),
		Metadata:        readTestdata(t, "release-metadata.json"),
	}
	if _, _, err := files.Parse(); err != nil {
		t.Fatal(err)
	}
	files.Metadata = bytes.Replace(files.Metadata, []byte(`"version": "4.15.0"`), []byte(`"version": "4.15.1"`), 1)
	_, _, err := files.Parse()
	if err == nil || !strings.Contains(err.Error(), `"4.15.1"`) {
		t.Errorf("mismatched versions: error = %v", err)
	}
}
