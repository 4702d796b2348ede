package graphdata

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
)

// DataDir is where the graph-data image holds the data. The update
// service's operator runs the image as an init container whose command
// copies it into the volume the service reads, mounted on
// /var/lib/cincinnati/graph-data.
const DataDir = "/var/lib/cincinnati-graph-data"

// command is the image's CMD, as Red Hat documents it for the graph-data
// image: it needs bash and cp in the base.
func command() []string {
	return []string{"/bin/bash", "-c", "exec cp -rp " + DataDir + "/* /var/lib/cincinnati/graph-data"}
}

// BaseImage is the single-platform image the graph-data image is built
// on, as ferry pulled it. A multi-platform base (an OCI index or a Docker
// manifest list) must first be resolved by the caller to the platform
// wanted, the cluster's architecture: the image's command runs there.
type BaseImage struct {
	// Manifest is the image manifest as the registry served it, an OCI
	// image manifest or a Docker schema 2 manifest.
	Manifest []byte
	// MediaType is the manifest's media type; empty means the one its
	// mediaType field names.
	MediaType string
	// Config is the config blob the manifest names; its digest and size
	// are checked against the manifest.
	Config []byte
}

// Image is a graph-data image. Pushing it means pushing the base's layers
// (the blobs the base manifest names, unchanged), then Blobs, then
// Manifest.
type Image struct {
	// Digest, MediaType and Manifest are the new image manifest, in the
	// base's schema (OCI or Docker schema 2).
	Digest    digest.Digest
	MediaType string
	Manifest  []byte
	// Blobs are what BuildImage made: the new config, then the data layer.
	Blobs []NewBlob
}

// NewBlob is a blob BuildImage made.
type NewBlob struct {
	Digest    digest.Digest
	MediaType string
	Data      []byte
}

// BuildImage builds the graph-data image of data on base:
//
//   - base's layers, unchanged, and one more: the data's files under
//     DataDir, directories mode 0755 and files 0644, owned by uid and gid 0,
//     in name order, with fixed times and a fixed gzip header;
//   - base's config with every field kept (treated as generic JSON), but
//     the data layer added to rootfs.diff_ids and to the history, the
//     command replaced by Red Hat's documented copy into the service's
//     volume and the entrypoint cleared;
//   - a manifest of base's schema, with the matching layer media type; the
//     base manifest's annotations describe the base and are not kept.
//
// The image's created time is base's own (the Unix epoch when base has
// none): the image's digest then depends only on base and data, so the
// same data on the same base is the same image, while tools that show or
// prune by age see a real date and not 1970. The data itself carries no
// date: its files' times are those of whoever unpacked it.
func BuildImage(base BaseImage, data *Data) (*Image, error) {
	if err := checkFiles(data); err != nil {
		return nil, fmt.Errorf("graph-data image: %w", err)
	}
	m, err := parseBaseManifest(base)
	if err != nil {
		return nil, fmt.Errorf("graph-data image: base manifest: %w", err)
	}
	if got := digest.FromBytes(base.Config); got != m.Config.Digest || int64(len(base.Config)) != m.Config.Size {
		return nil, fmt.Errorf("graph-data image: base config is %s (%d bytes), the manifest names %s (%d bytes)",
			got, len(base.Config), m.Config.Digest, m.Config.Size)
	}
	layer, diffID, err := writeLayer(data.Files)
	if err != nil {
		return nil, fmt.Errorf("graph-data image: layer: %w", err)
	}
	config, err := editConfig(base.Config, diffID, len(m.Layers), historyLine(data))
	if err != nil {
		return nil, fmt.Errorf("graph-data image: base config: %w", err)
	}
	layerBlob := NewBlob{Digest: digest.FromBytes(layer), MediaType: layerMediaType(m.MediaType), Data: layer}
	configBlob := NewBlob{Digest: digest.FromBytes(config), MediaType: m.Config.MediaType, Data: config}
	manifestBytes, err := m.withLayer(configBlob, layerBlob)
	if err != nil {
		return nil, fmt.Errorf("graph-data image: manifest: %w", err)
	}
	return &Image{
		Digest:    digest.FromBytes(manifestBytes),
		MediaType: m.MediaType,
		Manifest:  manifestBytes,
		Blobs:     []NewBlob{configBlob, layerBlob},
	}, nil
}

// checkFiles checks what BuildImage puts in the layer, which may not come
// from Fetch: only the files the service reads, each once, the version
// among them.
func checkFiles(data *Data) error {
	if data == nil {
		return errors.New("no graph data")
	}
	hasVersion := false
	for i, f := range data.Files {
		if !kept(f.Name) {
			return fmt.Errorf("graph data file %q is not one the update service reads", f.Name)
		}
		if i > 0 && strings.Compare(data.Files[i-1].Name, f.Name) >= 0 {
			return fmt.Errorf("graph data files not sorted by name or listed twice: %q, %q", data.Files[i-1].Name, f.Name)
		}
		hasVersion = hasVersion || f.Name == versionFile
	}
	if !hasVersion {
		return fmt.Errorf("graph data has no %s file", versionFile)
	}
	return nil
}

// historyLine describes the data layer in the image's history: from the
// data alone, so that it leaves the digest a function of base and data.
func historyLine(data *Data) string {
	blocked := 0
	for _, f := range data.Files {
		if strings.HasPrefix(f.Name, blockedEdgesDir+"/") {
			blocked++
		}
	}
	return fmt.Sprintf("ferry: graph data (schema %s, %d channels, %d blocked edges) in %s/",
		data.Version, len(data.Channels), blocked, DataDir)
}

// layerMediaType is the gzip layer media type of a manifest's schema.
func layerMediaType(manifestType string) string {
	if manifestType == manifest.DockerV2Schema2MediaType {
		return manifest.DockerV2Schema2LayerMediaType
	}
	return imgspecv1.MediaTypeImageLayerGzip
}
