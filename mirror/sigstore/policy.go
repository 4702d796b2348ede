// Package sigstore proves cosign (Sigstore) signatures the way an OpenShift
// node does before it runs an image: under the ClusterImagePolicy and
// ImagePolicy objects a release payload ships in release-manifests/ (from
// 4.21 on), each naming scopes, a public key and an identity rule.
//
// ferry runs these checks where the node cannot: at pack time, against
// what the source registry serves, and at apply time, against what the
// bundle carries, so a payload the cluster would refuse to run is refused
// before the media crosses the gap. The rules follow containers/image's
// policy engine (the code CRI-O runs): the most specific scope wins, every
// policy of that scope must accept, one accepted signature per policy is
// enough, and a signed identity that names only a repository is refused
// under the default MatchRepoDigestOrExact. The crypto is sigstore's own
// verifier; this package adds no cryptography.
//
// The package reads no network and no files: callers hand it the bytes.
package sigstore

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ferryhq/ferry/internal/strictjson"
)

// Kinds of policy objects, in config.openshift.io/v1.
const (
	KindClusterImagePolicy = "ClusterImagePolicy"
	KindImagePolicy        = "ImagePolicy"
	policyAPIVersion       = "config.openshift.io/v1"
)

// Roots of trust (spec.policy.rootOfTrust.policyType).
const (
	RootPublicKey         = "PublicKey"
	RootFulcioCAWithRekor = "FulcioCAWithRekor"
	RootPKI               = "PKI"
)

// Identity rules (spec.policy.signedIdentity.matchPolicy).
const (
	MatchRepoDigestOrExact = "MatchRepoDigestOrExact"
	MatchRepository        = "MatchRepository"
	ExactRepository        = "ExactRepository"
	RemapIdentity          = "RemapIdentity"
)

// Bounds on what a policy file may hold. A release's policies are a few
// KB; these leave a wide margin and keep a hostile payload from making
// ferry hold or loop over more than that.
const (
	// MaxScopes is the API's own limit on spec.scopes.
	MaxScopes = 256
	// MaxKeyBytes caps a decoded keyData: an RSA-4096 PEM is under 1 KB.
	MaxKeyBytes = 64 << 10
	// MaxDocumentsPerFile caps the YAML documents read from one file.
	MaxDocumentsPerFile = 1024
	// MaxPolicies caps the policies of one release.
	MaxPolicies = 64
)

// Policy is one ClusterImagePolicy or ImagePolicy as the node reads it.
type Policy struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// File is the release-manifests/ file the policy came from.
	File   string   `json:"file,omitempty"`
	Scopes []string `json:"scopes"`
	// RootOfTrust is the policy type; only PublicKey can be proven
	// offline (the others need Fulcio, Rekor or a PKI at run time).
	RootOfTrust string `json:"rootOfTrust"`
	// PublicKey is the PEM public key of a PublicKey policy.
	PublicKey []byte `json:"publicKey,omitempty"`
	// MatchPolicy is the identity rule, MatchRepoDigestOrExact when unset.
	MatchPolicy string `json:"matchPolicy"`
	// ExactRepository is the repository an ExactRepository rule requires.
	ExactRepository string `json:"exactRepository,omitempty"`
	// RemapPrefix and RemapSignedPrefix are a RemapIdentity rule's.
	RemapPrefix       string `json:"remapPrefix,omitempty"`
	RemapSignedPrefix string `json:"remapSignedPrefix,omitempty"`
}

// ID names the policy as an admin would look it up.
func (p *Policy) ID() string {
	if p.Namespace != "" {
		return p.Kind + " " + p.Namespace + "/" + p.Name
	}
	return p.Kind + " " + p.Name
}

// policyObject is the part of the API object the node acts on. Its spec is
// decoded strictly: a field this package does not know could change what
// the node admits, so it is refused rather than ignored.
type policyObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec json.RawMessage `json:"spec"`
}

type policySpec struct {
	Scopes []string `json:"scopes"`
	Policy struct {
		RootOfTrust struct {
			PolicyType string `json:"policyType"`
			PublicKey  *struct {
				KeyData      []byte `json:"keyData"`
				RekorKeyData []byte `json:"rekorKeyData,omitempty"`
			} `json:"publicKey,omitempty"`
			FulcioCAWithRekor any `json:"fulcioCAWithRekor,omitempty"`
			PKI               any `json:"pki,omitempty"`
		} `json:"rootOfTrust"`
		SignedIdentity *struct {
			MatchPolicy     string `json:"matchPolicy"`
			ExactRepository *struct {
				Repository string `json:"repository"`
			} `json:"exactRepository,omitempty"`
			RemapIdentity *struct {
				Prefix       string `json:"prefix"`
				SignedPrefix string `json:"signedPrefix"`
			} `json:"remapIdentity,omitempty"`
		} `json:"signedIdentity,omitempty"`
	} `json:"policy"`
}

// PolicyError reports a policy object that cannot be read.
type PolicyError struct {
	File   string
	Object string
	Reason string
}

func (e *PolicyError) Error() string {
	if e.Object == "" {
		return fmt.Sprintf("image policy in %s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("image policy %s in %s: %s", e.Object, e.File, e.Reason)
}

// ParsePolicies reads every ClusterImagePolicy and ImagePolicy of one
// manifest file (YAML or JSON, one or more documents) and ignores the
// other objects. A policy object that cannot be read is an error, never
// skipped: a policy the node enforces and ferry missed would let a pack
// through that the cluster will refuse.
func ParsePolicies(file string, data []byte) ([]Policy, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []Policy
	for n := 0; ; n++ {
		if n == MaxDocumentsPerFile {
			return nil, &PolicyError{File: file, Reason: fmt.Sprintf("more than %d documents (sigstore.MaxDocumentsPerFile)", MaxDocumentsPerFile)}
		}
		var doc json.RawMessage
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, &PolicyError{File: file, Reason: fmt.Sprintf("document %d: %v", n+1, err)}
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(doc, &head) != nil || (head.Kind != KindClusterImagePolicy && head.Kind != KindImagePolicy) {
			continue
		}
		p, err := policyFrom(file, doc)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
}

func policyFrom(file string, doc []byte) (*Policy, error) {
	var obj policyObject
	if err := json.Unmarshal(doc, &obj); err != nil {
		return nil, &PolicyError{File: file, Reason: err.Error()}
	}
	fail := func(format string, args ...any) error {
		return &PolicyError{File: file, Object: obj.Kind + " " + obj.Metadata.Name, Reason: fmt.Sprintf(format, args...)}
	}
	var spec policySpec
	if len(obj.Spec) == 0 {
		return nil, fail("no spec")
	}
	if err := strictjson.Decode(obj.Spec, &spec); err != nil {
		return nil, fail("spec: %v", err)
	}
	if obj.APIVersion != policyAPIVersion {
		return nil, fail("apiVersion %q, want %s", obj.APIVersion, policyAPIVersion)
	}
	if obj.Metadata.Name == "" {
		return nil, fail("no metadata.name")
	}
	p := &Policy{Kind: obj.Kind, Name: obj.Metadata.Name, File: file, MatchPolicy: MatchRepoDigestOrExact}
	if obj.Kind == KindImagePolicy {
		p.Namespace = obj.Metadata.Namespace
	}
	if err := p.setScopes(spec.Scopes); err != nil {
		return nil, fail("%v", err)
	}
	if err := p.setRoot(&spec); err != nil {
		return nil, fail("%v", err)
	}
	if err := p.setIdentity(&spec); err != nil {
		return nil, fail("%v", err)
	}
	return p, nil
}

func (p *Policy) setScopes(scopes []string) error {
	if len(scopes) == 0 {
		return errors.New("no spec.scopes")
	}
	if len(scopes) > MaxScopes {
		return fmt.Errorf("%d scopes, more than the %d allowed (sigstore.MaxScopes)", len(scopes), MaxScopes)
	}
	for _, s := range scopes {
		if _, err := parseScope(s); err != nil {
			return err
		}
	}
	p.Scopes = scopes
	return nil
}

func (p *Policy) setRoot(spec *policySpec) error {
	root := &spec.Policy.RootOfTrust
	p.RootOfTrust = root.PolicyType
	switch root.PolicyType {
	case RootPublicKey:
		if root.PublicKey == nil || len(root.PublicKey.KeyData) == 0 {
			return errors.New("policyType PublicKey without publicKey.keyData")
		}
		if len(root.PublicKey.KeyData) > MaxKeyBytes {
			return fmt.Errorf("publicKey.keyData is %d bytes, more than the %d allowed (sigstore.MaxKeyBytes)", len(root.PublicKey.KeyData), MaxKeyBytes)
		}
		if len(root.PublicKey.RekorKeyData) > 0 {
			// The node then also demands a Rekor bundle on each signature,
			// which ferry cannot check offline.
			p.RootOfTrust = RootPublicKey + "+Rekor"
		}
		p.PublicKey = root.PublicKey.KeyData
		if _, err := loadPublicKey(p.PublicKey); err != nil {
			return fmt.Errorf("publicKey.keyData: %w", err)
		}
	case RootFulcioCAWithRekor, RootPKI:
	default:
		return fmt.Errorf("unknown policyType %q", root.PolicyType)
	}
	return nil
}

func (p *Policy) setIdentity(spec *policySpec) error {
	id := spec.Policy.SignedIdentity
	if id == nil || id.MatchPolicy == "" {
		return nil
	}
	p.MatchPolicy = id.MatchPolicy
	switch id.MatchPolicy {
	case MatchRepoDigestOrExact, MatchRepository:
	case ExactRepository:
		if id.ExactRepository == nil || id.ExactRepository.Repository == "" {
			return errors.New("matchPolicy ExactRepository without exactRepository.repository")
		}
		p.ExactRepository = id.ExactRepository.Repository
	case RemapIdentity:
		if id.RemapIdentity == nil || id.RemapIdentity.Prefix == "" || id.RemapIdentity.SignedPrefix == "" {
			return errors.New("matchPolicy RemapIdentity without remapIdentity.prefix and signedPrefix")
		}
		p.RemapPrefix = strings.TrimSuffix(id.RemapIdentity.Prefix, "/")
		p.RemapSignedPrefix = strings.TrimSuffix(id.RemapIdentity.SignedPrefix, "/")
	default:
		return fmt.Errorf("unknown matchPolicy %q", id.MatchPolicy)
	}
	return nil
}

// KeyFingerprint is the SHA-256 of the policy's public key in DER
// (SubjectPublicKeyInfo) form, hex: the same for any PEM spelling of the
// key. Empty when the policy has no key.
func (p *Policy) KeyFingerprint() string {
	if len(p.PublicKey) == 0 {
		return ""
	}
	key, err := loadPublicKey(p.PublicKey)
	if err != nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return ""
	}
	return digest.FromBytes(der).Encoded()
}

// Equal reports whether p and q are the same policy from the same file:
// what sibling images of a multi-arch release must ship alike.
func (p Policy) Equal(q Policy) bool {
	return p.ID() == q.ID() && p.File == q.File && slices.Equal(p.Scopes, q.Scopes) &&
		bytes.Equal(p.PublicKey, q.PublicKey) && p.RootOfTrust == q.RootOfTrust && p.MatchPolicy == q.MatchPolicy &&
		p.ExactRepository == q.ExactRepository && p.RemapPrefix == q.RemapPrefix && p.RemapSignedPrefix == q.RemapSignedPrefix
}
