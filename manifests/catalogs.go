package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"unicode"

	"github.com/blang/semver/v4"
	"go.podman.io/image/v5/docker/reference"
	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Kinds, API versions and fixed names of the objects that make a cluster
// use a mirrored operator catalog.
const (
	// OLMv0APIVersion is OLM (v0)'s API: CatalogSource.
	OLMv0APIVersion   = "operators.coreos.com/v1alpha1"
	KindCatalogSource = "CatalogSource"
	// MarketplaceNamespace is OLM's global catalog namespace on OpenShift:
	// a CatalogSource there serves Subscriptions in every namespace.
	MarketplaceNamespace = "openshift-marketplace"

	// OLMv1APIVersion is OLM v1's API: ClusterCatalog (cluster-scoped).
	OLMv1APIVersion    = "olm.operatorframework.io/v1"
	KindClusterCatalog = "ClusterCatalog"

	// KindOperatorHub is the singleton (config.openshift.io/v1) that turns
	// the default catalog sources on and off; OperatorHubName is its name.
	KindOperatorHub = "OperatorHub"
	OperatorHubName = "cluster"
)

// defaultCatalogNames are the catalogs OpenShift itself creates and manages
// by name: the marketplace operator's CatalogSources in openshift-marketplace
// (it overwrites one of these names while the default sources are enabled
// and deletes it once OperatorHub disables them) and cluster-olm-operator's
// ClusterCatalogs. ferry never renders an object under one of them.
var defaultCatalogNames = map[string]bool{
	"redhat-operators":              true,
	"certified-operators":           true,
	"community-operators":           true,
	"redhat-marketplace":            true,
	"openshift-redhat-operators":    true,
	"openshift-certified-operators": true,
	"openshift-community-operators": true,
	"openshift-redhat-marketplace":  true,
}

// extractContentMinMinor is the first OpenShift 4 minor on which a
// CatalogSource may use grpcPodConfig.extractContent without a cacheDir.
// extractContent exists from 4.15, but up to 4.19 its CRD requires both
// cacheDir and catalogDir (operator-framework/api #295, in
// openshift/operator-framework-olm release-4.15 to release-4.19), and the
// registry pod runs `opm serve --cache-dir=...`, which by default exits
// when the cache is missing or does not match the catalog. ferry's
// filtered catalogs carry no pre-built cache, so they can only be served
// where cacheDir is optional and opm builds the cache at start:
// operator-framework/api #421 and operator-lifecycle-manager #3556, #3586,
// #3589, #3640, all in release-4.20.
const extractContentMinMinor = 20

// ExtractContentSupported reports whether a cluster running OpenShift
// version ("4.20.3", "4.20", "4.21.0-rc.1") serves a CatalogSource with
// grpcPodConfig.extractContent and no cacheDir: 4.20 and later. It is false
// for a version it cannot parse, which keeps the CatalogSource that works on
// every version (the catalog image's own command serves it).
func ExtractContentSupported(version string) bool {
	v, err := semver.ParseTolerant(version)
	if err != nil {
		return false
	}
	return v.Major > 4 || (v.Major == 4 && v.Minor >= extractContentMinMinor)
}

// CatalogSourceOptions describe one CatalogSource.
type CatalogSourceOptions struct {
	// Name is metadata.name: a DNS-1035 label (CatalogSourceName makes
	// one), since OLM names the catalog's Service after it, and not one of
	// OpenShift's default catalog names.
	Name string
	// Image is the catalog in the mirror by digest, repository@sha256:...;
	// a tag is refused, so that the cluster pulls exactly the catalog
	// ferry proved.
	Image string
	// DisplayName is shown in the console; empty means Name.
	DisplayName string
	// Publisher is shown in the console; empty leaves it out.
	Publisher string
	// ExtractContent makes OLM copy the catalog out of Image and serve it
	// with its own opm (grpcPodConfig.extractContent), building the cache
	// at start; set it when ExtractContentSupported(target version).
	// Without it the catalog image's own command serves the catalog.
	ExtractContent bool
	// ConfigsDir is where Image holds its file-based catalog ("/configs"),
	// a clean absolute path without control characters; used only with
	// ExtractContent.
	ConfigsDir string
}

// CatalogSource renders a CatalogSource (operators.coreos.com/v1alpha1) in
// openshift-marketplace that serves the catalog image o.Image over gRPC,
// its pod in the restricted pod security profile
// (grpcPodConfig.securityContextConfig: OpenShift 4.12 and later; the
// server-side apply of older clusters refuses the unknown field). It has no
// update strategy: a digest never changes, so there is nothing to poll.
func CatalogSource(o CatalogSourceOptions) ([]byte, error) {
	if err := checkCatalogName(o.Name, validation.IsDNS1035Label); err != nil {
		return nil, fmt.Errorf("catalog source: %w", err)
	}
	if err := checkDigestRef(o.Image); err != nil {
		return nil, fmt.Errorf("catalog source %s: %w", o.Name, err)
	}
	display := o.DisplayName
	if display == "" {
		display = o.Name
	}
	// Field names from operator-framework/api,
	// pkg/operators/v1alpha1/catalogsource_types.go (CatalogSourceSpec,
	// GrpcPodConfig, ExtractContentConfig).
	pod := mapping("securityContextConfig", "restricted")
	if o.ExtractContent {
		if err := checkConfigsDir(o.ConfigsDir); err != nil {
			return nil, fmt.Errorf("catalog source %s: %w", o.Name, err)
		}
		// No cacheDir: ferry's rebuilt catalog has no pre-built cache.
		pod = mapping("extractContent", mapping("catalogDir", o.ConfigsDir), "securityContextConfig", "restricted")
	}
	spec := mapping("sourceType", "grpc", "image", o.Image, "displayName", display)
	if o.Publisher != "" {
		spec.Content = append(spec.Content, str("publisher"), str(o.Publisher))
	}
	spec.Content = append(spec.Content, str("grpcPodConfig"), pod)
	return render(mapping(
		"apiVersion", OLMv0APIVersion,
		"kind", KindCatalogSource,
		"metadata", mapping("name", o.Name, "namespace", MarketplaceNamespace),
		"spec", spec,
	))
}

// ClusterCatalog renders an OLM v1 ClusterCatalog (olm.operatorframework.io/v1)
// named name, a DNS-1123 label, that unpacks the catalog image, given by
// digest as for CatalogSource. It sets no pollIntervalMinutes: OLM v1
// refuses one beside a digest ref (operator-framework/operator-controller,
// api/v1/clustercatalog_types.go, ImageSource). The name must fit a label
// value too, as catalogd labels the object olm.operatorframework.io/metadata.name=<name>.
func ClusterCatalog(name, image string) ([]byte, error) {
	if err := checkCatalogName(name, validation.IsDNS1123Label); err != nil {
		return nil, fmt.Errorf("cluster catalog: %w", err)
	}
	if err := checkDigestRef(image); err != nil {
		return nil, fmt.Errorf("cluster catalog %s: %w", name, err)
	}
	return render(mapping(
		"apiVersion", OLMv1APIVersion,
		"kind", KindClusterCatalog,
		"metadata", mapping("name", name),
		"spec", mapping("source", mapping(
			"type", "Image",
			"image", mapping("ref", image),
		)),
	))
}

// OperatorHubDisableDefaults renders the OperatorHub object "cluster"
// (config.openshift.io/v1) with spec.disableAllDefaultSources true, which
// removes the default CatalogSources that pull from registries on the
// internet. Applied server-side, it takes only that field: entries an
// administrator put in spec.sources stay, and still take precedence.
func OperatorHubDisableDefaults() ([]byte, error) {
	return render(mapping(
		"apiVersion", ConfigAPIVersion,
		"kind", KindOperatorHub,
		"metadata", mapping("name", OperatorHubName),
		"spec", mapping("disableAllDefaultSources", boolean(true)),
	))
}

// boolean is a YAML boolean scalar.
func boolean(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(b)}
}

// checkCatalogName refuses a name that valid (a validation.IsDNS1035Label
// or IsDNS1123Label) refuses, and OpenShift's default catalog names.
func checkCatalogName(name string, valid func(string) []string) error {
	if errs := valid(name); len(errs) > 0 {
		return fmt.Errorf("name %q: %s", name, strings.Join(errs, "; "))
	}
	if defaultCatalogNames[name] {
		return fmt.Errorf("name %q is one of OpenShift's default catalogs, which the cluster manages itself: use another name", name)
	}
	return nil
}

// checkConfigsDir accepts a clean absolute path without control characters:
// the dir comes from a label of the catalog image, and OLM hands it to a
// command in the catalog pod.
func checkConfigsDir(dir string) error {
	if !path.IsAbs(dir) || path.Clean(dir) != dir || strings.ContainsFunc(dir, unicode.IsControl) {
		return fmt.Errorf("configs directory %q: want a clean absolute path like /configs", dir)
	}
	return nil
}

// checkDigestRef accepts a fully qualified image reference by digest and
// without a tag: "registry.example:5000/ocp4/openshift4@sha256:...".
func checkDigestRef(image string) error {
	named, err := reference.ParseNamed(image)
	if err != nil {
		return fmt.Errorf("image %q is not a fully qualified reference: %w", image, err)
	}
	if _, ok := named.(reference.Tagged); ok {
		return fmt.Errorf("image %q has a tag: want repository@digest, so that the cluster pulls exactly the catalog ferry proved", image)
	}
	if _, ok := named.(reference.Digested); !ok {
		return fmt.Errorf("image %q has no digest: want repository@digest", image)
	}
	return nil
}

const (
	// nameHashLength is how many hex digits of a SHA-256 end a catalog name
	// that had to be cut or that would have been a default catalog's name:
	// 32 bits keep the few catalogs of one cluster apart.
	nameHashLength = 8
	// catalogNamePrefix starts a derived name that would start with a
	// digit, which a DNS-1035 label may not.
	catalogNamePrefix = "catalog-"
	// digestNameLength is how many hex digits of the digest name a catalog
	// pulled by digest alone.
	digestNameLength = 12
)

// CatalogSourceName derives a stable object name, for both CatalogSource
// and ClusterCatalog, from a catalog's pull spec: the last path component
// of its repository and its tag (else the first digits of its digest),
// lower-cased, with every run of other characters than [a-z0-9] made one
// "-": "registry.redhat.io/redhat/redhat-operator-index:v4.16" gives
// "redhat-operator-index-v4-16". The result is a DNS-1035 label (which is
// also a DNS-1123 label): "catalog-" goes before a leading digit, and a name
// longer than 63 characters is cut and ends in "-" and 8 hex digits of the
// uncut name's SHA-256.
//
// The name comes from the repository and tag, never the registry alone,
// so that a mirrored catalog never takes the name of a default source
// ("redhat-operators", ...): the cluster's marketplace operator owns those
// names, overwriting such a CatalogSource while the default sources are on
// and deleting it once they are off. A derivation that still lands on one
// gets the hash suffix. Two catalogs with the same repository name and tag
// in different registries get the same name: a caller with several
// catalogs must check that their names differ.
func CatalogSourceName(pullSpec string) (string, error) {
	named, err := reference.ParseNormalizedNamed(pullSpec)
	if err != nil {
		return "", fmt.Errorf("catalog name from %q: %w", pullSpec, err)
	}
	var id string
	switch r := named.(type) {
	case reference.Tagged:
		id = r.Tag()
	case reference.Digested:
		id = r.Digest().Encoded()
		if len(id) > digestNameLength {
			id = id[:digestNameLength]
		}
	default:
		return "", fmt.Errorf("catalog name from %q: the pull spec has neither a tag nor a digest", pullSpec)
	}
	name := labelWords(path.Base(reference.Path(named)) + "-" + id)
	if name == "" {
		return "", fmt.Errorf("catalog name from %q: no letters or digits", pullSpec)
	}
	if name[0] >= '0' && name[0] <= '9' {
		name = catalogNamePrefix + name
	}
	if len(name) > maxNameLength || defaultCatalogNames[name] {
		sum := sha256.Sum256([]byte(name))
		keep := min(len(name), maxNameLength-1-nameHashLength)
		name = strings.TrimRight(name[:keep], "-") + "-" + hex.EncodeToString(sum[:])[:nameHashLength]
	}
	return name, nil
}

// labelWords lower-cases s and joins its runs of [a-z0-9] with single "-".
func labelWords(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}
