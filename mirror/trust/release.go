package trust

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// maxConfigSize caps an image config read to learn a release's
// architecture; release configs are a few KiB.
const maxConfigSize = 4 << 20

// provenRelease is a release whose chain held: its version and arch as the
// release image says them.
type provenRelease struct {
	version, arch string
	digest        digest.Digest
	// policies are the image policies the release image ships; subjects
	// the images they may cover, in the repositories the cluster names.
	policies []sigstore.Policy
	subjects []sigstore.Subject
}

// releases proves every release of the index, in index order.
func (c *checker) releases(ctx context.Context) []provenRelease {
	var out []provenRelease
	seen := make(map[digest.Digest]bool, len(c.idx.Releases))
	for _, rel := range c.idx.Releases {
		if ctx.Err() != nil {
			return nil
		}
		if seen[rel.Digest] {
			// Proving it again would only repeat the work: a forger
			// listing one release a thousand times gets one fault.
			c.rep.fault("release %s (%s) is listed twice", rel.Tag, rel.Digest)
			continue
		}
		seen[rel.Digest] = true
		if p, ok := c.release(ctx, rel); ok {
			out = append(out, p)
		}
	}
	return out
}

// release proves one release: its signatures and ConfigMap, then what its
// image says, then each component. A release whose signature fails is not
// read further: nothing of it would be pushed, and its layers are not worth
// inflating.
func (c *checker) release(ctx context.Context, rel bundle.Release) (provenRelease, bool) {
	name := rel.Tag + " (" + rel.Digest.String() + ")"
	sources, ok := c.releaseSignatures(rel, name)
	if !ok {
		return provenRelease{}, false
	}
	data, mediaType, err := c.manifest(rel.Digest)
	if err != nil {
		c.rep.fault("release %s: %v", name, err)
		return provenRelease{}, false
	}
	instances, err := c.instances(rel.Digest, data, mediaType)
	if err != nil {
		c.rep.fault("release %s: %v", name, err)
		return provenRelease{}, false
	}
	var (
		refs     *release.ImageReferences
		policies []sigstore.Policy
	)
	for i, inst := range instances {
		got, gotPolicies, err := c.imageReferences(ctx, inst)
		if err != nil {
			c.rep.fault("release %s: image %s: %v", name, inst, err)
			return provenRelease{}, false
		}
		if refs != nil && (got.Version != refs.Version || !slices.Equal(got.Components, refs.Components)) {
			c.rep.fault("release %s: image %s names other components than its sibling images", name, inst)
			return provenRelease{}, false
		}
		if i > 0 && !slices.EqualFunc(gotPolicies, policies, sigstore.Policy.Equal) {
			c.rep.fault("release %s: image %s ships other image policies than its sibling images", name, inst)
			return provenRelease{}, false
		}
		refs, policies = got, gotPolicies
	}
	arch, err := c.releaseArch(instances, mediaType)
	if err != nil {
		c.rep.fault("release %s: %v", name, err)
		return provenRelease{}, false
	}
	if !c.sameAsIndex(rel, name, refs, arch) {
		return provenRelease{}, false
	}
	tag := refs.Version + "-" + arch
	proven := provenRelease{version: refs.Version, arch: arch, digest: rel.Digest, policies: policies}
	subject := func(img *Image, name string) {
		if img == nil {
			return
		}
		proven.subjects = append(proven.subjects, sigstore.Subject{Repository: img.Source, Digest: img.Digest, Name: name})
		for _, child := range img.Children {
			proven.subjects = append(proven.subjects, sigstore.Subject{Repository: img.Source, Digest: child, Name: name + " (" + child.Encoded()[:12] + ")"})
		}
	}
	for _, src := range sources {
		subject(c.prove("", src, rel.Digest, []string{tag}, ReleaseChain), "release "+refs.Version)
	}
	for _, comp := range refs.Components {
		subject(c.prove("", comp.Repository, comp.Digest, []string{tag + "-" + comp.Name}, ReleaseChain), "component "+comp.Name)
	}
	c.kubeVirt(refs.Version, c.bootImages[instances[0]])
	return proven, true
}

// kubeVirt proves the RHCOS KubeVirt containers the index lists for a
// release when the release's own coreos-bootimages manifest pins them by
// digest: the payload names the repository and digest, and the tag is
// derived. A container it does not pin is left to the bundle signature.
func (c *checker) kubeVirt(version string, bootImages []byte) {
	if bootImages == nil {
		return
	}
	boot, err := release.ParseBootImages(bootImages)
	if err != nil {
		return
	}
	for _, e := range c.idx.KubeVirt {
		if e.Release != version {
			continue
		}
		k, err := boot.KubeVirtContainer(e.Arch)
		if err != nil || k.Digest == "" || k.Digest != e.Digest || k.Repository != e.Source || e.Tag != version+"-"+k.Arch+"-rhcos-kubevirt" {
			continue
		}
		c.prove("", e.Source, e.Digest, []string{e.Tag}, ReleaseChain)
	}
}

// releaseSignatures checks a release's signatures and ConfigMap and returns
// the repositories the release is proven to come from: those its verified
// signatures name, or, for an unsigned release accepted as such, the
// index's source.
func (c *checker) releaseSignatures(rel bundle.Release, name string) ([]string, bool) {
	if rel.Unsigned {
		if !c.opts.AllowUnsigned {
			c.rep.fault("release %s is unsigned: it was packed without signatures, and unsigned releases are not accepted", name)
			c.rep.RefusedUnsigned++
			return nil, false
		}
		c.rep.Unverified = append(c.rep.Unverified, "release "+name+" has no verified signature")
		repo, err := repositoryOf(rel.Source)
		if err != nil {
			c.rep.fault("release %s: source %q: %v", name, rel.Source, err)
			return nil, false
		}
		return []string{repo}, true
	}
	if c.opts.Keyring == nil {
		c.rep.fault("release %s: no keyring to verify its signatures", name)
		return nil, false
	}
	if len(rel.Signatures) == 0 {
		c.rep.fault("release %s is marked signed but lists no signature", name)
		return nil, false
	}
	if len(rel.Signatures) > signature.MaxSignaturesPerDigest {
		// The cluster reads at most that many; more is a forger's way to
		// make every check cost a signature verification.
		c.rep.fault("release %s lists %d signatures, more than the %d the cluster reads", name, len(rel.Signatures), signature.MaxSignaturesPerDigest)
		return nil, false
	}
	var sigs [][]byte
	var sources []string
	for _, s := range rel.Signatures {
		data, err := c.r.ReadFile(s.File, signature.MaxSignatureSize)
		if err != nil {
			c.rep.fault("release %s: %v", name, err)
			return nil, false
		}
		v, err := signature.Verify(data, c.opts.Keyring, rel.Digest)
		if err != nil {
			c.rep.fault("release %s: %s: %v", name, s.File, err)
			return nil, false
		}
		repo, err := repositoryOf(v.Identity)
		if err != nil {
			c.rep.fault("release %s: %s names %q: %v", name, s.File, v.Identity, err)
			return nil, false
		}
		sigs, sources = append(sigs, data), append(sources, repo)
		c.rep.Signatures = append(c.rep.Signatures, fmt.Sprintf("%s: %s signed by %s (%s)", rel.Tag, s.File, v.Fingerprint, v.Identity))
	}
	if !c.configMap(rel, name, sigs) {
		return nil, false
	}
	slices.Sort(sources)
	return c.releaseSources(rel, name, slices.Compact(sources))
}

// releaseSources requires the index's source to be a repository the
// signatures name, unless the bundle signature covers it: the mirror sets
// must route only what the signer vouched for.
func (c *checker) releaseSources(rel bundle.Release, name string, signed []string) ([]string, bool) {
	repo, err := repositoryOf(rel.Source)
	if err != nil {
		c.rep.fault("release %s: source %q: %v", name, rel.Source, err)
		return nil, false
	}
	if slices.Contains(signed, repo) {
		return signed, true
	}
	if _, ok := c.accept(fmt.Sprintf("release %s from %s, which its signatures do not name", name, repo)); ok {
		return append(signed, repo), true
	}
	c.rep.fault("release %s: its source %s is not the repository its signatures name (%v): pack it from there, or sign the bundle",
		name, repo, signed)
	c.rep.RefusedUnproven++
	return nil, false
}

// configMap requires the release's ConfigMap to hold exactly the verified
// signature files, for the release digest.
func (c *checker) configMap(rel bundle.Release, name string, sigs [][]byte) bool {
	data, err := c.r.ReadFile(rel.ConfigMap, manifests.MaxSignatureConfigMapSize)
	if err != nil {
		c.rep.fault("release %s: %v", name, err)
		return false
	}
	cm, err := manifests.ParseSignatureConfigMap(data)
	if err != nil {
		c.rep.fault("release %s: %s: %v", name, rel.ConfigMap, err)
		return false
	}
	if cm.Digest != rel.Digest {
		c.rep.fault("release %s: %s is for digest %s", name, rel.ConfigMap, cm.Digest)
		return false
	}
	if !slices.EqualFunc(cm.Signatures, sigs, bytes.Equal) {
		c.rep.fault("release %s: %s does not hold exactly the bundle's signature files", name, rel.ConfigMap)
		return false
	}
	c.rep.ConfigMaps = append(c.rep.ConfigMaps, rel.ConfigMap)
	return true
}

// instances are the arch-specific images of a release: a list's children
// as its own bytes name them, or the image itself.
func (c *checker) instances(d digest.Digest, data []byte, mediaType string) ([]digest.Digest, error) {
	if !manifest.MIMETypeIsMultiImage(mediaType) {
		return []digest.Digest{d}, nil
	}
	list, err := manifest.ListFromBlob(data, mediaType)
	if err != nil {
		return nil, fmt.Errorf("parse manifest list %s: %w", d, err)
	}
	children := list.Instances()
	if len(children) == 0 {
		return nil, fmt.Errorf("manifest list %s has no instances", d)
	}
	return children, nil
}

// imageReferences reads release-manifests/ from an image's layers as they
// sit in the bundle, and checks it against release-metadata.
func (c *checker) imageReferences(ctx context.Context, d digest.Digest) (*release.ImageReferences, []sigstore.Policy, error) {
	files, err := c.releaseFiles(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	refs, _, err := files.Parse()
	if err != nil {
		return nil, nil, err
	}
	c.bootImages[d] = files.CoreOSBootImages
	policies, err := files.Policies()
	return refs, policies, err
}

// releaseFiles reads release-manifests/ from an image's layers as they sit
// in the bundle.
func (c *checker) releaseFiles(ctx context.Context, d digest.Digest) (*release.Files, error) {
	data, mediaType, err := c.manifest(d)
	if err != nil {
		return nil, err
	}
	if manifest.MIMETypeIsMultiImage(mediaType) {
		return nil, fmt.Errorf("a manifest list inside a manifest list")
	}
	m, err := manifest.FromBlob(data, mediaType)
	if err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	var openers []release.LayerOpener
	for _, l := range m.LayerInfos() {
		openers = append(openers, func(context.Context) (io.ReadCloser, error) {
			sr, _, err := c.r.Blob(l.Digest)
			if err != nil {
				return nil, err
			}
			return io.NopCloser(sr), nil
		})
	}
	return release.ReadFiles(ctx, openers)
}

// releaseArch is "multi" for a manifest list, else the architecture its
// config declares, in the release naming (x86_64, aarch64, ...).
func (c *checker) releaseArch(instances []digest.Digest, mediaType string) (string, error) {
	if manifest.MIMETypeIsMultiImage(mediaType) {
		return release.ArchMulti, nil
	}
	data, mt, err := c.manifest(instances[0])
	if err != nil {
		return "", err
	}
	m, err := manifest.FromBlob(data, mt)
	if err != nil {
		return "", fmt.Errorf("parse manifest: %w", err)
	}
	cfg := m.ConfigInfo()
	raw, err := readBlob(c.r, cfg.Digest, maxConfigSize)
	if err != nil {
		return "", fmt.Errorf("release image config: %w", err)
	}
	var config struct {
		Architecture string `json:"architecture"`
	}
	if err := json.Unmarshal(raw, &config); err != nil {
		return "", fmt.Errorf("release image config %s: %w", cfg.Digest, err)
	}
	return release.NormalizeArch(config.Architecture)
}

// sameAsIndex compares what the release image says with the index's
// record: a difference means the index was altered or made by a bug, and
// either way it must not name tags.
func (c *checker) sameAsIndex(rel bundle.Release, name string, refs *release.ImageReferences, arch string) bool {
	ok := true
	if refs.Version != rel.Version {
		c.rep.fault("release %s: image-references says version %s, the index %s", name, refs.Version, rel.Version)
		ok = false
	}
	if arch != rel.Arch {
		c.rep.fault("release %s: the release image is for %s, the index says %s", name, arch, rel.Arch)
		ok = false
	}
	want := make(map[string]string, len(rel.Components))
	for _, comp := range rel.Components {
		want[comp.Name] = comp.Image
	}
	got := make(map[string]bool, len(refs.Components))
	for _, comp := range refs.Components {
		got[comp.Name] = true
		if want[comp.Name] != comp.Image {
			c.rep.fault("release %s: image-references names %s = %s, the index %q", name, comp.Name, comp.Image, want[comp.Name])
			ok = false
		}
	}
	for _, comp := range rel.Components {
		if !got[comp.Name] {
			c.rep.fault("release %s: the index lists component %s (%s), which image-references does not name", name, comp.Name, comp.Image)
			ok = false
		}
	}
	return ok
}

// repositoryOf is the repository of a pull spec (tag or digest dropped).
func repositoryOf(spec string) (string, error) {
	named, err := reference.ParseNormalizedNamed(spec)
	if err != nil {
		return "", err
	}
	return reference.TrimNamed(named).String(), nil
}

// readBlob reads a small blob of the bundle and checks it against d.
func readBlob(r *bundle.Reader, d digest.Digest, limit int64) ([]byte, error) {
	data, err := r.ReadFile(bundle.BlobName(d), limit)
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(data); got != d {
		return nil, fmt.Errorf("blob %s: %w: got %s", d, bundle.ErrDigestMismatch, got)
	}
	return data, nil
}
