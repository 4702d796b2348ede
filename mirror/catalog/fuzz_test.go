package catalog

import (
	"bytes"
	"errors"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// fuzzLimits keep each input cheap: a bomb stops after a few MB.
var fuzzLimits = limits{
	fileBytes:     256 << 10,
	catalogBytes:  1 << 20,
	inflatedBytes: 4 << 20,
	tarEntries:    2000,
	files:         200,
	zstdWindow:    8 << 20,
}

// FuzzReadFBC reads two layers (top first) as they come off the wire:
// plain, gzip or zstd tars, as the magic bytes say, with whiteouts, links
// and FBC documents in them. Whatever they hold, reading ends without a
// panic and within the bounds, and a success comes from layers read to
// their last byte and closed.
func FuzzReadFBC(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add(plainTar(f, file("configs/a/catalog.json", pkg("a"))), []byte{})
	f.Add(gzLayer(f, whiteout("configs/b"), opaque("configs/c"), file("configs/c/x.yaml", "schema: olm.package\nname: c\n")),
		zstded(f, plainTar(f, dir("configs/"), file("configs/b/catalog.json", pkg("b")), symlink("configs/c/l", "/x"),
			hardlink("configs/a.json", "configs/b/catalog.json"), file("configs/.indexignore", "c/\n"))))
	f.Fuzz(func(t *testing.T, top, lower []byte) {
		ls, ops := image(lower, top)
		cfg, err := readFBC(t.Context(), ls, "/configs", fuzzLimits)
		if err != nil {
			if be, ok := errors.AsType[*BoundError](err); ok && be.Limit <= 0 {
				t.Fatalf("bound error without a limit: %v", err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("no catalog and no error")
		}
		for i, o := range ops {
			if o.opened && (o.read != int64(len(o.data)) || !o.closed) {
				t.Fatalf("layer %d: read %d of its %d bytes, closed %v", i, o.read, len(o.data), o.closed)
			}
		}
	})
}

// FuzzReadFBCDocument reads data as the one file of a catalog image: it is
// refused or accepted exactly as operator-registry's own loader refuses or
// accepts it, and gives the same catalog.
func FuzzReadFBCDocument(f *testing.F) {
	f.Add([]byte(pkg("a")))
	f.Add(readFixture(f, quayFixture)[:4096])
	f.Add([]byte("---\nschema: olm.bundle\nname: b\npackage: p\nproperties:\n- type: olm.bundle.object\n  value: {data: e30=}\n"))
	f.Add([]byte(`{"schema":"olm.deprecations","package":"p","entries":[{"reference":{"schema":"olm.package"},"message":"gone"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > int(fuzzLimits.fileBytes) {
			return
		}
		ls, _ := image(gzipped(t, plainTar(t, file("configs/p/catalog.json", string(data)))))
		cfg, err := readFBC(t.Context(), ls, "/configs", fuzzLimits)
		want, wantErr := declcfg.LoadReader(bytes.NewReader(data))
		if (err == nil) != (wantErr == nil) {
			// Only a document without a schema is refused by ferry's own
			// words; operator-registry refuses it too.
			t.Fatalf("ferry: %v; operator-registry: %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if len(cfg.Packages) != len(want.Packages) || len(cfg.Channels) != len(want.Channels) ||
			len(cfg.Bundles) != len(want.Bundles) || len(cfg.Deprecations) != len(want.Deprecations) ||
			len(cfg.Others) != len(want.Others) {
			t.Fatalf("ferry read %d/%d/%d/%d/%d, operator-registry %d/%d/%d/%d/%d",
				len(cfg.Packages), len(cfg.Channels), len(cfg.Bundles), len(cfg.Deprecations), len(cfg.Others),
				len(want.Packages), len(want.Channels), len(want.Bundles), len(want.Deprecations), len(want.Others))
		}
	})
}
