package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// maxConfigSize caps an image config read: a release image's, for its
// architecture, or the graph-data image's base's. Configs are a few KB.
const maxConfigSize = 4 << 20

// release resolves ref and walks the release image, its image-references
// and every component.
func (w *walk) release(ctx context.Context, ref release.Ref) (*Release, error) {
	src, err := w.source(ctx, ref.Repository)
	if err != nil {
		return nil, err
	}
	var m registry.Manifest
	if ref.Digest != "" {
		m, err = src.Manifest(ctx, ref.Digest)
	} else {
		m, err = src.ManifestByTag(ctx, ref.Tag)
	}
	if err != nil {
		return nil, err
	}
	img, err := w.addImage(ctx, src, ref.Repository, m, RoleRelease, "")
	if err != nil {
		return nil, err
	}
	rel := &Release{Ref: ref, Repository: ref.Repository, Digest: m.Digest, MediaType: m.MediaType}
	if err := w.readImageReferences(ctx, src, rel, img); err != nil {
		return nil, err
	}
	if rel.Arch, err = w.releaseArch(ctx, src, ref, img); err != nil {
		return nil, err
	}
	if ref.Version != "" && ref.Version != rel.Version {
		return nil, fmt.Errorf("the tag says version %s but the release image says %s", ref.Version, rel.Version)
	}
	w.tag(ref.Repository, m.Digest, rel.Tag())
	if err := w.components(ctx, rel); err != nil {
		return nil, err
	}
	if w.planner.KubeVirt {
		if err := w.kubeVirt(ctx, rel); err != nil {
			return nil, err
		}
	}
	return rel, nil
}

// instances are the arch-specific images of img: its children for a
// manifest list, itself otherwise.
func (w *walk) instances(img *Image) []*Image {
	if len(img.Children) == 0 {
		return []*Image{img}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*Image, 0, len(img.Children))
	for _, c := range img.Children {
		out = append(out, w.images[imageKey(img.Repository, c)])
	}
	return out
}

// readImageReferences reads release-manifests/ from each arch-specific
// release image; in a multi release all of them must name the same components.
func (w *walk) readImageReferences(ctx context.Context, src *registry.Source, rel *Release, img *Image) error {
	for _, inst := range w.instances(img) {
		files, err := release.ReadFiles(ctx, w.layerOpeners(src, inst))
		if err != nil {
			return fmt.Errorf("release image %s: %w", inst.Digest, err)
		}
		refs, err := release.ParseImageReferences(files.ImageReferences)
		if err != nil {
			return fmt.Errorf("release image %s: %w", inst.Digest, err)
		}
		meta, err := release.ParseMetadata(files.Metadata)
		if err != nil {
			return fmt.Errorf("release image %s: %w", inst.Digest, err)
		}
		if err := release.CheckVersion(refs, meta); err != nil {
			return fmt.Errorf("release image %s: %w", inst.Digest, err)
		}
		policies, err := files.Policies()
		if err != nil {
			return fmt.Errorf("release image %s: %w", inst.Digest, err)
		}
		if rel.Components == nil {
			rel.Version, rel.Components, rel.Policies = refs.Version, refs.Components, policies
			rel.bootImages = files.CoreOSBootImages
			continue
		}
		if refs.Version != rel.Version || !slices.Equal(refs.Components, rel.Components) {
			return fmt.Errorf("release image %s names other components than its sibling images", inst.Digest)
		}
		if !slices.EqualFunc(policies, rel.Policies, sigstore.Policy.Equal) {
			return fmt.Errorf("release image %s ships other image policies than its sibling images", inst.Digest)
		}
	}
	return nil
}

// layerOpeners opens img's layers from src, marking each layer opened as
// holding release files (Blob.ReleaseFiles).
func (w *walk) layerOpeners(src *registry.Source, img *Image) []release.LayerOpener {
	w.mu.Lock()
	defer w.mu.Unlock()
	var openers []release.LayerOpener
	// Blobs[0] is the config; the rest are layers, bottom first. The
	// offline proof reads the config too, for the release's architecture.
	w.blobs[img.Blobs[0]].ReleaseFiles = true
	for _, d := range img.Blobs[1:] {
		b := w.blobs[d]
		openers = append(openers, func(ctx context.Context) (io.ReadCloser, error) {
			w.mu.Lock()
			b.ReleaseFiles = true
			w.mu.Unlock()
			return src.VerifiedBlob(ctx, b.Digest, b.Size)
		})
	}
	return openers
}

// releaseArch is the arch from the tag, "multi" for a manifest list, or
// the architecture in the release image's config.
func (w *walk) releaseArch(ctx context.Context, src *registry.Source, ref release.Ref, img *Image) (string, error) {
	if ref.Arch != "" {
		return ref.Arch, nil
	}
	if len(img.Children) > 0 {
		return "multi", nil
	}
	w.mu.Lock()
	cfg := w.blobs[img.Blobs[0]]
	w.mu.Unlock()
	rc, err := src.VerifiedBlob(ctx, cfg.Digest, cfg.Size)
	if err != nil {
		return "", fmt.Errorf("read release image config: %w", err)
	}
	defer rc.Close()
	var config struct {
		Architecture string `json:"architecture"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, maxConfigSize)).Decode(&config); err != nil {
		return "", fmt.Errorf("read release image config %s: %w", cfg.Digest, err)
	}
	arch, err := release.NormalizeArch(config.Architecture)
	if err != nil {
		return "", fmt.Errorf("release image config %s: %w", cfg.Digest, err)
	}
	return arch, nil
}

// components walks every component image concurrently.
func (w *walk) components(ctx context.Context, rel *Release) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(w.planner.parallel())
	for _, c := range rel.Components {
		g.Go(func() error {
			src, err := w.source(ctx, c.Repository)
			if err != nil {
				return fmt.Errorf("component %s: %w", c.Name, err)
			}
			m, err := src.Manifest(ctx, c.Digest)
			if err != nil {
				return fmt.Errorf("component %s (%s): %w", c.Name, c.Image, err)
			}
			_, err = w.addImage(ctx, src, c.Repository, m, RoleComponent, rel.Tag()+"-"+c.Name)
			if err != nil {
				return fmt.Errorf("component %s (%s): %w", c.Name, c.Image, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// addImage records m (and, for a list, every child) with its blobs. An image
// already seen only gains the tag.
func (w *walk) addImage(ctx context.Context, src *registry.Source, repo string, m registry.Manifest, role, tag string) (*Image, error) {
	key := imageKey(repo, m.Digest)
	w.mu.Lock()
	if img, ok := w.images[key]; ok {
		w.mu.Unlock()
		w.tag(repo, m.Digest, tag)
		return img, nil
	}
	err := w.reserveManifest(key, len(m.Bytes))
	w.mu.Unlock()
	if err != nil {
		return nil, err
	}
	img, err := w.newImage(ctx, src, repo, m, role, tag)
	if err != nil {
		w.mu.Lock()
		w.manifestBytes -= int64(len(m.Bytes))
		w.mu.Unlock()
		return nil, err
	}
	stored, isNew := w.store(key, img, len(m.Bytes))
	if isNew && role != RoleSigstore {
		w.probeSigstore(src, stored) // not under w.mu: it may wait for a slot
	}
	return stored, nil
}

// store records img under key, unless another path walked it meanwhile:
// then that one gains img's tags and is returned. isNew is false then, and
// for an image ferry rebuilt.
func (w *walk) store(key string, img *Image, manifestSize int) (stored *Image, isNew bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if prior, ok := w.images[key]; ok {
		w.manifestBytes -= int64(manifestSize)
		prior.Tags = appendNew(prior.Tags, img.Tags...)
		return prior, false
	}
	w.images[key] = img
	w.order = append(w.order, key)
	return img, !w.rebuilt[key]
}

// newImage makes the Image of m, walking the children of a list.
func (w *walk) newImage(ctx context.Context, src *registry.Source, repo string, m registry.Manifest, role, tag string) (*Image, error) {
	img := &Image{Repository: repo, Digest: m.Digest, MediaType: m.MediaType, Manifest: m.Bytes, Role: role}
	if tag != "" {
		img.Tags = []string{tag}
	}
	if manifest.MIMETypeIsMultiImage(m.MediaType) {
		if err := w.addChildren(ctx, src, repo, img); err != nil {
			return nil, err
		}
	} else if err := w.addBlobs(img); err != nil {
		return nil, err
	}
	return img, nil
}

func (w *walk) addChildren(ctx context.Context, src *registry.Source, repo string, img *Image) error {
	list, err := manifest.ListFromBlob(img.Manifest, img.MediaType)
	if err != nil {
		return fmt.Errorf("parse manifest list %s: %w", img.Digest, err)
	}
	children := list.Instances()
	if len(children) > MaxListChildren {
		return &BoundError{Image: imageKey(repo, img.Digest), Bound: "MaxListChildren", Limit: MaxListChildren, Got: int64(len(children))}
	}
	for _, child := range children {
		m, err := src.Manifest(ctx, child)
		if err != nil {
			return fmt.Errorf("manifest list %s, child %s: %w", img.Digest, child, err)
		}
		if manifest.MIMETypeIsMultiImage(m.MediaType) {
			return fmt.Errorf("manifest list %s nests another list %s", img.Digest, child)
		}
		if _, err := w.addImage(ctx, src, repo, m, RoleChild, ""); err != nil {
			return err
		}
		img.Children = append(img.Children, child)
	}
	return nil
}

func (w *walk) addBlobs(img *Image) error {
	parsed, err := manifest.FromBlob(img.Manifest, img.MediaType)
	if err != nil {
		return fmt.Errorf("parse manifest %s: %w", img.Digest, err)
	}
	if img.MediaType == manifest.DockerV2Schema1MediaType || img.MediaType == manifest.DockerV2Schema1SignedMediaType {
		return fmt.Errorf("manifest %s is Docker schema 1, which OpenShift releases never use", img.Digest)
	}
	layers := parsed.LayerInfos()
	if len(layers) > MaxImageLayers {
		return &BoundError{Image: imageKey(img.Repository, img.Digest), Bound: "MaxImageLayers", Limit: MaxImageLayers, Got: int64(len(layers))}
	}
	cfg := parsed.ConfigInfo()
	infos := []blobInfo{{cfg.Digest, cfg.Size, cfg.MediaType}}
	for _, l := range layers {
		infos = append(infos, blobInfo{l.Digest, l.Size, l.MediaType})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range infos {
		if b.size < 0 {
			return fmt.Errorf("manifest %s does not give the size of blob %s", img.Digest, b.digest)
		}
		if prior, ok := w.blobs[b.digest]; ok && prior.Size != b.size {
			return fmt.Errorf("blob %s is %d bytes in manifest %s but %d bytes elsewhere", b.digest, b.size, img.Digest, prior.Size)
		}
		if _, ok := w.blobs[b.digest]; !ok {
			w.blobs[b.digest] = &Blob{Digest: b.digest, Size: b.size, MediaType: b.mediaType, Repository: img.Repository}
		}
		img.Blobs = append(img.Blobs, b.digest)
	}
	return nil
}

type blobInfo struct {
	digest    digest.Digest
	size      int64
	mediaType string
}

// probeSigstore looks up the cosign signature of img, a manifest just
// read from a registry: the tag sha256-<hex>.sig in the same repository. The
// lookups run beside the walk (at most Parallel at once, on top of the
// walk's own requests), so that over a slow link their round trips overlap
// the manifests still being read instead of following them; a walker
// waits for a free slot, so that lookups never pile up. Plan waits for
// them all. A tag that is not what cosign writes fails the plan (see
// SigstoreError).
func (w *walk) probeSigstore(src *registry.Source, img *Image) {
	w.probes.Go(func() error { return w.sigstoreTag(w.probeCtx, src, img) })
}

// sigstoreTag adds the cosign signature of img, if its repository has one.
func (w *walk) sigstoreTag(ctx context.Context, src *registry.Source, img *Image) error {
	tag := SigstoreTag(img.Digest)
	m, err := src.ManifestByTag(ctx, tag)
	if errors.Is(err, registry.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s:%s: %w", img.Repository, tag, err)
	}
	if err := checkSigstore(img.Repository, tag, m); err != nil {
		return err
	}
	sig, err := w.addImage(ctx, src, img.Repository, m, RoleSigstore, tag)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.signatures[imageKey(img.Repository, img.Digest)] = sig
	// Apply proves the signatures again from the bundle, so their payloads
	// travel even when the target holds them (the config, which no check
	// reads, need not).
	for _, d := range sig.Blobs[1:] {
		w.blobs[d].ReleaseFiles = true
	}
	return nil
}

// placeSignatures sends each signature where its image goes, once every
// image has its target (additional images get theirs after their probe
// began): the nodes look for a signature beside its image.
func (w *walk) placeSignatures() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, sig := range w.signatures {
		sig.Target = w.images[key].Target
	}
}

// SigstoreTag is the tag cosign stores the signature of d under.
func SigstoreTag(d digest.Digest) string {
	return string(d.Algorithm()) + "-" + d.Encoded() + ".sig"
}

// tag adds a target tag to an image already recorded.
func (w *walk) tag(repo string, d digest.Digest, tag string) {
	if tag == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if img, ok := w.images[imageKey(repo, d)]; ok {
		img.Tags = appendNew(img.Tags, tag)
	}
}

func imageKey(repo string, d digest.Digest) string { return repo + "@" + d.String() }

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}
