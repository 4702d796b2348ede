package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// File names inside a release image, and the caps on reading them.
const (
	ImageReferencesPath = "release-manifests/image-references"
	MetadataPath        = "release-manifests/release-metadata"

	// MaxImageReferencesSize caps image-references; real ones are ~100 KiB
	// for ~200 components.
	MaxImageReferencesSize = 8 << 20
	// MaxMetadataSize caps release-metadata; real ones are a few KiB (the
	// list of previous versions).
	MaxMetadataSize = 1 << 20
)

// ImageReferences is what a release's image-references file says.
type ImageReferences struct {
	// Version is metadata.name: the release version.
	Version string
	// Components are the DockerImage entries of spec.tags, in file order.
	Components []Component
}

// Component is one image of a release.
type Component struct {
	// Name is the spec.tags[].name, e.g. "etcd"; it becomes part of a tag.
	Name string
	// Image is the pull spec by digest: Repository + "@" + Digest.
	Image      string
	Repository string
	Digest     digest.Digest
}

// The subset of image.openshift.io/v1 ImageStream that the cluster reads.
// Unknown fields are tolerated on purpose: the file is OpenShift's, its
// producers add fields between releases (generation, importPolicy,
// referencePolicy, status, annotations), and the cluster ignores them too.
// Known fields must have the right types, and the document must be the only
// JSON value in the file.
type imageStream struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Tags []struct {
			Name        string            `json:"name"`
			Annotations map[string]string `json:"annotations"`
			From        *struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"from"`
		} `json:"tags"`
	} `json:"spec"`
}

// componentNamePattern is the image tag grammar: a component name becomes the
// suffix of <version>-<arch>-<component> tags in the mirror.
var componentNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)

// ParseImageReferences parses a release's image-references file. It refuses
// anything the mirror could not reproduce exactly: a component named by tag
// rather than digest, two components with one name, a name that cannot be
// part of a tag, or a release without components.
func ParseImageReferences(data []byte) (*ImageReferences, error) {
	if len(data) > MaxImageReferencesSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", ImageReferencesPath, MaxImageReferencesSize)
	}
	var is imageStream
	if err := decodeOne(data, &is); err != nil {
		return nil, fmt.Errorf("%s: %w", ImageReferencesPath, err)
	}
	if is.APIVersion != "image.openshift.io/v1" {
		return nil, fmt.Errorf("%s: apiVersion is %q, want image.openshift.io/v1", ImageReferencesPath, is.APIVersion)
	}
	if is.Kind != "ImageStream" {
		return nil, fmt.Errorf("%s: kind is %q, want ImageStream", ImageReferencesPath, is.Kind)
	}
	if err := ValidateVersion(is.Metadata.Name); err != nil {
		return nil, fmt.Errorf("%s: metadata.name: %w", ImageReferencesPath, err)
	}
	refs := &ImageReferences{Version: is.Metadata.Name}
	seen := make(map[string]bool, len(is.Spec.Tags))
	for i, tag := range is.Spec.Tags {
		if !componentNamePattern.MatchString(tag.Name) {
			return nil, fmt.Errorf("%s: spec.tags[%d]: invalid component name %q", ImageReferencesPath, i, tag.Name)
		}
		if seen[tag.Name] {
			return nil, fmt.Errorf("%s: component %q is listed twice", ImageReferencesPath, tag.Name)
		}
		seen[tag.Name] = true
		if tag.From == nil || tag.From.Kind != "DockerImage" {
			continue
		}
		c, err := parseComponent(tag.Name, tag.From.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ImageReferencesPath, err)
		}
		refs.Components = append(refs.Components, c)
	}
	if len(refs.Components) == 0 {
		return nil, fmt.Errorf("%s: no DockerImage components", ImageReferencesPath)
	}
	return refs, nil
}

// parseComponent requires name@sha256:<hex>, without a tag: the release pins
// every component by digest, and the mirror copies exactly those digests.
func parseComponent(name, image string) (Component, error) {
	if image == "" {
		return Component{}, fmt.Errorf("component %q: from.name is empty", name)
	}
	i := strings.LastIndexByte(image, '@')
	if i < 0 {
		return Component{}, fmt.Errorf("component %q: image %q is not pinned by digest (want <repository>@sha256:<hex>)", name, image)
	}
	if err := validateDigest(image[i+1:]); err != nil {
		return Component{}, fmt.Errorf("component %q: image %q: %w", name, image, err)
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return Component{}, fmt.Errorf("component %q: image %q: %w", name, image, err)
	}
	if _, ok := named.(reference.Tagged); ok {
		return Component{}, fmt.Errorf("component %q: image %q has both a tag and a digest; want <repository>@sha256:<hex>", name, image)
	}
	d := named.(reference.Digested).Digest()
	repo := reference.TrimNamed(named).String()
	return Component{Name: name, Image: repo + "@" + d.String(), Repository: repo, Digest: d}, nil
}

// decodeOne decodes exactly one JSON value from data into v.
func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: data after the document")
	}
	return nil
}
