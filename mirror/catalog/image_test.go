package catalog

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

// stockCmd is the command of the catalog images Red Hat builds (see the
// descheduler fixture's Dockerfile).
var (
	stockEntrypoint = []string{"/bin/opm"}
	stockCmd        = []string{"serve", "/configs", "--cache-dir=/tmp/cache"}
	stockLabels     = map[string]string{LabelConfigsDir: "/configs"}
)

// catalogImage is one platform image of a catalog, to push.
type catalogImage struct {
	arch            string
	labels          map[string]string
	entrypoint, cmd []string
	layers          [][]byte // plain tars, base first; pushed gzip'd
	docker          bool     // Docker schema 2 media types, not OCI ones
}

// pushed is an image or index in the test registry.
type pushed struct {
	digest    digest.Digest
	mediaType string
	size      int64
	layers    []digest.Digest // an image's layer blobs, base first
}

func pushJSON(t *testing.T, reg *testbed.Registry, repo, ref, mediaType string, v any) pushed {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if ref == "" {
		ref = digest.FromBytes(data).String()
	}
	d, err := reg.PushManifest(t.Context(), repo, ref, mediaType, data)
	if err != nil {
		t.Fatal(err)
	}
	return pushed{digest: d, mediaType: mediaType, size: int64(len(data))}
}

func pushBlob(t *testing.T, reg *testbed.Registry, repo string, data []byte) ocispec.Descriptor {
	t.Helper()
	d, err := reg.PushBlob(t.Context(), repo, data)
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{Digest: d, Size: int64(len(data))}
}

// push stores img in repo under its digest and, if tag is set, the tag.
func (img catalogImage) push(t *testing.T, reg *testbed.Registry, repo, tag string) pushed {
	t.Helper()
	config := ocispec.Image{
		Platform: ocispec.Platform{Architecture: img.arch, OS: "linux"},
		Config:   ocispec.ImageConfig{Labels: img.labels, Entrypoint: img.entrypoint, Cmd: img.cmd},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	layerType, configType := ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageConfig
	if img.docker {
		m.MediaType, layerType, configType = testbed.MediaTypeDockerManifest, testbed.MediaTypeDockerLayer, testbed.MediaTypeDockerConfig
	}
	var layers []digest.Digest
	for _, l := range img.layers {
		config.RootFS.DiffIDs = append(config.RootFS.DiffIDs, digest.FromBytes(l))
		desc := pushBlob(t, reg, repo, gzipped(t, l))
		desc.MediaType = layerType
		m.Layers = append(m.Layers, desc)
		layers = append(layers, desc.Digest)
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	m.Config = pushBlob(t, reg, repo, configJSON)
	m.Config.MediaType = configType
	p := pushJSON(t, reg, repo, tag, m.MediaType, m)
	p.layers = layers
	return p
}

// pushIndex stores an index of images (with their platforms) under tag.
func pushIndex(t *testing.T, reg *testbed.Registry, repo, tag string, images []pushed, platforms []ocispec.Platform, annotations []map[string]string) pushed {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	if images[0].mediaType == testbed.MediaTypeDockerManifest {
		idx.MediaType = testbed.MediaTypeDockerManifestList
	}
	for i, img := range images {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: img.mediaType, Digest: img.digest, Size: img.size,
			Platform: &platforms[i], Annotations: annotations[i],
		})
	}
	return pushJSON(t, reg, repo, tag, idx.MediaType, idx)
}

func testClient(t *testing.T) *registry.Client {
	return registry.New(registry.Options{
		AuthFile:  filepath.Join(t.TempDir(), "auth.json"), // none: the host's credentials stay out
		TLSVerify: false,                                   // plain HTTP to the test registry
		UserAgent: "ferry-test",
		Retry:     registry.RetryPolicy{Attempts: 1},
	})
}

func baseLayer(t *testing.T, arch string) []byte {
	return plainTar(t, dir("bin/"), file("bin/opm", "\x7fELF "+arch), dir("etc/"), file("etc/os-release", "ID=rhel\n"))
}

func cacheLayer(t *testing.T, arch string) []byte {
	return plainTar(t, dir("tmp/cache/"), file("tmp/cache/digest", arch), file("tmp/cache/cache.json", "{not an FBC"))
}

// TestReadStockCatalogImage reads a catalog image shaped like Red Hat's
// (base with opm, the real descheduler FBC under /configs, opm's cache
// beside it) by tag from a real registry through ferry's client, and gets
// the image's identity, command, cache directory and catalog.
func TestReadStockCatalogImage(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	img := catalogImage{
		arch: "amd64", labels: stockLabels, entrypoint: stockEntrypoint, cmd: stockCmd,
		layers: [][]byte{
			baseLayer(t, "amd64"),
			plainTar(t, dir("configs/"), file("configs/cluster-kube-descheduler-operator/catalog.json", string(readFixture(t, deschedulerFixture)))),
			cacheLayer(t, "amd64"),
		},
	}
	p := img.push(t, reg, "olm/descheduler-catalog", "v4.18")
	ref := reg.Host + "/olm/descheduler-catalog:v4.18"

	cat, err := Read(t.Context(), testClient(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	if cat.Ref != ref || cat.Repository != reg.Host+"/olm/descheduler-catalog" || cat.Digest != p.digest || cat.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("read %s %s %s %s", cat.Ref, cat.Repository, cat.Digest, cat.MediaType)
	}
	if !slices.Equal(cat.Platforms, []digest.Digest{p.digest}) || cat.FBCFrom != p.digest {
		t.Errorf("platforms %v, FBC from %s; want the image %s", cat.Platforms, cat.FBCFrom, p.digest)
	}
	if cat.ConfigsDir != "/configs" || cat.CacheDir != "/tmp/cache" || !slices.Equal(cat.Cmd, stockCmd) || !slices.Equal(cat.Entrypoint, stockEntrypoint) {
		t.Errorf("configs %s, cache %s, entrypoint %q, cmd %q", cat.ConfigsDir, cat.CacheDir, cat.Entrypoint, cat.Cmd)
	}
	wantPackages(t, cat.FBC, nil, "cluster-kube-descheduler-operator")
	if len(cat.FBC.Channels) != 2 || len(cat.FBC.Bundles) != 11 {
		t.Errorf("%d channels and %d bundles, want 2 and 11", len(cat.FBC.Channels), len(cat.FBC.Bundles))
	}

	byDigest, err := Read(t.Context(), testClient(t), reg.Host+"/olm/descheduler-catalog@"+p.digest.String())
	if err != nil {
		t.Fatal(err)
	}
	if byDigest.Digest != p.digest || len(byDigest.FBC.Bundles) != 11 {
		t.Errorf("by digest: %s, %d bundles", byDigest.Digest, len(byDigest.FBC.Bundles))
	}
}

// requestLog records the paths of the GET requests a proxy passed.
type requestLog struct {
	mu   sync.Mutex
	gets []string
}

func (l *requestLog) record(_ int64, r *http.Request) bool {
	if r.Method == http.MethodGet {
		l.mu.Lock()
		l.gets = append(l.gets, r.URL.Path)
		l.mu.Unlock()
	}
	return true
}

func (l *requestLog) fetched(repo string, d digest.Digest) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.gets, "/v2/"+repo+"/blobs/"+d.String())
}

// TestReadMultiPlatformCatalog reads a two-platform catalog by the digest
// of its index, which also names a BuildKit attestation: both platforms
// are recorded, their configs checked, and the FBC (the real project-quay
// YAML stream) read from the first; the second platform's layers are
// never fetched.
func TestReadMultiPlatformCatalog(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	const repo = "olm/community-catalog"
	fbc := plainTar(t, dir("configs/"), file("configs/project-quay/catalog.yaml", string(readFixture(t, quayFixture))))
	var images []pushed
	for _, arch := range []string{"amd64", "arm64"} {
		img := catalogImage{arch: arch, labels: stockLabels, entrypoint: stockEntrypoint, cmd: stockCmd,
			layers: [][]byte{baseLayer(t, arch), fbc, cacheLayer(t, arch)}}
		images = append(images, img.push(t, reg, repo, ""))
	}
	attestation := catalogImage{arch: "unknown", layers: [][]byte{plainTar(t, file("provenance.json", "{}"))}}.push(t, reg, repo, "")
	index := pushIndex(t, reg, repo, "v4.18", append(images, attestation),
		[]ocispec.Platform{{Architecture: "amd64", OS: "linux"}, {Architecture: "arm64", OS: "linux"}, {Architecture: "unknown", OS: "unknown"}},
		[]map[string]string{nil, nil, {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": images[0].digest.String()}})

	proxy := testbed.NewFaultProxy(t, reg.URL)
	var log requestLog
	proxy.OnRequest(log.record)
	cat, err := Read(t.Context(), testClient(t), proxy.Host+"/"+repo+"@"+index.digest.String())
	if err != nil {
		t.Fatal(err)
	}
	if cat.Digest != index.digest || cat.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("read %s (%s), want the index %s", cat.Digest, cat.MediaType, index.digest)
	}
	if want := []digest.Digest{images[0].digest, images[1].digest}; !slices.Equal(cat.Platforms, want) || cat.FBCFrom != want[0] {
		t.Errorf("platforms %v, FBC from %s; want %v from the first", cat.Platforms, cat.FBCFrom, want)
	}
	wantPackages(t, cat.FBC, nil, "project-quay")
	if len(cat.FBC.Channels) != 12 {
		t.Errorf("%d channels, want 12", len(cat.FBC.Channels))
	}
	own := 0 // the second platform's own layers: base and cache
	for _, d := range images[1].layers {
		if slices.Contains(images[0].layers, d) {
			continue
		}
		own++
		if log.fetched(repo, d) {
			t.Errorf("layer %s of the second platform was fetched", d)
		}
	}
	if own != 2 {
		t.Fatalf("the second platform has %d layers of its own, want 2", own)
	}
	for _, d := range images[0].layers {
		if !log.fetched(repo, d) {
			t.Errorf("layer %s of the first platform was not fetched", d)
		}
	}
}

// TestReadDockerCatalog: a catalog pushed with Docker schema 2 media
// types (a manifest list of two platforms), as registry.redhat.io serves
// many, reads the same.
func TestReadDockerCatalog(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	const repo = "redhat/redhat-operator-index"
	fbc := plainTar(t, file("configs/cluster-kube-descheduler-operator/catalog.json", string(readFixture(t, deschedulerFixture))))
	var images []pushed
	for _, arch := range []string{"amd64", "s390x"} {
		img := catalogImage{arch: arch, labels: stockLabels, entrypoint: stockEntrypoint, cmd: stockCmd, docker: true,
			layers: [][]byte{baseLayer(t, arch), fbc, cacheLayer(t, arch)}}
		images = append(images, img.push(t, reg, repo, ""))
	}
	list := pushIndex(t, reg, repo, "v4.18", images,
		[]ocispec.Platform{{Architecture: "amd64", OS: "linux"}, {Architecture: "s390x", OS: "linux"}}, make([]map[string]string, 2))
	cat, err := Read(t.Context(), testClient(t), reg.Host+"/"+repo+":v4.18")
	if err != nil {
		t.Fatal(err)
	}
	if cat.Digest != list.digest || cat.MediaType != testbed.MediaTypeDockerManifestList || len(cat.Platforms) != 2 || cat.CacheDir != "/tmp/cache" {
		t.Errorf("read %s (%s), platforms %v, cache %s", cat.Digest, cat.MediaType, cat.Platforms, cat.CacheDir)
	}
	if len(cat.FBC.Bundles) != 11 {
		t.Errorf("%d bundles, want 11", len(cat.FBC.Bundles))
	}
}

// TestReadRefusesCatalogs: an image that is not a file-based catalog, and
// platforms that would need rebuilding differently, are refused, naming
// the image.
func TestReadRefusesCatalogs(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	fbc := plainTar(t, file("configs/a/catalog.json", pkg("a")))
	image := func(labels map[string]string, cmd ...string) catalogImage {
		return catalogImage{arch: "amd64", labels: labels, entrypoint: stockEntrypoint, cmd: cmd, layers: [][]byte{fbc}}
	}
	linux := func(arch string) ocispec.Platform { return ocispec.Platform{Architecture: arch, OS: "linux"} }
	twoPlatforms := func(repo string, a, b catalogImage) string {
		pa, pb := a.push(t, reg, repo, ""), b.push(t, reg, repo, "")
		pushIndex(t, reg, repo, "v1", []pushed{pa, pb}, []ocispec.Platform{linux("amd64"), linux("arm64")}, make([]map[string]string, 2))
		return fmt.Sprintf("%s and %s", pa.digest, pb.digest)
	}

	noLabel := image(map[string]string{"vendor": "x"}, stockCmd...).push(t, reg, "no-label", "v1")
	sqlite := image(map[string]string{labelDatabase: "/database/index.db"}, "registry", "serve").push(t, reg, "sqlite", "v1")
	cmds := twoPlatforms("cmds", image(stockLabels, stockCmd...), image(stockLabels, "serve", "/configs"))
	dirs := twoPlatforms("dirs", image(stockLabels, stockCmd...), image(map[string]string{LabelConfigsDir: "/catalog"}, stockCmd...))
	tests := []struct {
		repo string
		want []string
	}{
		{"no-label", []string{noLabel.digest.String(), "no label " + LabelConfigsDir}},
		{"sqlite", []string{sqlite.digest.String(), "SQLite-based index image"}},
		{"cmds", []string{cmds, "run different commands"}},
		{"dirs", []string{dirs, "different directories, /configs and /catalog"}},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			_, err := Read(t.Context(), testClient(t), reg.Host+"/"+tt.repo+":v1")
			wantErrorContaining(t, err, append(tt.want, reg.Host+"/"+tt.repo+":v1")...)
		})
	}

	t.Run("too many platforms", func(t *testing.T) {
		one := image(stockLabels, stockCmd...).push(t, reg, "wide", "")
		images := make([]pushed, MaxPlatforms+1)
		platforms := make([]ocispec.Platform, len(images))
		for i := range images {
			images[i], platforms[i] = one, linux(fmt.Sprintf("arch%d", i))
		}
		pushIndex(t, reg, "wide", "v1", images, platforms, make([]map[string]string, len(images)))
		_, err := Read(t.Context(), testClient(t), reg.Host+"/wide:v1")
		wantBound(t, err, "MaxPlatforms", MaxPlatforms)
	})
	t.Run("no tag nor digest", func(t *testing.T) {
		_, err := Read(t.Context(), testClient(t), reg.Host+"/no-label")
		wantErrorContaining(t, err, "neither a tag nor a digest")
	})
}

// TestCacheDir: opm's flag in either form, the last one winning; none
// when opm builds its cache at start.
func TestCacheDir(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"/bin/opm", "serve", "/configs", "--cache-dir=/tmp/cache"}, "/tmp/cache"},
		{[]string{"/bin/opm", "serve", "/configs", "--cache-dir", "/var/cache/opm"}, "/var/cache/opm"},
		{[]string{"serve", "--cache-dir=/a", "/configs", "--cache-dir=/b"}, "/b"},
		{[]string{"/bin/opm", "serve", "/configs"}, ""},
		{[]string{"serve", "/configs", "--cache-dir"}, ""},
		{nil, ""},
	} {
		if got := cacheDir(tt.args); got != tt.want {
			t.Errorf("cacheDir(%q) = %q, want %q", strings.Join(tt.args, " "), got, tt.want)
		}
	}
}
