package graphdata

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
)

// testBaseCreated is the created time of the test's base image.
const testBaseCreated = "2024-05-01T10:00:00Z"

// testBase is a base image of one layer (a stand-in bash), in the OCI or
// the Docker schema, with config fields ferry does not know. It returns
// the base and its layer.
func testBase(t testing.TB, docker bool) (BaseImage, []byte) {
	t.Helper()
	layerTar := tarOf(t, []entry{{name: "bin/", typ: tar.TypeDir, mode: 0o755}, {name: "bin/bash", data: []byte("#!bash"), mode: 0o755}})
	layer := gzipOf(t, layerTar)
	config := []byte(`{"architecture":"amd64","os":"linux","created":"` + testBaseCreated + `",` +
		`"config":{"Entrypoint":["/usr/bin/entry"],"Cmd":["/bin/sh"],"Env":["PATH=/usr/bin"],"Labels":{"vendor":"Red Hat & co <x>"},"StopSignal":"SIGTERM"},` +
		`"rootfs":{"type":"layers","diff_ids":["` + digest.FromBytes(layerTar).String() + `"]},` +
		`"history":[{"created":"` + testBaseCreated + `","created_by":"base layer"}],` +
		`"container_config":{"Hostname":"build"},"x-vendor":{"keep":[1,2,3]}}`)
	mediaType, configType, layerType := imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageConfig, imgspecv1.MediaTypeImageLayerGzip
	if docker {
		mediaType, configType, layerType = manifest.DockerV2Schema2MediaType, manifest.DockerV2Schema2ConfigMediaType, manifest.DockerV2Schema2LayerMediaType
	}
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaType,
		"config":        map[string]any{"mediaType": configType, "digest": digest.FromBytes(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": layerType, "digest": digest.FromBytes(layer), "size": len(layer),
			"annotations": map[string]string{"org.example.layer": "base"}}},
		"annotations": map[string]string{"org.opencontainers.image.base.name": "ubi9"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return BaseImage{Manifest: m, MediaType: mediaType, Config: config}, layer
}

// fixtureData fetches the fixture from its directory.
func fixtureData(t *testing.T) *Data {
	t.Helper()
	dir, _ := fixture(t)
	d, err := Fetch(context.Background(), fileURL(dir), FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The same data, read from a directory and from a tarball with other
// times and a prefix, on the same base, is the same image.
func TestBuildImageIsReproducible(t *testing.T) {
	base, _ := testBase(t, false)
	fromDir := fixtureData(t)
	_, files := fixture(t)
	archive := gzipOf(t, tarOf(t, dataEntries(files, "cincinnati-graph-data-731d0424/")))
	fromTarball, err := Fetch(context.Background(), writeTemp(t, "data.tar.gz", archive), FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := BuildImage(base, fromDir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := BuildImage(base, fromTarball)
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest != second.Digest || !bytes.Equal(first.Manifest, second.Manifest) {
		t.Fatalf("two builds: %s and %s", first.Digest, second.Digest)
	}
	for i := range first.Blobs {
		if first.Blobs[i].Digest != second.Blobs[i].Digest {
			t.Errorf("blob %d: %s and %s", i, first.Blobs[i].Digest, second.Blobs[i].Digest)
		}
	}

	// Other data is another image.
	fewer := *fromDir
	fewer.Files = slices.DeleteFunc(slices.Clone(fromDir.Files), func(f File) bool { return strings.HasPrefix(f.Name, "blocked-edges/4.14") })
	third, err := BuildImage(base, &fewer)
	if err != nil {
		t.Fatal(err)
	}
	if third.Digest == first.Digest {
		t.Error("fewer blocked edges, same digest")
	}
}

// layerFile is a data layer entry as the test reads it back.
type layerFile struct {
	typ          byte
	mode         int64
	uid, gid     int
	uname, gname string
	mtime        time.Time
	data         []byte
	linkname     string
}

func TestBuildImageLayer(t *testing.T) {
	base, _ := testBase(t, false)
	d := fixtureData(t)
	img, err := BuildImage(base, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Blobs) != 2 {
		t.Fatalf("%d new blobs, want config and layer", len(img.Blobs))
	}
	layer := img.Blobs[1]
	if layer.MediaType != imgspecv1.MediaTypeImageLayerGzip || layer.Digest != digest.FromBytes(layer.Data) {
		t.Fatalf("layer %s %s", layer.MediaType, layer.Digest)
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer.Data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() || zr.OS != 255 || zr.Comment != "" {
		t.Errorf("gzip header %+v", zr.Header)
	}
	tarBytes, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}

	var names []string
	got := map[string]layerFile{}
	tr := tar.NewReader(bytes.NewReader(tarBytes))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		got[hdr.Name] = layerFile{typ: hdr.Typeflag, mode: hdr.Mode, uid: hdr.Uid, gid: hdr.Gid, uname: hdr.Uname, gname: hdr.Gname,
			mtime: hdr.ModTime, data: data, linkname: hdr.Linkname}
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries not in name order: %v", names)
	}

	// What the layer must hold: the directories down to the data, its
	// three directories, and every file of the data.
	want := map[string]layerFile{}
	for _, dir := range []string{"var/", "var/lib/", "var/lib/cincinnati-graph-data/", "var/lib/cincinnati-graph-data/blocked-edges/",
		"var/lib/cincinnati-graph-data/channels/", "var/lib/cincinnati-graph-data/raw/"} {
		want[dir] = layerFile{typ: tar.TypeDir, mode: 0o755, mtime: time.Unix(0, 0)}
	}
	for _, f := range d.Files {
		want["var/lib/cincinnati-graph-data/"+f.Name] = layerFile{typ: tar.TypeReg, mode: 0o644, mtime: time.Unix(0, 0), data: f.Data}
	}
	if len(got) != len(want) || len(names) != len(want) {
		t.Errorf("%d entries (%d names), want %d", len(got), len(names), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if g.typ != w.typ || g.mode != w.mode || g.uid != 0 || g.gid != 0 || g.uname != "" || g.gname != "" ||
			!g.mtime.Equal(w.mtime) || !bytes.Equal(g.data, w.data) || g.linkname != "" {
			t.Errorf("%s: type %c mode %o uid %d gid %d (%q:%q) mtime %s, %d bytes; want type %c mode %o uid 0 gid 0 mtime %s, %d bytes",
				name, g.typ, g.mode, g.uid, g.gid, g.uname, g.gname, g.mtime, len(g.data), w.typ, w.mode, w.mtime, len(w.data))
		}
	}
	if _, ok := got["var/lib/cincinnati-graph-data/LICENSE"]; ok {
		t.Error("the layer holds LICENSE, which the service does not read")
	}
	for _, n := range []string{"version", "raw/metadata.json", "channels/stable-4.15.yaml", "blocked-edges/4.15.29-OVNIPsecPausedMCPConnectivity.yaml"} {
		if _, ok := got[path.Join("var/lib/cincinnati-graph-data", n)]; !ok {
			t.Errorf("the layer lacks %s", n)
		}
	}

	// The config names the layer by the digest of its tar.
	var config struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(img.Blobs[0].Data, &config); err != nil {
		t.Fatal(err)
	}
	if ids := config.RootFS.DiffIDs; len(ids) != 2 || ids[1] != digest.FromBytes(tarBytes) {
		t.Errorf("diff_ids %v, want the base's and %s", ids, digest.FromBytes(tarBytes))
	}
}
