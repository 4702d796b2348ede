package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"sigs.k8s.io/yaml"
)

// CoreOSBootImagesFile is where a release carries the installer's CoreOS
// boot images: a ConfigMap coreos-bootimages whose data.stream is the CoreOS
// stream metadata, naming per arch the RHCOS container disk for KubeVirt.
const CoreOSBootImagesFile = "release-manifests/0000_50_installer_coreos-bootimages.yaml"

// RoleKubeVirt is the Role of a KubeVirtContainer's image.
const RoleKubeVirt = "kubevirt"

// kubeVirtRHCOSBuild is the RHCOS build the stream names, in RHCOS's own
// numbering.
const kubeVirtRHCOSBuild = "9.6.20240201-0"

// KubeVirtContainer is the RHCOS container disk for KubeVirt that a
// KubeVirtContainer release's coreos-bootimages names for one arch: a
// single-arch image of one layer in ComponentRepository, tagged, and
// signed by digest when the release is signed.
type KubeVirtContainer struct {
	// Arch is the OpenShift arch name (x86_64, aarch64, ...).
	Arch string
	// Repository holds the image, without host.
	Repository string
	// Tag names it in Repository.
	Tag       string
	Digest    digest.Digest
	MediaType string
	// Image and DigestRef are the stream's "image" (host/repo:tag, as
	// OpenShift names it) and "digest-ref" (host/repo@digest).
	Image, DigestRef string
	// Images are the manifest pushed, then its signature, if any.
	Images []ImageInfo
	// Blobs are the config and layers of Images, with their sizes.
	Blobs map[digest.Digest]int64
	// SigTags are its cosign tags, as "repository:sha256-<hex>.sig".
	SigTags []string
}

// kubeVirtContainers pushes a KubeVirt container per arch of the release
// and renders the coreos-bootimages manifest naming them; nothing without
// ReleaseOptions.KubeVirtContainer.
func (b *builder) kubeVirtContainers(ctx context.Context) ([]KubeVirtContainer, []byte, error) {
	if !b.opts.KubeVirtContainer {
		return nil, nil, nil
	}
	out := make([]KubeVirtContainer, 0, len(b.arches))
	for _, goarch := range b.arches {
		k, err := b.kubeVirtContainer(ctx, goarch)
		if err != nil {
			return nil, nil, fmt.Errorf("kubevirt container for %s: %w", goarch, err)
		}
		out = append(out, *k)
	}
	data, err := coreOSBootImages(b.opts.Version, out)
	if err != nil {
		return nil, nil, err
	}
	return out, data, nil
}

func (b *builder) kubeVirtContainer(ctx context.Context, goarch string) (*KubeVirtContainer, error) {
	arch := openShiftArch(goarch)
	repo := ComponentRepository
	layer, err := b.newLayer(ctx, repo, "kubevirt/"+goarch)
	if err != nil {
		return nil, err
	}
	im, err := b.newImage(ctx, repo, imageSpec{
		role: RoleKubeVirt, arch: goarch, docker: !b.opts.OCI, layers: []*blob{layer},
		labels: map[string]string{"name": "rhel-coreos-kubevirt", "version": kubeVirtRHCOSBuild},
	})
	if err != nil {
		return nil, err
	}
	tag := "rhel-coreos-kubevirt-" + b.opts.Version + "-" + arch
	if _, err := b.c.PushManifest(ctx, repo, tag, im.info.MediaType, im.info.Manifest); err != nil {
		return nil, err
	}
	im.info.Tag = tag
	d := im.info.Digest
	k := &KubeVirtContainer{
		Arch: arch, Repository: repo, Tag: tag, Digest: d, MediaType: im.info.MediaType,
		Image: b.host + "/" + repo + ":" + tag, DigestRef: b.host + "/" + repo + "@" + d.String(),
		Blobs: map[digest.Digest]int64{},
	}
	images := []*image{im}
	if b.sigKey != nil {
		sigs, err := b.signAll(ctx, repo, []sigSpec{{signs: d, named: d, identity: k.DigestRef, key: b.sigKey}}, nil)
		if err != nil {
			return nil, err
		}
		images = append(images, sigs...)
	}
	for _, i := range images {
		k.Images = append(k.Images, i.info)
		for _, bl := range i.blobs {
			k.Blobs[bl.digest] = bl.size
		}
		if i.info.Role == RoleSigstore {
			k.SigTags = append(k.SigTags, repo+":"+i.info.Tag)
		}
	}
	return k, nil
}

// openShiftArch maps a GOARCH name to OpenShift's, which the stream uses.
func openShiftArch(goarch string) string {
	for name, g := range archGOARCH {
		if g == goarch {
			return name
		}
	}
	return goarch
}

// streamArches are the arches a real stream lists, whatever the release's.
var streamArches = []string{"aarch64", "ppc64le", "s390x", "x86_64"}

// coreOSBootImages renders the coreos-bootimages ConfigMap as the
// installer's build does (sigs.k8s.io/yaml of a v1 ConfigMap), its stream
// shaped like data/data/coreos/coreos-rhel-9.json: every arch with a metal
// artifact, and a kubevirt image for the arches of kubeVirt only.
func coreOSBootImages(version string, kubeVirt []KubeVirtContainer) ([]byte, error) {
	type kubeVirtImage struct {
		Release   string `json:"release"`
		Image     string `json:"image"`
		DigestRef string `json:"digest-ref"`
	}
	type artifact struct {
		Location string `json:"location"`
		Sha256   string `json:"sha256"`
	}
	type streamArch struct {
		Artifacts map[string]any `json:"artifacts"`
		Images    map[string]any `json:"images,omitempty"`
	}
	stream := struct {
		Stream   string `json:"stream"`
		Metadata struct {
			LastModified string `json:"last-modified"`
			Generator    string `json:"generator"`
		} `json:"metadata"`
		Architectures map[string]streamArch `json:"architectures"`
	}{Stream: "rhcos-" + minorVersion(version), Architectures: map[string]streamArch{}}
	stream.Metadata.LastModified = epoch.Format("2006-01-02T15:04:05Z")
	stream.Metadata.Generator = "ferry testbed"
	for _, arch := range streamArches {
		iso := "https://rhcos.mirror.example/" + kubeVirtRHCOSBuild + "/" + arch + "/rhcos-live-iso." + arch + ".iso"
		a := streamArch{Artifacts: map[string]any{"metal": map[string]any{
			"release": kubeVirtRHCOSBuild,
			"formats": map[string]any{"iso": map[string]any{"disk": artifact{Location: iso, Sha256: digest.FromString(iso).Encoded()}}},
		}}}
		if i := slices.IndexFunc(kubeVirt, func(k KubeVirtContainer) bool { return k.Arch == arch }); i >= 0 {
			k := kubeVirt[i]
			a.Images = map[string]any{"kubevirt": kubeVirtImage{Release: kubeVirtRHCOSBuild, Image: k.Image, DigestRef: k.DigestRef}}
		}
		stream.Architectures[arch] = a
	}
	streamJSON, err := json.MarshalIndent(stream, "", "  ")
	if err != nil {
		return nil, err
	}
	cm := map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name": "coreos-bootimages", "namespace": "openshift-machine-config-operator",
			"creationTimestamp": nil,
			"annotations": map[string]string{
				"include.release.openshift.io/ibm-cloud-managed":              "true",
				"include.release.openshift.io/self-managed-high-availability": "true",
				"include.release.openshift.io/single-node-developer":          "true",
			},
		},
		"data": map[string]string{"releaseVersion": version, "stream": string(streamJSON) + "\n"},
	}
	return yaml.Marshal(cm)
}

// minorVersion is "4.15" for "4.15.0-rc.1".
func minorVersion(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return version
	}
	return parts[0] + "." + parts[1]
}
