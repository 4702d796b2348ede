package catalog

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// The real catalogs of shared/fixtures/operators (see its README), which
// CI lays beside the checkout.
const (
	deschedulerFixture = "../../../shared/fixtures/operators/descheduler-v4.18.catalog.json"
	quayFixture        = "../../../shared/fixtures/operators/project-quay-v4.18.catalog.yaml"
)

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("operator catalog fixture missing (shared/fixtures must sit beside the checkout): %v", err)
	}
	return data
}

// entry is one tar entry of a test layer; typ 0 is a regular file.
type entry struct {
	name string
	typ  byte
	body string
	link string
}

func file(name, body string) entry   { return entry{name: name, body: body} }
func dir(name string) entry          { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, to string) entry  { return entry{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) entry { return entry{name: name, typ: tar.TypeLink, link: to} }

// whiteout is the entry that removes path from the layers below.
func whiteout(path string) entry {
	i := strings.LastIndexByte(path, '/')
	return file(path[:i+1]+".wh."+path[i+1:], "")
}

// opaque is the entry that empties directory d of the layers below.
func opaque(d string) entry { return file(strings.TrimSuffix(d, "/")+"/.wh..wh..opq", "") }

// pkg is an FBC package of one channel and bundle, as a JSON stream.
func pkg(name string) string {
	return fmt.Sprintf(`{"schema":"olm.package","name":%[1]q,"defaultChannel":"stable"}
{"schema":"olm.channel","name":"stable","package":%[1]q,"entries":[{"name":"%[1]s.v1.0.0"}]}
{"schema":"olm.bundle","name":"%[1]s.v1.0.0","package":%[1]q,"image":"example.com/%[1]s@sha256:%[2]s",
 "properties":[{"type":"olm.package","value":{"packageName":%[1]q,"version":"1.0.0"}}]}
`, name, strings.Repeat("a", 64))
}

// plainTar writes entries as an uncompressed tar.
func plainTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644}
		switch e.typ {
		case 0:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.body))
		case tar.TypeDir:
			hdr.Mode = 0o755
		case tar.TypeXGlobalHeader:
			hdr = &tar.Header{Name: e.name, Typeflag: e.typ, PAXRecords: map[string]string{"comment": "ferry test"}}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, data []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(data, nil)
}

// gzLayer is a gzip'd tar of entries, as most images' layers are.
func gzLayer(t testing.TB, entries ...entry) []byte { return gzipped(t, plainTar(t, entries...)) }

// opener serves data and records that it was opened, how much of it was
// read and whether it was closed.
type opener struct {
	data   []byte
	opened bool
	read   int64
	closed bool
}

func (o *opener) open(context.Context) (io.ReadCloser, error) {
	o.opened = true
	return o, nil
}

func (o *opener) Read(p []byte) (int, error) {
	if o.read >= int64(len(o.data)) {
		return 0, io.EOF
	}
	n := copy(p, o.data[o.read:])
	o.read += int64(n)
	return n, nil
}

func (o *opener) Close() error {
	o.closed = true
	return nil
}

// image returns openers for layers given base first, as a manifest lists
// them.
func image(layers ...[]byte) ([]LayerOpener, []*opener) {
	var ls []LayerOpener
	var ops []*opener
	for _, l := range layers {
		o := &opener{data: l}
		ls = append(ls, o.open)
		ops = append(ops, o)
	}
	return ls, ops
}

// readImage reads the FBC under /configs of layers (base first).
func readImage(t *testing.T, layers ...[]byte) (*declcfg.DeclarativeConfig, error) {
	t.Helper()
	ls, _ := image(layers...)
	return ReadFBC(t.Context(), ls, "/configs")
}

// packageNames lists the packages of cfg, sorted.
func packageNames(cfg *declcfg.DeclarativeConfig) []string {
	var names []string
	for _, p := range cfg.Packages {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

func wantPackages(t *testing.T, cfg *declcfg.DeclarativeConfig, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if got := packageNames(cfg); !slices.Equal(got, want) {
		t.Fatalf("packages %q, want %q", got, want)
	}
}

func wantErrorContaining(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one saying %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not say %q", err, p)
		}
	}
}

func wantBound(t *testing.T, err error, bound string, limit int64) *BoundError {
	t.Helper()
	be, ok := errors.AsType[*BoundError](err)
	if !ok || be.Bound != bound || be.Limit != limit {
		t.Fatalf("error = %v, want a *BoundError for %s (%d)", err, bound, limit)
	}
	if !strings.Contains(err.Error(), "catalog."+bound) {
		t.Fatalf("error %q does not name catalog.%s", err, bound)
	}
	return be
}
