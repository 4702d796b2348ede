package manifests

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"
)

const (
	// SignatureNamespace is where the cluster-version-operator looks for
	// release signature ConfigMaps.
	SignatureNamespace = "openshift-config-managed"
	// SignatureLabel marks a ConfigMap as holding release signatures; the
	// cluster accepts any value, ferry (like oc) writes "".
	SignatureLabel = "release.openshift.io/verification-signatures"

	// MaxSignatureConfigMapSize caps what ParseSignatureConfigMap reads: the
	// API server refuses ConfigMaps over 1 MiB, so a larger file is not one.
	MaxSignatureConfigMapSize = 1 << 20
)

// ReleaseSignatures is what a signature ConfigMap holds: the signatures of
// one release digest, in the order of their index (`-1`, `-2`, ...).
type ReleaseSignatures struct {
	Digest     digest.Digest
	Signatures [][]byte
}

// SignatureConfigMapName is the ConfigMap's name for d: "sha256-<64 hex>".
// d is not validated (SignatureConfigMap does that).
func SignatureConfigMapName(d digest.Digest) string {
	algo, hex, _ := strings.Cut(string(d), ":")
	return algo + "-" + hex
}

// SignatureConfigMapFile is the file name of d's ConfigMap inside a bundle's
// mirror/config/ directory: "signature-sha256-<first 16 hex>.yaml".
// d is not validated (SignatureConfigMap does that).
func SignatureConfigMapFile(d digest.Digest) string {
	algo, hex, _ := strings.Cut(string(d), ":")
	if len(hex) > 16 {
		hex = hex[:16]
	}
	return "signature-" + algo + "-" + hex + ".yaml"
}

// SignatureConfigMap renders the ConfigMap that carries sigs, the raw
// signatures of release digest d, into a cluster (SPEC §3): one binaryData key
// `sha256-<hex>-<N>` per signature, N counting from 1 in the order given.
func SignatureConfigMap(d digest.Digest, sigs [][]byte) ([]byte, error) {
	if err := checkSHA256(d); err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("signature ConfigMap for %s: no signatures", d)
	}
	name := SignatureConfigMapName(d)
	data := mapping()
	for i, s := range sigs {
		if len(s) == 0 {
			return nil, fmt.Errorf("signature ConfigMap for %s: signature %d is empty", d, i+1)
		}
		data.Content = append(data.Content,
			str(name+"-"+strconv.Itoa(i+1)), str(base64.StdEncoding.EncodeToString(s)))
	}
	return render(mapping(
		"apiVersion", "v1",
		"kind", "ConfigMap",
		"metadata", mapping(
			"name", name,
			"namespace", SignatureNamespace,
			"labels", mapping(SignatureLabel, ""),
		),
		"binaryData", data,
	))
}

// signatureConfigMap is the exact shape ParseSignatureConfigMap accepts.
type signatureConfigMap struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   objectMeta        `yaml:"metadata"`
	BinaryData map[string]string `yaml:"binaryData"`
}

type objectMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

// ParseSignatureConfigMap reads a ConfigMap as SignatureConfigMap writes it
// and returns the release digest and the signatures ordered by index. It is
// strict: unknown fields, a second document, a wrong namespace, a missing
// label, keys not named after the ConfigMap, gaps in the numbering and bad
// base64 are all errors. It checks form only, not the signatures themselves.
func ParseSignatureConfigMap(data []byte) (*ReleaseSignatures, error) {
	rs, err := parseSignatureConfigMap(data)
	if err != nil {
		return nil, fmt.Errorf("signature ConfigMap: %w", err)
	}
	return rs, nil
}

func parseSignatureConfigMap(data []byte) (*ReleaseSignatures, error) {
	if len(data) > MaxSignatureConfigMapSize {
		return nil, fmt.Errorf("%d bytes, more than the %d a ConfigMap may have", len(data), MaxSignatureConfigMapSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cm signatureConfigMap
	if err := dec.Decode(&cm); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty document")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" {
		return nil, fmt.Errorf("apiVersion %q kind %q, want v1 ConfigMap", cm.APIVersion, cm.Kind)
	}
	if cm.Metadata.Namespace != SignatureNamespace {
		return nil, fmt.Errorf("namespace %q, want %s", cm.Metadata.Namespace, SignatureNamespace)
	}
	if _, ok := cm.Metadata.Labels[SignatureLabel]; !ok {
		return nil, fmt.Errorf("label %s missing", SignatureLabel)
	}
	name := cm.Metadata.Name
	algo, hex, ok := strings.Cut(name, "-")
	if !ok {
		return nil, fmt.Errorf("name %q is not <algorithm>-<hex>", name)
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(algo), hex)
	if err := checkSHA256(d); err != nil {
		return nil, fmt.Errorf("name %q: %w", name, err)
	}
	if len(cm.BinaryData) == 0 {
		return nil, fmt.Errorf("%s: no signatures in binaryData", name)
	}
	byIndex := make(map[int][]byte, len(cm.BinaryData))
	for key, value := range cm.BinaryData {
		suffix, ok := strings.CutPrefix(key, name+"-")
		if !ok {
			return nil, fmt.Errorf("%s: binaryData key %q does not start with %s-", name, key, name)
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 1 || strconv.Itoa(n) != suffix {
			return nil, fmt.Errorf("%s: binaryData key %q does not end in a signature number", name, key)
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(value)
		if err != nil {
			return nil, fmt.Errorf("%s: binaryData %s: %w", name, key, err)
		}
		if len(sig) == 0 {
			return nil, fmt.Errorf("%s: binaryData %s is empty", name, key)
		}
		byIndex[n] = sig
	}
	indexes := make([]int, 0, len(byIndex))
	for n := range byIndex {
		indexes = append(indexes, n)
	}
	sort.Ints(indexes)
	rs := &ReleaseSignatures{Digest: d}
	for i, n := range indexes {
		if n != i+1 {
			return nil, fmt.Errorf("%s: signature %d missing (next is %d)", name, i+1, n)
		}
		rs.Signatures = append(rs.Signatures, byIndex[n])
	}
	return rs, nil
}

// checkSHA256 accepts only well-formed sha256 digests: release digests are
// sha256, and the cluster looks signatures up under that name.
func checkSHA256(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %q: want a sha256 digest", d)
	}
	return nil
}
