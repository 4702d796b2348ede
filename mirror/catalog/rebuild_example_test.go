package catalog_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/operator-framework/operator-registry/alpha/declcfg"

	"github.com/ferryhq/ferry/mirror/catalog"
)

// Rebuilding a stock catalog image (one platform, opm's cache pre-built
// in /tmp/cache) with a catalog of one package: the new layer hides the
// old catalog and the cache and holds the package; the command no longer
// names the cache, so opm builds it at start.
func ExampleRebuild() {
	base := digest.FromString("the source image's layer")
	config := `{"created":"2024-02-01T00:00:00Z","architecture":"amd64","os":"linux",
		"config":{"Entrypoint":["/bin/opm"],"Cmd":["serve","/configs","--cache-dir=/tmp/cache"],
			"Labels":{"operators.operatorframework.io.index.configs.v1":"/configs"}},
		"rootfs":{"type":"layers","diff_ids":["` + base.String() + `"]},
		"history":[{"created":"2024-02-01T00:00:00Z","created_by":"ADD catalog /configs"}]}`
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":1000}]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, digest.FromString(config), len(config), ocispec.MediaTypeImageLayerGzip, base)
	source := digest.FromString(manifest)
	cat := &catalog.Catalog{
		Ref: "registry.example/olm/catalog:v4.18", Digest: source, MediaType: ocispec.MediaTypeImageManifest, Manifest: []byte(manifest),
		Platforms: []digest.Digest{source}, FBCFrom: source,
		ConfigsDir: "/configs", CacheDir: "/tmp/cache",
		Entrypoint: []string{"/bin/opm"}, Cmd: []string{"serve", "/configs", "--cache-dir=/tmp/cache"},
		Images: []catalog.PlatformImage{{Digest: source, MediaType: ocispec.MediaTypeImageManifest, Manifest: []byte(manifest), Config: []byte(config)}},
	}
	fbc := &declcfg.DeclarativeConfig{
		Packages: []declcfg.Package{{Schema: declcfg.SchemaPackage, Name: "etcd", DefaultChannel: "stable"}},
		Channels: []declcfg.Channel{{Schema: declcfg.SchemaChannel, Package: "etcd", Name: "stable", Entries: []declcfg.ChannelEntry{{Name: "etcd.v1.0.0"}}}},
		Bundles:  []declcfg.Bundle{{Schema: declcfg.SchemaBundle, Package: "etcd", Name: "etcd.v1.0.0", Image: "registry.example/etcd/bundle@" + digest.FromString("b").String()}},
	}

	r, err := catalog.Rebuild(cat, fbc, catalog.RebuildOptions{Created: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), Filter: "etcd"})
	if err != nil {
		fmt.Println(err)
		return
	}
	var m ocispec.Manifest
	var img ocispec.Image
	_ = json.Unmarshal(r.Manifest, &m)
	for _, b := range r.Blobs {
		if b.Digest == m.Config.Digest {
			_ = json.Unmarshal(b.Data, &img)
		}
	}
	fmt.Println("layers:", len(m.Layers), "- the new one is", m.Layers[1].Digest == r.Blobs[0].Digest)
	fmt.Println("command:", img.Config.Entrypoint, img.Config.Cmd)
	fmt.Println("created:", img.Created.Format(time.RFC3339), "filter:", img.Config.Labels[catalog.LabelFilter])
	zr, _ := gzip.NewReader(bytes.NewReader(r.Blobs[0].Data))
	tr := tar.NewReader(zr)
	for hdr, err := tr.Next(); err == nil; hdr, err = tr.Next() {
		fmt.Println(hdr.Name)
	}
	// Output:
	// layers: 2 - the new one is true
	// command: [/bin/opm] [serve /configs]
	// created: 2025-06-01T00:00:00Z filter: etcd
	// configs/
	// configs/.wh..wh..opq
	// configs/etcd/
	// configs/etcd/catalog.json
	// tmp/
	// tmp/.wh.cache
}
