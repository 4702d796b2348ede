package graphdata_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror/graphdata"
)

// Fetch reads graph data (here a directory; an https URL or a tarball's
// file:// URL work the same), and BuildImage puts it on a base image.
func Example() {
	dir, err := filepath.Abs("../../../shared/fixtures/graph/graph-data")
	if err != nil {
		panic(err)
	}
	data, err := graphdata.Fetch(context.Background(), (&url.URL{Scheme: "file", Path: dir}).String(), graphdata.FetchOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("schema", data.Version, "with", len(data.Files), "files")
	for _, c := range data.Channels {
		fmt.Println(c.Name, len(c.Versions), "releases from", c.Versions[0])
	}
	fmt.Println(len(data.Versions), "releases in all, the newest", data.Versions[len(data.Versions)-1])

	// The base as ferry pulled it: a single-platform manifest and its config.
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`,
		digest.FromBytes(config), len(config))
	img, err := graphdata.BuildImage(graphdata.BaseImage{Manifest: []byte(manifest), Config: config}, data)
	if err != nil {
		panic(err)
	}
	again, err := graphdata.BuildImage(graphdata.BaseImage{Manifest: []byte(manifest), Config: config}, data)
	if err != nil {
		panic(err)
	}
	fmt.Println(img.MediaType, "same digest twice:", img.Digest == again.Digest)
	for _, b := range img.Blobs {
		fmt.Println("new blob", b.MediaType)
	}
	// Output:
	// schema 1.1.0 with 492 files
	// stable-4.14 178 releases from 4.12.0
	// stable-4.15 109 releases from 4.14.0
	// 234 releases in all, the newest 4.15.59
	// application/vnd.oci.image.manifest.v1+json same digest twice: true
	// new blob application/vnd.oci.image.config.v1+json
	// new blob application/vnd.oci.image.layer.v1.tar+gzip
}
