package release

// The coreos-bootimages manifest. The installer's build turns its CoreOS
// stream metadata (data/data/coreos/*.json in openshift/installer, the
// format of coreos/stream-metadata-go's stream.Stream) into a ConfigMap
// "coreos-bootimages" in the namespace "openshift-machine-config-operator";
// the release carries it as release-manifests/0000_50_installer_coreos-bootimages.yaml
// and the machine-config operator reads it in the cluster. Its data:
//
//   - stream: the stream metadata JSON of the default OS stream: "stream"
//     (its name, e.g. rhcos-4.21), "metadata", and "architectures" keyed by
//     the names ferry's release arches use too (x86_64, aarch64, s390x,
//     ppc64le). Under architectures.<arch>.images, next to the cloud images
//     (aws, gcp, ...), "kubevirt" names the RHCOS container disk for
//     KubeVirt: "release" (the RHCOS build), "image" (the preferred pull
//     spec, in practice by tag, e.g. ...ocp-v4.0-art-dev:rhel-9.8-coreos-kubevirt)
//     and "digest-ref" (the same image by digest). An arch may have no
//     kubevirt entry at all (real streams have one for x86_64 only).
//   - releaseVersion: a placeholder the release build replaces with the
//     release's version.
//   - streams (newer installers): every OS stream by name, as JSON. Only
//     the default stream is read here.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"gopkg.in/yaml.v3"
)

// CoreOSBootImagesPath is where a release carries its CoreOS boot images.
const CoreOSBootImagesPath = ReleaseManifestsDir + "0000_50_installer_coreos-bootimages.yaml"

// MaxCoreOSBootImagesSize caps the coreos-bootimages manifest ReadFiles
// keeps. A real one is 50 to 150 KiB (about 40 KiB of stream metadata per
// OS stream, the default one twice); the cluster applies it as a ConfigMap,
// whose data Kubernetes caps at 1 MiB, so a larger one could never be
// applied. It is MaxPolicyFileSize, so that a kept file is one the scan for
// image policies reads whole too.
const MaxCoreOSBootImagesSize = MaxPolicyFileSize

// Names of the coreos-bootimages ConfigMap, which the machine-config
// operator reads.
const (
	bootImagesName      = "coreos-bootimages"
	bootImagesNamespace = "openshift-machine-config-operator"
)

// Errors of KubeVirtContainer that a caller may decide on with errors.Is.
var (
	// ErrNoBootImages: the layers read hold no CoreOSBootImagesPath
	// (releases before 4.8 ship none).
	ErrNoBootImages = errors.New("the release ships no coreos-bootimages manifest (" + CoreOSBootImagesPath + ")")
	// ErrNoKubeVirtContainer: the stream names no KubeVirt container for
	// the architecture asked for.
	ErrNoKubeVirtContainer = errors.New("no KubeVirt container")
)

// KubeVirtContainer is the RHCOS container disk for KubeVirt that a
// release's coreos-bootimages names for one architecture.
type KubeVirtContainer struct {
	// Arch is the architecture, as the stream and the release name it
	// (x86_64, aarch64, s390x, ppc64le).
	Arch string
	// Release is the RHCOS build ("9.8.20260428-0"); may be empty.
	Release string
	// Image is the pull spec exactly as the stream names it: "image", or
	// "digest-ref" when the stream gives no "image".
	Image string
	// Repository is Image's repository, normalized (docker.io/library/...
	// for a short name), without tag or digest.
	Repository string
	// Tag is Image's tag; empty when Image names a digest only.
	Tag string
	// Digest is the image's manifest digest: Image's when it is pinned by
	// digest, else DigestRef's; empty when the stream names neither, and
	// the image can then only be carried by tag.
	Digest digest.Digest
	// DigestRef is "digest-ref" as the stream names it; may be empty.
	DigestRef string
}

// PullSpec is the reference to copy: Repository@Digest when the digest is
// known, else Repository:Tag.
func (k *KubeVirtContainer) PullSpec() string {
	if k.Digest != "" {
		return k.Repository + "@" + k.Digest.String()
	}
	return k.Repository + ":" + k.Tag
}

// BootImages is what a release's coreos-bootimages manifest says.
type BootImages struct {
	// Stream names the default OS stream ("rhcos-4.21").
	Stream string
	// ReleaseVersion is data.releaseVersion: the release's version in a
	// real release (the build replaces the installer's placeholder).
	ReleaseVersion string

	kubevirt map[string]*kubeVirtEntry // by stream arch name
}

// bootImagesConfigMap is the ConfigMap as a file holds it. Its top level
// is a ConfigMap's whole schema, so anything else there is refused; the
// metadata is read leniently (annotations, creationTimestamp, labels come
// and go), as is the data, whose keys the installer adds to.
type bootImagesConfigMap struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   yaml.Node         `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	BinaryData map[string]string `yaml:"binaryData"`
	Immutable  *bool             `yaml:"immutable"`
}

// coreOSStream is the part of the stream metadata read here. Unknown
// fields are tolerated on purpose, as for image-references: the format is
// CoreOS's, its producers add fields (rhel-coreos-extensions, new clouds)
// and the operator reading it ignores them. Known fields must have the
// right types, and the stream must be the only JSON value.
type coreOSStream struct {
	Stream        string `json:"stream"`
	Architectures map[string]struct {
		Images struct {
			KubeVirt *kubeVirtEntry `json:"kubevirt"`
		} `json:"images"`
	} `json:"architectures"`
}

// kubeVirtEntry is architectures.<arch>.images.kubevirt.
type kubeVirtEntry struct {
	Release   string `json:"release"`
	Image     string `json:"image"`
	DigestRef string `json:"digest-ref"`
}

// BootImages parses the coreos-bootimages manifest the release ships. It
// fails with ErrNoBootImages when ReadFiles found none, and with why it
// could not keep it (not a regular file, over MaxCoreOSBootImagesSize).
func (f *Files) BootImages() (*BootImages, error) {
	if f.bootImagesErr != nil {
		return nil, f.bootImagesErr
	}
	if f.CoreOSBootImages == nil {
		return nil, ErrNoBootImages
	}
	return ParseBootImages(f.CoreOSBootImages)
}

// KubeVirtContainer returns the KubeVirt container the release's
// coreos-bootimages names for arch (a release arch name or an alias
// NormalizeArch accepts; not multi). See BootImages for its errors, and
// BootImages.KubeVirtContainer.
func (f *Files) KubeVirtContainer(arch string) (*KubeVirtContainer, error) {
	bi, err := f.BootImages()
	if err != nil {
		return nil, err
	}
	return bi.KubeVirtContainer(arch)
}

// ParseBootImages parses a coreos-bootimages manifest: one YAML document,
// a ConfigMap coreos-bootimages in openshift-machine-config-operator whose
// data.stream is CoreOS stream metadata. The KubeVirt entries are checked
// when asked for, so that a broken entry for one architecture does not
// stop a release of another.
func ParseBootImages(data []byte) (*BootImages, error) {
	if len(data) > MaxCoreOSBootImagesSize {
		return nil, fmt.Errorf("%s: larger than %d bytes (release.MaxCoreOSBootImagesSize)", CoreOSBootImagesPath, MaxCoreOSBootImagesSize)
	}
	cm, err := decodeConfigMap(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CoreOSBootImagesPath, err)
	}
	raw, ok := cm.Data["stream"]
	if !ok || raw == "" {
		return nil, fmt.Errorf("%s: no data.stream", CoreOSBootImagesPath)
	}
	var s coreOSStream
	if err := decodeOne([]byte(raw), &s); err != nil {
		return nil, fmt.Errorf("%s: data.stream: %w", CoreOSBootImagesPath, err)
	}
	if len(s.Architectures) == 0 {
		return nil, fmt.Errorf("%s: data.stream (%q) lists no architectures", CoreOSBootImagesPath, s.Stream)
	}
	bi := &BootImages{Stream: s.Stream, ReleaseVersion: cm.Data["releaseVersion"], kubevirt: map[string]*kubeVirtEntry{}}
	for arch, a := range s.Architectures {
		if a.Images.KubeVirt != nil {
			bi.kubevirt[arch] = a.Images.KubeVirt
		}
	}
	return bi, nil
}

// decodeConfigMap decodes data, which must be exactly one YAML document,
// and checks that it is the coreos-bootimages ConfigMap.
func decodeConfigMap(data []byte) (*bootImagesConfigMap, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cm bootImagesConfigMap
	if err := dec.Decode(&cm); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty")
		}
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	var meta struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	}
	if err := cm.Metadata.Decode(&meta); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	switch {
	case cm.APIVersion != "v1" || cm.Kind != "ConfigMap":
		return nil, fmt.Errorf("%s %s, want a v1 ConfigMap", cm.APIVersion, cm.Kind)
	case meta.Name != bootImagesName || meta.Namespace != bootImagesNamespace:
		return nil, fmt.Errorf("ConfigMap %s/%s, want %s/%s", meta.Namespace, meta.Name, bootImagesNamespace, bootImagesName)
	}
	return &cm, nil
}

// KubeVirtContainer returns the KubeVirt container the stream names for
// arch, a release arch name or an alias NormalizeArch accepts; a multi
// release has one per architecture (KubeVirtContainers). It fails, wrapping
// ErrNoKubeVirtContainer, when the stream names none for arch, and when
// what it names is no pull spec with a tag or a sha256 digest, or when
// "image" and "digest-ref" name two repositories or two digests.
func (b *BootImages) KubeVirtContainer(arch string) (*KubeVirtContainer, error) {
	a, err := NormalizeArch(arch)
	if err != nil {
		return nil, err
	}
	if a == ArchMulti {
		return nil, fmt.Errorf("%s: a multi release has a KubeVirt container per architecture: name one of %s", CoreOSBootImagesPath, strings.Join(b.kubeVirtArches(), ", "))
	}
	e, ok := b.kubevirt[a]
	if !ok {
		have := "for no architecture"
		if arches := b.kubeVirtArches(); len(arches) > 0 {
			have = "only for " + strings.Join(arches, ", ")
		}
		return nil, fmt.Errorf("%s: %w for %s in stream %q (it names one %s)", CoreOSBootImagesPath, ErrNoKubeVirtContainer, a, b.Stream, have)
	}
	k, err := e.container(a)
	if err != nil {
		return nil, fmt.Errorf("%s: stream %q, architectures.%s.images.kubevirt: %w", CoreOSBootImagesPath, b.Stream, a, err)
	}
	return k, nil
}

// KubeVirtContainers returns the KubeVirt container of every release
// architecture the stream names one for, in the order of Arches. An arch
// ferry does not know is skipped; a broken entry is an error.
func (b *BootImages) KubeVirtContainers() ([]KubeVirtContainer, error) {
	var out []KubeVirtContainer
	for _, a := range b.kubeVirtArches() {
		k, err := b.KubeVirtContainer(a)
		if err != nil {
			return nil, err
		}
		out = append(out, *k)
	}
	return out, nil
}

// kubeVirtArches are the release arches with a kubevirt entry, in the
// order of Arches.
func (b *BootImages) kubeVirtArches() []string {
	var out []string
	for _, a := range Arches() {
		if _, ok := b.kubevirt[a]; ok && a != ArchMulti {
			out = append(out, a)
		}
	}
	return out
}

// container checks the entry and resolves its repository, tag and digest.
func (e *kubeVirtEntry) container(arch string) (*KubeVirtContainer, error) {
	k := &KubeVirtContainer{Arch: arch, Release: e.Release, Image: e.Image, DigestRef: e.DigestRef}
	if k.Image == "" {
		k.Image = e.DigestRef
	}
	if k.Image == "" {
		return nil, errors.New(`neither "image" nor "digest-ref" is set`)
	}
	named, err := parsePullSpec(k.Image)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", k.Image, err)
	}
	k.Repository = reference.TrimNamed(named).String()
	if t, ok := named.(reference.Tagged); ok {
		k.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		k.Digest = d.Digest()
	}
	if k.Tag == "" && k.Digest == "" {
		return nil, fmt.Errorf("image %q names neither a tag nor a digest", k.Image)
	}
	if e.DigestRef == "" || e.DigestRef == k.Image {
		return k, nil
	}
	ref, err := parsePullSpec(e.DigestRef)
	if err != nil {
		return nil, fmt.Errorf("digest-ref %q: %w", e.DigestRef, err)
	}
	d, ok := ref.(reference.Digested)
	switch {
	case !ok:
		return nil, fmt.Errorf("digest-ref %q names no digest", e.DigestRef)
	case reference.TrimNamed(ref).String() != k.Repository:
		return nil, fmt.Errorf("digest-ref %q is in another repository than image %q", e.DigestRef, k.Image)
	case k.Digest != "" && d.Digest() != k.Digest:
		return nil, fmt.Errorf("digest-ref %q and image %q name two digests", e.DigestRef, k.Image)
	}
	k.Digest = d.Digest()
	return k, nil
}

// parsePullSpec parses a pull spec, accepting only canonical sha256
// digests, the only kind OpenShift publishes.
func parsePullSpec(s string) (reference.Named, error) {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		if err := validateDigest(s[i+1:]); err != nil {
			return nil, err
		}
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("not a valid pull spec: %w", err)
	}
	return named, nil
}
