package catalog

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// rebuildSelection keeps two of the test bed's four packages: aurora's
// stable channel, and dorado, whole package deprecated (its
// olm.deprecations entry must survive the rebuild).
func rebuildSelection() Selection {
	return Selection{Packages: []PackageSelection{
		{Name: testbed.CatalogPackageAurora, Channels: []ChannelSelection{{Name: "stable"}}},
		{Name: testbed.CatalogPackageDorado},
	}}
}

const rebuildFilter = "aurora-operator[stable], dorado-operator"

// readAndFilter builds a test-bed catalog in reg, reads it with Read and
// filters it with rebuildSelection.
func readAndFilter(t *testing.T, reg *testbed.Registry, opts testbed.CatalogOptions) (*testbed.Catalog, *Catalog, *declcfg.DeclarativeConfig, *FilterReport) {
	t.Helper()
	tb := testbed.BuildCatalog(t, reg.Host, opts)
	cat, err := Read(t.Context(), testClient(t), tb.PullSpec)
	if err != nil {
		t.Fatal(err)
	}
	out, report := mustFilter(t, cat.FBC, rebuildSelection(), FilterOptions{})
	return tb, cat, out, report
}

// layerTar is a gzip'd layer's entries, in order, and its files' data.
type layerTar struct {
	headers []*tar.Header
	files   map[string][]byte
	diffID  digest.Digest
}

func readLayerTar(t *testing.T, gz []byte) layerTar {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	lt := layerTar{files: map[string][]byte{}, diffID: digest.FromBytes(plain)}
	tr := tar.NewReader(bytes.NewReader(plain))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return lt
		}
		if err != nil {
			t.Fatal(err)
		}
		lt.headers = append(lt.headers, hdr)
		if hdr.Typeflag == tar.TypeReg {
			if lt.files[hdr.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (lt layerTar) names() []string {
	var out []string
	for _, h := range lt.headers {
		out = append(out, h.Name)
	}
	return out
}

func unmarshal[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return v
}

func blobOf(t *testing.T, r *Rebuilt, d digest.Digest) NewBlob {
	t.Helper()
	i := slices.IndexFunc(r.Blobs, func(b NewBlob) bool { return b.Digest == d })
	if i < 0 {
		t.Fatalf("blob %s is not among the rebuild's blobs", d)
	}
	return r.Blobs[i]
}

// fbcJSON is cfg in opm's JSON, sorted by package, channel and bundle,
// each document with its keys sorted and numbers as written: two catalogs
// with the same documents give the same text, however they were read.
func fbcJSON(t *testing.T, cfg *declcfg.DeclarativeConfig) string {
	t.Helper()
	var buf bytes.Buffer
	if err := declcfg.WriteJSON(*cfg, &buf); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	var out strings.Builder
	for {
		var doc any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return out.String()
		} else if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(append(data, '\n'))
	}
}

// TestRebuildCatalog rebuilds test-bed catalogs of each shape with a
// filtered catalog, checks every manifest, config and the new layer, then
// pushes the result and reads it back with Read: the image ferry would
// carry serves exactly the filtered catalog, deprecations included, and
// opm builds its cache at start.
func TestRebuildCatalog(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      testbed.CatalogOptions
		layerType string
		wantTar   []string
	}{
		{"single OCI", testbed.CatalogOptions{}, ocispec.MediaTypeImageLayerGzip, nil},
		{"multi OCI", testbed.CatalogOptions{Multi: true}, ocispec.MediaTypeImageLayerGzip, nil},
		{"multi Docker schema 2", testbed.CatalogOptions{Multi: true, Docker: true}, testbed.MediaTypeDockerLayer, nil},
		{"single Docker schema 2", testbed.CatalogOptions{Docker: true}, testbed.MediaTypeDockerLayer, nil},
		{"no pre-built cache", testbed.CatalogOptions{NoCache: true}, ocispec.MediaTypeImageLayerGzip, []string{
			"configs/", "configs/.wh..wh..opq",
			"configs/aurora-operator/", "configs/aurora-operator/catalog.json",
			"configs/dorado-operator/", "configs/dorado-operator/catalog.json",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := testbed.NewMemoryRegistry(t)
			tb, cat, out, _ := readAndFilter(t, reg, tc.opts)
			created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			r, err := Rebuild(cat, out, RebuildOptions{Created: created, Filter: rebuildFilter})
			if err != nil {
				t.Fatal(err)
			}
			wantTar := tc.wantTar
			if wantTar == nil {
				wantTar = []string{
					"configs/", "configs/.wh..wh..opq",
					"configs/aurora-operator/", "configs/aurora-operator/catalog.json",
					"configs/dorado-operator/", "configs/dorado-operator/catalog.json",
					"tmp/", "tmp/.wh.cache",
				}
			}
			layer := checkLayer(t, r, tc.layerType, wantTar)
			checkDigests(t, r)
			if r.MediaType != cat.MediaType || len(r.Platforms) != len(cat.Images) || len(r.Blobs) != 1+len(cat.Images) {
				t.Fatalf("rebuilt %s with %d platforms and %d blobs; source %s with %d platforms",
					r.MediaType, len(r.Platforms), len(r.Blobs), cat.MediaType, len(cat.Images))
			}
			for i, p := range r.Platforms {
				checkPlatform(t, cat, cat.Images[i], p, r, layer, created, tc.opts.NoCache)
			}
			if tc.opts.Multi {
				checkIndex(t, cat, r)
			} else if r.Digest != r.Platforms[0].Digest {
				t.Errorf("single image: top %s, platform %s", r.Digest, r.Platforms[0].Digest)
			}

			again, err := Rebuild(cat, out, RebuildOptions{Created: created, Filter: rebuildFilter})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Manifest, r.Manifest) || !slices.EqualFunc(again.Blobs, r.Blobs, func(a, b NewBlob) bool { return bytes.Equal(a.Data, b.Data) }) {
				t.Error("two rebuilds of the same catalog with the same options differ")
			}

			back := pushAndRead(t, reg, tb.Repository, r)
			if back.CacheDir != "" || back.ConfigsDir != "/configs" || !slices.Equal(back.Entrypoint, []string{"/bin/opm"}) || !slices.Equal(back.Cmd, []string{"serve", "/configs"}) {
				t.Errorf("read back: configs %s, cache %q, command %q %q", back.ConfigsDir, back.CacheDir, back.Entrypoint, back.Cmd)
			}
			if len(out.Deprecations) != 1 || out.Deprecations[0].Package != testbed.CatalogPackageDorado {
				t.Fatalf("the filter kept deprecations %+v, want dorado's", out.Deprecations)
			}
			if got, want := fbcJSON(t, back.FBC), fbcJSON(t, out); got != want {
				t.Errorf("the rebuilt image serves another catalog than the filtered one:\n got  %s\n want %s", got, want)
			}
		})
	}
}

// checkLayer checks the new layer's entries (names in order, owners,
// times, modes) and returns it.
func checkLayer(t *testing.T, r *Rebuilt, mediaType string, want []string) layerTar {
	t.Helper()
	if r.Blobs[0].MediaType != mediaType {
		t.Errorf("layer media type %s, want %s", r.Blobs[0].MediaType, mediaType)
	}
	lt := readLayerTar(t, r.Blobs[0].Data)
	assertStrings(t, "layer entries", lt.names(), want)
	for _, h := range lt.headers {
		wantMode := int64(0o644)
		switch {
		case h.Name == "tmp/":
			wantMode = 0o1777 // /tmp stays writable by opm's arbitrary uid
		case h.Typeflag == tar.TypeDir:
			wantMode = 0o755
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) || h.Mode != wantMode {
			t.Errorf("%s: uid %d gid %d mtime %s mode %o; want root, the epoch, %o", h.Name, h.Uid, h.Gid, h.ModTime, h.Mode, wantMode)
		}
	}
	return lt
}

// checkDigests: every digest the rebuild gives is that of its bytes.
func checkDigests(t *testing.T, r *Rebuilt) {
	t.Helper()
	if r.Digest != digest.FromBytes(r.Manifest) {
		t.Errorf("top manifest digest %s is not its bytes'", r.Digest)
	}
	for _, p := range r.Platforms {
		if p.Digest != digest.FromBytes(p.Manifest) {
			t.Errorf("platform manifest digest %s is not its bytes'", p.Digest)
		}
	}
	for _, b := range r.Blobs {
		if b.Digest != digest.FromBytes(b.Data) {
			t.Errorf("blob digest %s is not its bytes'", b.Digest)
		}
	}
}

// checkPlatform checks one rebuilt platform image against its source.
func checkPlatform(t *testing.T, cat *Catalog, src PlatformImage, p RebuiltPlatform, r *Rebuilt, layer layerTar, created time.Time, noCache bool) {
	t.Helper()
	if p.Source != src.Digest || p.MediaType != src.MediaType {
		t.Errorf("platform from %s (%s), want from %s (%s)", p.Source, p.MediaType, src.Digest, src.MediaType)
	}
	srcM, newM := unmarshal[ocispec.Manifest](t, src.Manifest), unmarshal[ocispec.Manifest](t, p.Manifest)
	if newM.MediaType != srcM.MediaType || newM.Config.MediaType != srcM.Config.MediaType {
		t.Errorf("manifest %s with config %s, source %s with %s", newM.MediaType, newM.Config.MediaType, srcM.MediaType, srcM.Config.MediaType)
	}
	if len(newM.Layers) != len(srcM.Layers)+1 || !reflect.DeepEqual(newM.Layers[:len(srcM.Layers)], srcM.Layers) {
		t.Fatalf("layers %v, want the source's %v and one more", newM.Layers, srcM.Layers)
	}
	if l := newM.Layers[len(srcM.Layers)]; l.Digest != r.Blobs[0].Digest || l.Size != int64(len(r.Blobs[0].Data)) || l.MediaType != r.Blobs[0].MediaType {
		t.Errorf("new layer %+v, want the rebuild's layer %s", l, r.Blobs[0].Digest)
	}
	config := blobOf(t, r, newM.Config.Digest)
	if newM.Config.Size != int64(len(config.Data)) || config.MediaType != srcM.Config.MediaType {
		t.Errorf("config descriptor %+v, blob of %d bytes typed %s", newM.Config, len(config.Data), config.MediaType)
	}
	srcC, newC := unmarshal[ocispec.Image](t, src.Config), unmarshal[ocispec.Image](t, config.Data)
	if want := append(slices.Clone(srcC.RootFS.DiffIDs), layer.diffID); !slices.Equal(newC.RootFS.DiffIDs, want) {
		t.Errorf("diff IDs %v, want %v", newC.RootFS.DiffIDs, want)
	}
	if !newC.Created.After(*srcC.Created) || !newC.Created.Equal(created) {
		t.Errorf("created %s, want %s, after the source's %s", newC.Created, created, srcC.Created)
	}
	if len(newC.History) != len(srcC.History)+1 {
		t.Fatalf("%d history entries, source %d", len(newC.History), len(srcC.History))
	}
	if h := newC.History[len(newC.History)-1]; !strings.Contains(h.CreatedBy, "ferry") || !strings.Contains(h.CreatedBy, rebuildFilter) || h.EmptyLayer || !h.Created.Equal(created) {
		t.Errorf("new history entry %+v", h)
	}
	for k, v := range map[string]string{
		LabelSource: cat.Ref, LabelSourceDigest: cat.Digest.String(), LabelFilter: rebuildFilter,
		LabelConfigsDir: "/configs", "com.redhat.index.delivery.version": srcC.Config.Labels["com.redhat.index.delivery.version"],
	} {
		if newC.Config.Labels[k] != v || v == "" {
			t.Errorf("label %s = %q, want %q", k, newC.Config.Labels[k], v)
		}
	}
	if !slices.Equal(newC.Config.Env, srcC.Config.Env) || len(srcC.Config.Env) == 0 || !reflect.DeepEqual(newC.Platform, srcC.Platform) {
		t.Errorf("config lost fields: env %q platform %+v, source %q %+v", newC.Config.Env, newC.Platform, srcC.Config.Env, srcC.Platform)
	}
	if !slices.Equal(newC.Config.Entrypoint, []string{"/bin/opm"}) || !slices.Equal(newC.Config.Cmd, []string{"serve", "/configs"}) {
		t.Errorf("command %q %q, want opm serve /configs without cache flags", newC.Config.Entrypoint, newC.Config.Cmd)
	}
	if noCache != !slices.Contains(srcC.Config.Cmd, "--cache-dir=/tmp/cache") {
		t.Errorf("source command %q: the test bed changed", srcC.Config.Cmd)
	}
}

// checkIndex: the rebuilt index names the rebuilt images, with the
// source's platforms, in the source's order.
func checkIndex(t *testing.T, cat *Catalog, r *Rebuilt) {
	t.Helper()
	idx := unmarshal[ocispec.Index](t, r.Manifest)
	if len(idx.Manifests) != len(r.Platforms) {
		t.Fatalf("index names %d manifests, want %d", len(idx.Manifests), len(r.Platforms))
	}
	for i, m := range idx.Manifests {
		p := r.Platforms[i]
		if m.Digest != p.Digest || m.Size != int64(len(p.Manifest)) || m.MediaType != p.MediaType {
			t.Errorf("index entry %d: %s %d %s, want %s %d %s", i, m.Digest, m.Size, m.MediaType, p.Digest, len(p.Manifest), p.MediaType)
		}
		if want := cat.Images[i].Platform; want == nil || m.Platform == nil || m.Platform.Architecture != want.Architecture || m.Platform.OS != want.OS {
			t.Errorf("index entry %d: platform %+v, want %+v", i, m.Platform, want)
		}
	}
}

// pushAndRead pushes r to repo (where the source's layers are) and reads
// it back with Read.
func pushAndRead(t *testing.T, reg *testbed.Registry, repo string, r *Rebuilt) *Catalog {
	t.Helper()
	for _, b := range r.Blobs {
		pushBlob(t, reg, repo, b.Data)
	}
	for _, p := range r.Platforms {
		if _, err := reg.PushManifest(t.Context(), repo, p.Digest.String(), p.MediaType, p.Manifest); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.PushManifest(t.Context(), repo, "filtered", r.MediaType, r.Manifest); err != nil {
		t.Fatal(err)
	}
	back, err := Read(t.Context(), testClient(t), reg.Host+"/"+repo+":filtered")
	if err != nil {
		t.Fatalf("reading the rebuilt catalog: %v", err)
	}
	if back.Digest != r.Digest {
		t.Fatalf("read back %s, pushed %s", back.Digest, r.Digest)
	}
	return back
}

// TestCacheAtStart: opm's cache flags go in every form they are written,
// wherever they sit in entrypoint and cmd; everything else stays.
func TestCacheAtStart(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		entrypoint, cmd         []string
		wantEntrypoint, wantCmd []string
	}{
		{"stock", []string{"/bin/opm"}, []string{"serve", "/configs", "--cache-dir=/tmp/cache"},
			[]string{"/bin/opm"}, []string{"serve", "/configs"}},
		{"flag and value apart", []string{"/bin/opm"}, []string{"serve", "--cache-dir", "/var/cache/opm", "/configs"},
			[]string{"/bin/opm"}, []string{"serve", "/configs"}},
		{"every cache flag", []string{"/bin/opm"},
			[]string{"serve", "/configs", "--cache-dir=/tmp/cache", "--cache-enforce-integrity=true", "--cache-only", "--cache-enforce-integrity"},
			[]string{"/bin/opm"}, []string{"serve", "/configs"}},
		{"serve in the entrypoint, flag in cmd", []string{"/bin/opm", "serve", "/configs"}, []string{"--cache-dir=/tmp/cache"},
			[]string{"/bin/opm", "serve", "/configs"}, nil},
		{"flag across entrypoint and cmd", []string{"/bin/opm", "serve", "/configs", "--cache-dir"}, []string{"/tmp/cache", "--debug"},
			[]string{"/bin/opm", "serve", "/configs"}, []string{"--debug"}},
		{"other flags and their values kept", nil, []string{"opm", "--skip-tls-verify", "serve", "-p", "50052", "--termination-log", "/dev/log", "/configs/", "--cache-dir=/c"},
			nil, []string{"opm", "--skip-tls-verify", "serve", "-p", "50052", "--termination-log", "/dev/log", "/configs/"}},
		{"no cache flag", []string{"/bin/opm"}, []string{"serve", "/configs"}, []string{"/bin/opm"}, []string{"serve", "/configs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep, cmd, err := cacheAtStart(tc.entrypoint, tc.cmd, "/configs")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ep, tc.wantEntrypoint) || !slices.Equal(cmd, tc.wantCmd) {
				t.Errorf("got %q %q, want %q %q", ep, cmd, tc.wantEntrypoint, tc.wantCmd)
			}
		})
	}
}

// TestCacheAtStartRefuses: a command ferry cannot make build its cache
// from the catalog it writes.
func TestCacheAtStartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name            string
		entrypoint, cmd []string
		want            string
	}{
		{"no opm", []string{"/bin/registry-server"}, []string{"--database", "/database/index.db"}, "runs no `opm serve`"},
		{"opm, not serve", []string{"/bin/opm"}, []string{"registry", "serve", "-d", "/database/index.db"}, "runs no `opm serve`"},
		{"a shell", []string{"/bin/sh", "-c"}, []string{"exec /bin/opm serve /configs --cache-dir=/tmp/cache"}, "runs no `opm serve`"},
		{"another directory", []string{"/bin/opm"}, []string{"serve", "/catalog"}, `serves "/catalog", but its label`},
		{"a relative directory", []string{"/bin/opm"}, []string{"serve", "configs"}, `serves "configs"`},
		{"two directories", []string{"/bin/opm"}, []string{"serve", "/configs", "/more"}, "2 directories"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := cacheAtStart(tc.entrypoint, tc.cmd, "/configs")
			wantErrorContaining(t, err, tc.want)
		})
	}
}

// TestRebuildRefuses: Rebuild names the catalog and says what it cannot
// rebuild.
func TestRebuildRefuses(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	fbc := plainTar(t, dir("configs/"), file("configs/a/catalog.json", pkg("a")), file("tmp/cache/configs/a/catalog.json", pkg("a")))
	read := func(repo string, labels map[string]string, entrypoint []string, cmd ...string) *Catalog {
		img := catalogImage{arch: "amd64", labels: labels, entrypoint: entrypoint, cmd: cmd, layers: [][]byte{baseLayer(t, "amd64"), fbc}}
		img.push(t, reg, repo, "v1")
		cat, err := Read(t.Context(), testClient(t), reg.Host+"/"+repo+":v1")
		if err != nil {
			t.Fatal(err)
		}
		return cat
	}
	stock := read("stock", stockLabels, stockEntrypoint, stockCmd...)

	t.Run("no opm serve", func(t *testing.T) {
		cat := read("no-serve", stockLabels, []string{"/bin/registry-server"}, "--database", "/database/index.db")
		_, err := Rebuild(cat, cat.FBC, RebuildOptions{Filter: "all"})
		wantErrorContaining(t, err, cat.Ref, "runs no `opm serve`", "/bin/registry-server")
	})
	t.Run("configs inside the cache", func(t *testing.T) {
		cat := read("nested", map[string]string{LabelConfigsDir: "/tmp/cache/configs"}, stockEntrypoint, "serve", "/tmp/cache/configs", "--cache-dir=/tmp/cache")
		_, err := Rebuild(cat, cat.FBC, RebuildOptions{})
		wantErrorContaining(t, err, cat.Ref, "lies inside the opm cache directory /tmp/cache")
	})
	t.Run("filter of two lines", func(t *testing.T) {
		_, err := Rebuild(stock, stock.FBC, RebuildOptions{Filter: "a\nb"})
		wantErrorContaining(t, err, stock.Ref, "not one line")
	})
	t.Run("package name that is a path", func(t *testing.T) {
		evil := &declcfg.DeclarativeConfig{Packages: []declcfg.Package{{Schema: declcfg.SchemaPackage, Name: "../../etc"}}}
		_, err := Rebuild(stock, evil, RebuildOptions{})
		wantErrorContaining(t, err, stock.Ref, `package name "../../etc"`)
	})
	t.Run("package name that is a whiteout", func(t *testing.T) {
		evil := &declcfg.DeclarativeConfig{Packages: []declcfg.Package{{Schema: declcfg.SchemaPackage, Name: ".wh.a"}}}
		_, err := Rebuild(stock, evil, RebuildOptions{})
		wantErrorContaining(t, err, `package name ".wh.a"`)
	})
}

// TestRebuildIndexDropsAttestations: a BuildKit attestation is dropped
// from the rebuilt index (it attests an image not carried); the other
// entries keep their platforms (variant included) and annotations, and
// the index its own annotations.
func TestRebuildIndexDropsAttestations(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	const repo = "olm/attested"
	fbc := plainTar(t, dir("configs/"), file("configs/a/catalog.json", pkg("a")), file("configs/b/catalog.json", pkg("b")))
	var images []pushed
	for _, arch := range []string{"amd64", "arm64"} {
		img := catalogImage{arch: arch, labels: stockLabels, entrypoint: stockEntrypoint, cmd: stockCmd,
			layers: [][]byte{baseLayer(t, arch), fbc, cacheLayer(t, arch)}}
		images = append(images, img.push(t, reg, repo, ""))
	}
	attestation := catalogImage{arch: "unknown", layers: [][]byte{plainTar(t, file("provenance.json", "{}"))}}.push(t, reg, repo, "")
	platforms := []ocispec.Platform{{Architecture: "amd64", OS: "linux"}, {Architecture: "arm64", OS: "linux", Variant: "v8"}, {Architecture: "unknown", OS: "unknown"}}
	entryNotes := []map[string]string{{"org.opencontainers.image.ref.name": "amd64"}, nil,
		{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": images[0].digest.String()}}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Annotations: map[string]string{"org.opencontainers.image.created": "2024-02-01T00:00:00Z"}}
	idx.SchemaVersion = 2
	for i, img := range append(slices.Clone(images), attestation) {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: img.mediaType, Digest: img.digest, Size: img.size, Platform: &platforms[i], Annotations: entryNotes[i]})
	}
	pushJSON(t, reg, repo, "v1", idx.MediaType, idx)
	cat, err := Read(t.Context(), testClient(t), reg.Host+"/"+repo+":v1")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := mustFilter(t, cat.FBC, Selection{Packages: []PackageSelection{{Name: "b"}}}, FilterOptions{})
	r, err := Rebuild(cat, out, RebuildOptions{Filter: "b"})
	if err != nil {
		t.Fatal(err)
	}
	got := unmarshal[ocispec.Index](t, r.Manifest)
	if len(got.Manifests) != 2 || len(r.Platforms) != 2 {
		t.Fatalf("rebuilt index names %d manifests (%d platforms), want the 2 platform images", len(got.Manifests), len(r.Platforms))
	}
	for i, m := range got.Manifests {
		if m.Digest != r.Platforms[i].Digest || !reflect.DeepEqual(*m.Platform, platforms[i]) || !reflect.DeepEqual(m.Annotations, entryNotes[i]) {
			t.Errorf("entry %d: %s %+v %v, want %s %+v %v", i, m.Digest, m.Platform, m.Annotations, r.Platforms[i].Digest, platforms[i], entryNotes[i])
		}
		if want := cat.Images[i].Platform; !reflect.DeepEqual(want, &platforms[i]) {
			t.Errorf("Catalog.Images[%d].Platform = %+v, want %+v", i, want, platforms[i])
		}
	}
	if !reflect.DeepEqual(got.Annotations, idx.Annotations) {
		t.Errorf("index annotations %v, want %v", got.Annotations, idx.Annotations)
	}
	back := pushAndRead(t, reg, repo, r)
	wantPackages(t, back.FBC, nil, "b")
}

// TestRebuildCreatedAfterSource: a rebuild never looks older than its
// source, whatever time it is given (OLM v1 refuses a catalog not newer
// than the one it has).
func TestRebuildCreatedAfterSource(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	_, cat, out, _ := readAndFilter(t, reg, testbed.CatalogOptions{})
	source := unmarshal[ocispec.Image](t, cat.Images[0].Config).Created
	for _, tc := range []struct {
		name  string
		given time.Time
		want  time.Time
	}{
		{"given before the source", source.Add(-time.Hour), source.Add(time.Second)},
		{"given equal to the source", *source, source.Add(time.Second)},
		{"given after the source", source.Add(time.Hour), source.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Rebuild(cat, out, RebuildOptions{Created: tc.given})
			if err != nil {
				t.Fatal(err)
			}
			config := blobOf(t, r, unmarshal[ocispec.Manifest](t, r.Manifest).Config.Digest)
			if got := unmarshal[ocispec.Image](t, config.Data).Created; !got.Equal(tc.want) {
				t.Errorf("created %s, want %s", got, tc.want)
			}
		})
	}
	r, err := Rebuild(cat, out, RebuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	config := blobOf(t, r, unmarshal[ocispec.Manifest](t, r.Manifest).Config.Digest)
	if got := unmarshal[ocispec.Image](t, config.Data).Created; !got.After(*source) {
		t.Errorf("no time given: created %s, not after the source's %s", got, source)
	}
}

// TestConfigEditKeepsUnknownFields: fields of the config ferry knows
// nothing of, at every level, survive the rebuild as they were.
func TestConfigEditKeepsUnknownFields(t *testing.T) {
	src := []byte(`{"created":"2024-02-01T00:00:00Z","architecture":"amd64","os":"linux",
		"moby.buildkit.buildinfo.v1":"e30=","config":{"Labels":{"a":"<b>"},"Entrypoint":["/bin/opm"],"Cmd":["serve","/configs","--cache-dir=/tmp/cache"],
		"User":"1001","StopSignal":"SIGTERM","X-Future":{"n":1.50}},
		"rootfs":{"type":"layers","diff_ids":["` + digest.FromString("base").String() + `"],"x-note":"kept"}}`)
	configs, err := parseConfigs([]PlatformImage{{Digest: "sha256:x", Config: src}})
	if err != nil {
		t.Fatal(err)
	}
	edit := configEdit{created: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), diffID: digest.FromString("new"),
		entrypoint: []string{"/bin/opm"}, cmd: []string{"serve", "/configs"}, labels: map[string]string{LabelFilter: "x"}, createdBy: "ferry"}
	data, err := edit.apply(configs[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"moby.buildkit.buildinfo.v1":"e30="`, `"User":"1001"`, `"StopSignal":"SIGTERM"`, `"X-Future":{"n":1.50}`,
		`"x-note":"kept"`, `"a":"<b>"`, `"Entrypoint":["/bin/opm"]`, `"Cmd":["serve","/configs"]`, `"created":"2025-01-01T00:00:00Z"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("rebuilt config lacks %s:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), `"history"`) {
		t.Errorf("a config without history got one:\n%s", data)
	}
	if _, err := edit.apply(configs[0], 2); err == nil || !strings.Contains(err.Error(), "1 diff IDs for the manifest's 2 layers") {
		t.Errorf("diff IDs not matching the layers: %v", err)
	}
}

// TestFBCLayerKeepsOtherSchemas: documents of schemas opm does not know
// stay with their package, or at the root when they name none, and ferry
// reads them back from the layer.
func TestFBCLayerKeepsOtherSchemas(t *testing.T) {
	cfg := twoPackages()
	cfg.Others = []declcfg.Meta{
		{Schema: "example.com/notes", Package: "alpha", Name: "n1", Blob: json.RawMessage(`{"schema":"example.com/notes","package":"alpha","name":"n1","text":"hi"}`)},
		{Schema: "example.com/global", Name: "g", Blob: json.RawMessage(`{"schema":"example.com/global","name":"g"}`)},
	}
	layer, err := newFBCLayer(cfg, "/configs", "")
	if err != nil {
		t.Fatal(err)
	}
	lt := readLayerTar(t, layer.data)
	if !bytes.Contains(lt.files["configs/alpha/catalog.json"], []byte(`"example.com/notes"`)) ||
		!bytes.Contains(lt.files["configs/catalog.json"], []byte(`"example.com/global"`)) {
		t.Fatalf("other schemas not where they belong: %q", lt.names())
	}
	ls, _ := image(layer.data)
	back, err := ReadFBC(t.Context(), ls, "/configs")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fbcJSON(t, back), fbcJSON(t, cfg); got != want {
		t.Errorf("read back:\n%s\nwant:\n%s", got, want)
	}
}

// TestCacheToHide: which cache directory the layer whites out, and which
// ones it refuses.
func TestCacheToHide(t *testing.T) {
	for _, tc := range []struct{ cache, want, err string }{
		{"/tmp/cache", "tmp/cache", ""},
		{"/tmp/cache/", "tmp/cache", ""},
		{"", "", ""},
		{"/configs/.cache", "", ""}, // the configs directory's opaque whiteout hides it
		{"tmp/cache", "", "not an absolute path"},
		{"/", "", "root directory"},
		{"/configs", "", "is the configs directory"},
		{"/configs/..", "", "root directory"},
	} {
		got, err := cacheToHide(tc.cache, "configs")
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("cacheToHide(%q) = %q, %v; want %q, %q", tc.cache, got, err, tc.want, tc.err)
		}
	}
}
