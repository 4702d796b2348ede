package graphdata

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
)

// wantCmd is the graph-data image's command as Red Hat documents it.
var wantCmd = []string{"/bin/bash", "-c", "exec cp -rp /var/lib/cincinnati-graph-data/* /var/lib/cincinnati/graph-data"}

func TestBuildImageConfigAndManifest(t *testing.T) {
	d := fixtureData(t)
	for name, docker := range map[string]bool{"OCI": false, "Docker schema 2": true} {
		t.Run(name, func(t *testing.T) {
			base, baseLayer := testBase(t, docker)
			img, err := BuildImage(base, d)
			if err != nil {
				t.Fatal(err)
			}
			wantManifest, wantConfig, wantLayer := imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageConfig, imgspecv1.MediaTypeImageLayerGzip
			if docker {
				wantManifest, wantConfig, wantLayer = manifest.DockerV2Schema2MediaType, manifest.DockerV2Schema2ConfigMediaType, manifest.DockerV2Schema2LayerMediaType
			}
			checkManifest(t, img, base, baseLayer, wantManifest, wantConfig, wantLayer)
			checkConfig(t, img.Blobs[0].Data, base.Config)
		})
	}
}

func checkManifest(t *testing.T, img *Image, base BaseImage, baseLayer []byte, wantManifest, wantConfig, wantLayer string) {
	t.Helper()
	if img.MediaType != wantManifest || img.Digest != digest.FromBytes(img.Manifest) {
		t.Errorf("image %s %s", img.MediaType, img.Digest)
	}
	var m struct {
		SchemaVersion int
		MediaType     string
		Config        struct {
			MediaType string
			Digest    digest.Digest
			Size      int64
		}
		Layers []struct {
			MediaType   string
			Digest      digest.Digest
			Size        int64
			Annotations map[string]string
		}
		Annotations map[string]string
	}
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	config, layer := img.Blobs[0], img.Blobs[1]
	if m.SchemaVersion != 2 || m.MediaType != wantManifest || m.Annotations != nil {
		t.Errorf("manifest %s", img.Manifest)
	}
	if m.Config.MediaType != wantConfig || config.MediaType != wantConfig || m.Config.Digest != config.Digest ||
		config.Digest != digest.FromBytes(config.Data) || m.Config.Size != int64(len(config.Data)) {
		t.Errorf("config descriptor %+v, blob %s %s", m.Config, config.MediaType, config.Digest)
	}
	if len(m.Layers) != 2 {
		t.Fatalf("%d layers, want the base's and the data's", len(m.Layers))
	}
	if l := m.Layers[0]; l.Digest != digest.FromBytes(baseLayer) || l.Annotations["org.example.layer"] != "base" {
		t.Errorf("base layer %+v not kept as it was", l)
	}
	if l := m.Layers[1]; l.MediaType != wantLayer || layer.MediaType != wantLayer || l.Digest != layer.Digest || l.Size != int64(len(layer.Data)) {
		t.Errorf("data layer %+v, blob %s %s", l, layer.MediaType, layer.Digest)
	}
}

func checkConfig(t *testing.T, data, baseData []byte) {
	t.Helper()
	var config, base map[string]any
	if err := json.Unmarshal(data, &config); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(baseData, &base); err != nil {
		t.Fatal(err)
	}
	run := config["config"].(map[string]any)
	var cmd []string
	for _, a := range run["Cmd"].([]any) {
		cmd = append(cmd, a.(string))
	}
	if !slices.Equal(cmd, wantCmd) {
		t.Errorf("Cmd %q, want %q", cmd, wantCmd)
	}
	if _, ok := run["Entrypoint"]; ok {
		t.Errorf("Entrypoint %v kept: the command would run as its argument", run["Entrypoint"])
	}
	if config["created"] != testBaseCreated {
		t.Errorf("created %v, want the base's %s", config["created"], testBaseCreated)
	}
	// Everything else of the base is kept, unknown fields included.
	for _, key := range []string{"architecture", "os", "container_config", "x-vendor"} {
		if a, b := mustJSON(t, config[key]), mustJSON(t, base[key]); a != b {
			t.Errorf("%s: %s, base %s", key, a, b)
		}
	}
	baseRun := base["config"].(map[string]any)
	for _, key := range []string{"Env", "Labels", "StopSignal"} {
		if a, b := mustJSON(t, run[key]), mustJSON(t, baseRun[key]); a != b {
			t.Errorf("config.%s: %s, base %s", key, a, b)
		}
	}
	if !strings.Contains(string(data), "Red Hat & co <x>") {
		t.Errorf("a base label's <, > or & escaped: %s", data)
	}
	history := config["history"].([]any)
	if len(history) != 2 || mustJSON(t, history[0]) != mustJSON(t, base["history"].([]any)[0]) {
		t.Fatalf("history %v", history)
	}
	added := history[1].(map[string]any)
	if added["created"] != testBaseCreated || !strings.Contains(added["created_by"].(string), "/var/lib/cincinnati-graph-data/") ||
		!strings.Contains(added["created_by"].(string), "schema 1.1.0, 2 channels, 488 blocked edges") {
		t.Errorf("history entry %v", added)
	}
	rootfs := config["rootfs"].(map[string]any)
	if ids := rootfs["diff_ids"].([]any); rootfs["type"] != "layers" || len(ids) != 2 || ids[0] != base["rootfs"].(map[string]any)["diff_ids"].([]any)[0] {
		t.Errorf("rootfs %v", rootfs)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A base without a created time gets the Unix epoch: no time of the
// build ever enters the image.
func TestBuildImageWithoutCreated(t *testing.T) {
	base, _ := testBase(t, false)
	var config map[string]any
	if err := json.Unmarshal(base.Config, &config); err != nil {
		t.Fatal(err)
	}
	delete(config, "created")
	delete(config, "history")
	base = withConfig(t, base, mustJSON(t, config))
	img, err := BuildImage(base, fixtureData(t))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Created string
		History []struct {
			Created string
		}
	}
	if err := json.Unmarshal(img.Blobs[0].Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Created != "1970-01-01T00:00:00Z" || len(got.History) != 1 || got.History[0].Created != got.Created {
		t.Errorf("created %q, history %+v", got.Created, got.History)
	}
}

// withConfig is base with config in place of its config, the manifest
// naming it.
func withConfig(t *testing.T, base BaseImage, config string) BaseImage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(base.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	desc := m["config"].(map[string]any)
	desc["digest"], desc["size"] = digest.FromString(config), len(config)
	return BaseImage{Manifest: []byte(mustJSON(t, m)), MediaType: base.MediaType, Config: []byte(config)}
}

func TestBuildImageRefuses(t *testing.T) {
	d := fixtureData(t)
	base, _ := testBase(t, false)
	edit := func(f func(m map[string]any)) BaseImage {
		var m map[string]any
		if err := json.Unmarshal(base.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		return BaseImage{Manifest: []byte(mustJSON(t, m)), Config: base.Config}
	}
	bad := func(f func(*Data)) *Data {
		c := *d
		c.Files = slices.Clone(d.Files)
		f(&c)
		return &c
	}
	for name, c := range map[string]struct {
		base BaseImage
		data *Data
		want string
	}{
		"an index": {BaseImage{Manifest: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`),
			MediaType: imgspecv1.MediaTypeImageIndex}, d, "multi-platform"},
		"a manifest list": {BaseImage{Manifest: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`)},
			d, "multi-platform"},
		"media types disagree": {BaseImage{Manifest: base.Manifest, MediaType: manifest.DockerV2Schema2MediaType, Config: base.Config}, d, "the manifest says"},
		"no media type":        {edit(func(m map[string]any) { delete(m, "mediaType") }), d, "no media type"},
		"an artifact":          {edit(func(m map[string]any) { m["artifactType"] = "application/vnd.example" }), d, "artifact"},
		"a helm chart": {edit(func(m map[string]any) {
			m["config"].(map[string]any)["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
		}), d, "not a container image config"},
		"config not the named": {BaseImage{Manifest: base.Manifest, MediaType: base.MediaType, Config: append([]byte(" "), base.Config...)}, d, "the manifest names"},
		"diff IDs disagree":    {withConfig(t, base, strings.Replace(string(base.Config), `"diff_ids":[`, `"diff_ids":["sha256:`+strings.Repeat("0", 64)+`",`, 1)), d, "lists 2 layers, the manifest 1"},
		"config not an object": {withConfig(t, base, `[1]`), d, "cannot unmarshal"},
		"unsafe data file":     {base, bad(func(c *Data) { c.Files = append(c.Files, File{Name: "../../etc/passwd"}) }), "not one the update service reads"},
		"files out of order":   {base, bad(func(c *Data) { slices.Reverse(c.Files) }), "not sorted"},
		"file twice":           {base, bad(func(c *Data) { c.Files = slices.Insert(c.Files, 0, c.Files[0]) }), "listed twice"},
		"no version":           {base, bad(func(c *Data) { c.Files = slices.DeleteFunc(c.Files, func(f File) bool { return f.Name == "version" }) }), "no version"},
		"no data":              {base, nil, "no graph data"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := BuildImage(c.base, c.data)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v: want one saying %q", err, c.want)
			}
			t.Log(err)
		})
	}
}
