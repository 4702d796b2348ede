package catalog

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// TestReadFBCRealCatalogs reads the real catalogs of the fixtures as a
// Red Hat catalog image lays them out: a base layer, the FBC (a JSON
// stream, gzip) in one layer, a YAML stream (zstd) in another, and opm's
// cache beside them. Every package, channel and bundle is there, and the
// result is a valid catalog by operator-registry's own model.
func TestReadFBCRealCatalogs(t *testing.T) {
	base := gzLayer(t, dir("bin/"), file("bin/opm", "\x7fELF"), dir("etc/"), file("etc/os-release", "ID=rhel\n"))
	descheduler := gzLayer(t, dir("configs/"), dir("configs/cluster-kube-descheduler-operator/"),
		file("configs/cluster-kube-descheduler-operator/catalog.json", string(readFixture(t, deschedulerFixture))))
	quay := zstded(t, plainTar(t, dir("configs/project-quay/"),
		file("configs/project-quay/catalog.yaml", string(readFixture(t, quayFixture)))))
	cache := gzLayer(t, dir("tmp/cache/"), file("tmp/cache/digest", "not an FBC"), file("tmp/cache/cache.json", "{not json"))

	cfg, err := readImage(t, base, descheduler, quay, cache)
	wantPackages(t, cfg, err, "cluster-kube-descheduler-operator", "project-quay")

	type counts struct{ channels, bundles int }
	got := map[string]counts{}
	for _, ch := range cfg.Channels {
		c := got[ch.Package]
		c.channels++
		got[ch.Package] = c
	}
	for _, b := range cfg.Bundles {
		c := got[b.Package]
		c.bundles++
		got[b.Package] = c
	}
	want := map[string]counts{
		"cluster-kube-descheduler-operator": {channels: 2, bundles: 11},
		"project-quay":                      {channels: 12, bundles: 152},
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %+v, want %+v", p, got[p], w)
		}
	}
	for _, p := range cfg.Packages {
		if p.Name == "project-quay" && p.DefaultChannel != "stable-3.17" {
			t.Errorf("project-quay default channel %q, want stable-3.17", p.DefaultChannel)
		}
	}
	m, err := declcfg.ConvertToModel(*cfg)
	if err != nil {
		t.Fatalf("not a valid catalog: %v", err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("not a valid catalog: %v", err)
	}
}

// TestReadFBCWhiteouts: the layers are flattened as a container runtime
// flattens them, so the catalog is what opm in the running image serves.
func TestReadFBCWhiteouts(t *testing.T) {
	lower := gzLayer(t, dir("configs/"),
		file("configs/a/catalog.json", pkg("a")),
		file("configs/b/catalog.json", pkg("b")))
	tests := []struct {
		name   string
		layers [][]byte // above lower, base first
		want   []string
	}{
		{"a file whited out", [][]byte{gzLayer(t, whiteout("configs/b/catalog.json"))}, []string{"a"}},
		{"a directory whited out", [][]byte{gzLayer(t, whiteout("configs/b"))}, []string{"a"}},
		{"an opaque directory", [][]byte{gzLayer(t, dir("configs/"), opaque("configs"), file("configs/c/catalog.json", pkg("c")))}, []string{"c"}},
		{"an opaque root", [][]byte{gzLayer(t, opaque("."), file("configs/c/catalog.json", pkg("c")))}, []string{"c"}},
		{"a file replaced", [][]byte{gzLayer(t, file("configs/b/catalog.json", pkg("b2")))}, []string{"a", "b2"}},
		{"a directory replaced by a file", [][]byte{gzLayer(t, file("configs/b", pkg("b3")))}, []string{"a", "b3"}},
		{"a whiteout spares its own layer", [][]byte{gzLayer(t, whiteout("configs/a"), file("configs/a/catalog.json", pkg("a2")))}, []string{"a2", "b"}},
		{"a whited-out directory made anew", [][]byte{
			gzLayer(t, whiteout("configs/a")),
			gzLayer(t, file("configs/a/new.json", pkg("a3"))),
		}, []string{"a3", "b"}},
		{"a directory replaced by a file and made anew", [][]byte{
			gzLayer(t, file("configs/a", "not a catalog")),
			gzLayer(t, dir("configs/a/"), file("configs/a/x.json", pkg("a4"))),
		}, []string{"a4", "b"}},
		{"an opaque directory under a directory above", [][]byte{
			gzLayer(t, opaque("configs/a"), file("configs/a/y.json", pkg("a5"))),
			gzLayer(t, dir("configs/a/")),
		}, []string{"a5", "b"}},
		{"a whiteout of the whiteout's target below only", [][]byte{
			gzLayer(t, file("configs/c/catalog.json", pkg("c"))),
			gzLayer(t, whiteout("configs/c")),
			gzLayer(t, file("configs/c/catalog.json", pkg("c2"))),
		}, []string{"a", "b", "c2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := readImage(t, append([][]byte{lower}, tt.layers...)...)
			wantPackages(t, cfg, err, tt.want...)
		})
	}

	t.Run("the configs directory whited out", func(t *testing.T) {
		_, err := readImage(t, lower, gzLayer(t, whiteout("configs")))
		wantErrorContaining(t, err, "no directory /configs")
	})
	t.Run("a parent of the configs directory whited out", func(t *testing.T) {
		ls, _ := image(gzLayer(t, file("etc/catalog/a/catalog.json", pkg("a"))), gzLayer(t, whiteout("etc")))
		_, err := ReadFBC(t.Context(), ls, "/etc/catalog")
		wantErrorContaining(t, err, "no directory /etc/catalog")
	})
}

// TestReadFBCStopsBelowHiddenConfigs: once the layers read hide the
// configs directory of the layers below (as a catalog rebuilt with a
// whiteout of it does), the layers below are not opened at all.
func TestReadFBCStopsBelowHiddenConfigs(t *testing.T) {
	for name, top := range map[string][]byte{
		"opaque":   gzLayer(t, dir("configs/"), opaque("configs"), file("configs/f/catalog.json", pkg("filtered"))),
		"whiteout": gzLayer(t, whiteout("configs"), file("configs/f/catalog.json", pkg("filtered"))),
	} {
		t.Run(name, func(t *testing.T) {
			ls, ops := image(
				gzLayer(t, file("bin/opm", "\x7fELF")),
				gzLayer(t, file("configs/a/catalog.json", pkg("a"))),
				top)
			cfg, err := ReadFBC(t.Context(), ls, "/configs")
			wantPackages(t, cfg, err, "filtered")
			if ops[0].opened || ops[1].opened {
				t.Errorf("layers below the rebuilt configs were opened: base %v, configs %v", ops[0].opened, ops[1].opened)
			}
		})
	}
}

// TestReadFBCIndexIgnore: .indexignore files exclude what they name, in
// their directory and below, as opm's walk does; the files themselves are
// not read as catalog.
func TestReadFBCIndexIgnore(t *testing.T) {
	layer := gzLayer(t,
		file("configs/.indexignore", "# not catalog\n*.md\n/drafts\n"),
		file("configs/README.md", "# Catalog\nnot YAML: [\n"),
		file("configs/drafts/wip.json", "{broken"),
		file("configs/a/catalog.json", pkg("a")),
		file("configs/b/.indexignore", "notes.txt\nlink\n"),
		file("configs/b/notes.txt", "key: [unbalanced"),
		symlink("configs/b/link", "/etc/passwd"),
		file("configs/b/catalog.yaml", "---\nschema: olm.package\nname: b\ndefaultChannel: stable\n"+
			"---\nschema: olm.channel\nname: stable\npackage: b\nentries:\n- name: b.v1\n"+
			"---\nschema: olm.bundle\nname: b.v1\npackage: b\nimage: example.com/b@sha256:"+strings.Repeat("b", 64)+"\n"+
			"properties:\n- type: olm.package\n  value:\n    packageName: b\n    version: 1.0.0\n"),
	)
	cfg, err := readImage(t, layer)
	wantPackages(t, cfg, err, "a", "b")
	if len(cfg.Bundles) != 2 || len(cfg.Channels) != 2 {
		t.Errorf("%d bundles and %d channels, want 2 and 2", len(cfg.Bundles), len(cfg.Channels))
	}

	t.Run("an ignore file in one directory spares its siblings", func(t *testing.T) {
		_, err := readImage(t, gzLayer(t,
			file("configs/a/.indexignore", "*.md\n"),
			file("configs/a/catalog.json", pkg("a")),
			file("configs/b/README.md", "not: [yaml")))
		wantErrorContaining(t, err, "/configs/b/README.md")
	})
}

// TestReadFBCOutsideConfigs: only the directory the label names is read:
// files beside it, and a directory whose name only starts like it, are
// streamed past unread; so is a PAX global header, which is no file.
func TestReadFBCOutsideConfigs(t *testing.T) {
	cfg, err := readImage(t, gzLayer(t,
		entry{name: "configs/pax_global_header", typ: tar.TypeXGlobalHeader}, // as git archive writes
		file("configs/a/catalog.json", pkg("a")),
		file("configs-old/catalog.json", "{broken"),
		file("tmp/cache/packages.json", "{broken"),
		file("etc/configs/x.json", "{broken"),
		symlink("opt/configs", "/configs"),
	))
	wantPackages(t, cfg, err, "a")

	for _, label := range []string{"/configs/", "configs", "./configs", "/configs/../configs"} {
		ls, _ := image(gzLayer(t, file("configs/a/catalog.json", pkg("a"))))
		cfg, err := ReadFBC(t.Context(), ls, label)
		wantPackages(t, cfg, err, "a")
	}
	ls, _ := image(gzLayer(t, file("configs/a/catalog.json", pkg("a")), file("srv/catalog/z/catalog.json", pkg("z"))))
	cfg, err = ReadFBC(t.Context(), ls, "/srv/catalog")
	wantPackages(t, cfg, err, "z")
}

// TestReadFBCUnreadable: what ferry does not read in the configs directory
// (a link opm would follow, a device) fails the read, naming it, unless
// .indexignore excludes it; a configs directory that is itself a link is
// refused; a hard link to a file of the same layer is read as that file.
func TestReadFBCUnreadable(t *testing.T) {
	t.Run("a symbolic link", func(t *testing.T) {
		_, err := readImage(t, gzLayer(t, file("configs/a/catalog.json", pkg("a")), symlink("configs/b/catalog.json", "/opt/b.json")))
		wantErrorContaining(t, err, "b/catalog.json", "symbolic link to /opt/b.json")
	})
	t.Run("a fifo", func(t *testing.T) {
		_, err := readImage(t, gzLayer(t, entry{name: "configs/pipe", typ: '6'}))
		wantErrorContaining(t, err, "pipe", "tar entry of type")
	})
	t.Run("the configs directory a link", func(t *testing.T) {
		_, err := readImage(t, gzLayer(t, file("opt/real/a/catalog.json", pkg("a")), symlink("configs", "/opt/real")))
		wantErrorContaining(t, err, "/configs is a symbolic link to /opt/real")
	})
	t.Run("a hard link within the layer", func(t *testing.T) {
		cfg, err := readImage(t, gzLayer(t,
			file("configs/.indexignore", "/store\n"),
			file("configs/store/a.json", pkg("a")),
			hardlink("configs/a/catalog.json", "configs/store/a.json")))
		wantPackages(t, cfg, err, "a")
	})
	t.Run("a hard link out of the configs directory", func(t *testing.T) {
		_, err := readImage(t, gzLayer(t, file("opt/a.json", pkg("a")), hardlink("configs/a/catalog.json", "opt/a.json")))
		wantErrorContaining(t, err, "a/catalog.json", "hard link to /opt/a.json")
	})
	t.Run("a file and a directory at one path of one layer", func(t *testing.T) {
		_, err := readImage(t, gzLayer(t, file("configs/a", pkg("a")), file("configs/a/catalog.json", pkg("a"))))
		wantErrorContaining(t, err, "/configs/a/catalog.json under /configs/a")
	})
}

// TestReadFBCParseErrors: a document opm would refuse is refused, naming
// its file; the error does not quote a whole document.
func TestReadFBCParseErrors(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	for name, tt := range map[string]struct{ body, want string }{
		"broken JSON":  {`{"schema":"olm.package","name":"a"`, "/configs/a/catalog.json"},
		"no schema":    {`{"name":"a","description":"` + big + `"}`, "/configs/a/catalog.json: a document has no schema field"},
		"wrong fields": {`{"schema":"olm.channel","name":"c","package":"a","entries":"not a list"}`, "parse channel"},
		"broken YAML":  {"schema: olm.package\nname: [a\n", "/configs/a/catalog.json"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := readImage(t, gzLayer(t, file("configs/a/catalog.json", tt.body)))
			wantErrorContaining(t, err, tt.want)
			if len(err.Error()) > 2000 {
				t.Errorf("error of %d bytes", len(err.Error()))
			}
		})
	}
	t.Run("a YAML alias bomb", func(t *testing.T) {
		bomb := "schema: olm.package\nname: a\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
		prev := "a"
		for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
			bomb += n + ": &" + n + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ",") + "]\n"
			prev = n
		}
		_, err := readImage(t, gzLayer(t, file("configs/a/catalog.yaml", bomb)))
		wantErrorContaining(t, err, "/configs/a/catalog.yaml")
	})
}

// TestReadFBCBundleObjects: olm.bundle.object properties are kept as
// written, without the decoded copies operator-registry's loader adds,
// except for a bundle without an image, which its model validates by
// them; objects operator-registry refuses are refused.
func TestReadFBCBundleObjects(t *testing.T) {
	csv := base64.StdEncoding.EncodeToString([]byte(`{"apiVersion":"operators.coreos.com/v1alpha1","kind":"ClusterServiceVersion","metadata":{"name":"a.v1.0.0"}}`))
	// bundle is a.v<version> with one olm.bundle.object of value object.
	bundle := func(version, image, object string) string {
		return fmt.Sprintf(`{"schema":"olm.bundle","name":"a.v%[1]s","package":"a","image":%[2]q,"properties":[`+
			`{"type":"olm.package","value":{"packageName":"a","version":%[1]q}},{"type":"olm.bundle.object","value":%[3]s}]}`+"\n", version, image, object)
	}
	data := func(s string) string { return `{"data":"` + s + `"}` }
	head := `{"schema":"olm.package","name":"a","defaultChannel":"stable"}` + "\n" +
		`{"schema":"olm.channel","name":"stable","package":"a","entries":[{"name":"a.v1.0.0"},{"name":"a.v2.0.0","replaces":"a.v1.0.0"}]}` + "\n"
	body := head + bundle("1.0.0", "example.com/a@sha256:"+strings.Repeat("a", 64), data(csv)) + bundle("2.0.0", "", data(csv))
	cfg, err := readImage(t, gzLayer(t, file("configs/a/catalog.json", body)))
	wantPackages(t, cfg, err, "a")
	want, err := declcfg.LoadReader(strings.NewReader(body))
	if err != nil || len(want.Bundles) != 2 || len(cfg.Bundles) != 2 {
		t.Fatalf("operator-registry: %v; bundles %d, ferry %d", err, len(want.Bundles), len(cfg.Bundles))
	}
	for i, b := range cfg.Bundles {
		if !slices.EqualFunc(b.Properties, want.Bundles[i].Properties, func(x, y property.Property) bool {
			return x.Type == y.Type && bytes.Equal(x.Value, y.Value)
		}) {
			t.Errorf("%s: properties %s, operator-registry read %s", b.Name, b.Properties, want.Bundles[i].Properties)
		}
		if b.CsvJSON != "" || (b.Image != "") != (b.Objects == nil) || (b.Image == "" && !slices.Equal(b.Objects, want.Bundles[i].Objects)) {
			t.Errorf("%s (image %q): objects %q, CSV %q", b.Name, b.Image, b.Objects, b.CsvJSON)
		}
	}
	if _, _, err := Filter(cfg, Selection{Full: true}, FilterOptions{}); err != nil {
		t.Errorf("a bundle without an image, its objects kept: %v", err)
	}

	for name, tt := range map[string]struct{ object, want string }{
		"not base64":   {data("not base64!"), "parse property at index 1 as bundle object"},
		"not a string": {`{"data":7}`, "parse property at index 1 as bundle object"},
		"not YAML":     {data(base64.StdEncoding.EncodeToString([]byte("a: ["))), "convert bundle object property at index 1 to JSON"},
	} {
		t.Run(name, func(t *testing.T) {
			doc := bundle("1.0.0", "example.com/a@sha256:"+strings.Repeat("a", 64), tt.object)
			_, err := readImage(t, gzLayer(t, file("configs/a/catalog.json", head+doc)))
			wantErrorContaining(t, err, "/configs/a/catalog.json", `bundle "a.v1.0.0"`, tt.want)
			if _, err := declcfg.LoadReader(strings.NewReader(head + doc)); err == nil {
				t.Error("operator-registry accepts it")
			}
		})
	}
}

// TestReadFBCVerifiesEveryLayer: every layer opened is read to its last
// byte, past the tar's end, and closed; a layer whose stream fails at its
// end (as a verifying reader fails on a digest mismatch) fails the read,
// though its tar was complete.
func TestReadFBCVerifiesEveryLayer(t *testing.T) {
	good := gzLayer(t, file("configs/a/catalog.json", pkg("a")))
	ls, ops := image(gzLayer(t, file("bin/opm", "x")), good)
	if _, err := ReadFBC(t.Context(), ls, "/configs"); err != nil {
		t.Fatal(err)
	}
	for i, o := range ops {
		if o.read != int64(len(o.data)) || !o.closed {
			t.Errorf("layer %d: read %d of %d bytes, closed %v", i, o.read, len(o.data), o.closed)
		}
	}

	errMismatch := errors.New("digest mismatch")
	bad := func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(strings.NewReader(string(good)), failingReader{errMismatch})), nil
	}
	_, err := ReadFBC(t.Context(), []LayerOpener{bad}, "/configs")
	if !errors.Is(err, errMismatch) {
		t.Fatalf("error = %v, want the stream's failure", err)
	}
	wantErrorContaining(t, err, "layer 1 of 1")
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// TestReadFBCCancelled: a cancelled context stops the read.
func TestReadFBCCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ls, _ := image(gzLayer(t, file("configs/a/catalog.json", pkg("a"))))
	if _, err := ReadFBC(ctx, ls, "/configs"); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

// TestReadFBCNoConfigsDir: an image without the directory its label names
// is refused, and so is an empty label.
func TestReadFBCNoConfigsDir(t *testing.T) {
	_, err := readImage(t, gzLayer(t, file("database/index.db", "SQLite format 3\x00")))
	wantErrorContaining(t, err, "no directory /configs")
	ls, _ := image(gzLayer(t, file("configs/a/catalog.json", pkg("a"))))
	_, err = ReadFBC(t.Context(), ls, " ")
	wantErrorContaining(t, err, "no configs directory")
}

// TestReadFBCStreamsLayers: a layer is streamed, never held: reading an
// image whose layers inflate to 64 MiB beside a small catalog allocates a
// small fraction of that (TotalAlloc counts every allocation, collected
// or not).
func TestReadFBCStreamsLayers(t *testing.T) {
	const size = 64 << 20
	small := pkg("a")
	entryEnd := 512 + (len(small)+511)/512*512 // its header and padded data, without the end of the archive
	head := append(plainTar(t, file("configs/a/catalog.json", small))[:entryEnd], zeroFileHeader(t, "usr/lib/big.so", size)...)
	layer := gzipBomb(t, head, size)
	if n := inflatesTo(t, layer); n < size {
		t.Fatalf("the layer inflates to %d bytes, want %d", n, size)
	}
	ls, _ := image(layer)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cfg, err := ReadFBC(t.Context(), ls, "/configs")
	runtime.ReadMemStats(&after)
	wantPackages(t, cfg, err, "a")
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes", allocated)
	if allocated > size/32 {
		t.Errorf("reading allocated %d bytes for a %d-byte layer", allocated, size)
	}
}
