package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageSpec is what newImage needs to make one image manifest.
type imageSpec struct {
	role, component, arch string
	docker                bool
	labels                map[string]string
	layers                []*blob
}

func platform(arch string) *ocispec.Platform {
	p := &ocispec.Platform{Architecture: arch, OS: "linux"}
	if arch == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// marshalManifest encodes a manifest the way its kind is usually found:
// Docker's tools indent with three spaces, OCI ones write compact JSON.
func marshalManifest(v any, docker bool) ([]byte, error) {
	if docker {
		return json.MarshalIndent(v, "", "   ")
	}
	return json.Marshal(v)
}

// pushByDigest marshals manifest v as marshalManifest does and pushes it
// to repo by its digest; it returns the bytes pushed and their digest.
func (b *builder) pushByDigest(ctx context.Context, repo, mediaType string, v any, docker bool) ([]byte, digest.Digest, error) {
	data, err := marshalManifest(v, docker)
	if err != nil {
		return nil, "", err
	}
	d, err := b.c.PushManifest(ctx, repo, digest.FromBytes(data).String(), mediaType, data)
	if err != nil {
		return nil, "", err
	}
	return data, d, nil
}

// newImage pushes the config and layers of an image, then its manifest by digest.
func (b *builder) newImage(ctx context.Context, repo string, s imageSpec) (*image, error) {
	cfg := ocispec.Image{
		Created:  &epoch,
		Platform: *platform(s.arch),
		Config:   ocispec.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"}, Labels: s.labels},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	for i, l := range s.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		cfg.History = append(cfg.History, ocispec.History{Created: &epoch, CreatedBy: fmt.Sprintf("testbed layer %d", i)})
	}
	config, err := b.jsonBlob(ctx, repo, cfg)
	if err != nil {
		return nil, err
	}
	mt, cfgMT, layerMT := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip
	if s.docker {
		mt, cfgMT, layerMT = MediaTypeDockerManifest, MediaTypeDockerConfig, MediaTypeDockerLayer
	}
	m := ocispec.Manifest{
		MediaType: mt,
		Config:    ocispec.Descriptor{MediaType: cfgMT, Digest: config.digest, Size: config.size},
	}
	m.SchemaVersion = 2
	blobs := []*blob{config}
	for _, l := range s.layers {
		if err := b.ensureBlob(ctx, repo, l); err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerMT, Digest: l.digest, Size: l.size})
		blobs = append(blobs, l)
	}
	data, d, err := b.pushByDigest(ctx, repo, mt, m, s.docker)
	if err != nil {
		return nil, err
	}
	im := &image{blobs: blobs, info: ImageInfo{
		Role: s.role, Repository: repo, Digest: d, MediaType: mt, Size: int64(len(data)),
		Manifest: data, Arch: s.arch, Component: s.component,
	}}
	for _, bl := range blobs {
		im.info.Blobs = append(im.info.Blobs, bl.digest)
	}
	return im, nil
}

// newIndex pushes a manifest list (or OCI index) of children by digest.
func (b *builder) newIndex(ctx context.Context, repo, role, component string, docker bool, children []*image) (*image, error) {
	mt := ocispec.MediaTypeImageIndex
	if docker {
		mt = MediaTypeDockerManifestList
	}
	idx := ocispec.Index{MediaType: mt, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, c := range children {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: c.info.MediaType, Digest: c.info.Digest, Size: c.info.Size, Platform: platform(c.info.Arch),
		})
	}
	data, d, err := b.pushByDigest(ctx, repo, mt, idx, docker)
	if err != nil {
		return nil, err
	}
	im := &image{children: children, info: ImageInfo{
		Role: role, Repository: repo, Digest: d, MediaType: mt, Size: int64(len(data)),
		Manifest: data, Component: component,
	}}
	for _, c := range children {
		c.info.Parent = d
		im.info.Children = append(im.info.Children, c.info.Digest)
	}
	return im, nil
}

// ensureImage puts an image made earlier (ShareWith) into this registry:
// nothing to do when it is there, else its children, blobs and manifest.
// A tagged image (a signature) gets its tag again either way.
func (b *builder) ensureImage(ctx context.Context, im *image) error {
	repo := im.info.Repository
	if _, err := b.c.HeadManifest(ctx, repo, im.info.Digest.String()); err != nil {
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		for _, c := range im.children {
			if err := b.ensureImage(ctx, c); err != nil {
				return err
			}
		}
		for _, bl := range im.blobs {
			if err := b.ensureBlob(ctx, repo, bl); err != nil {
				return err
			}
		}
		if _, err := b.c.PushManifest(ctx, repo, im.info.Digest.String(), im.info.MediaType, im.info.Manifest); err != nil {
			return err
		}
	}
	if im.info.Tag != "" {
		if _, err := b.c.PushManifest(ctx, repo, im.info.Tag, im.info.MediaType, im.info.Manifest); err != nil {
			return err
		}
	}
	return nil
}
