package prune

import (
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror/release"
)

// TagKind is what a tag's form says about who wrote it.
type TagKind int

// The tag forms ferry writes into a mirror repository (mirror.Release.Tag,
// the component tags of mirror/walk.go, mirror.SigstoreTag,
// mirror.CatalogTag), and everything else.
const (
	// Foreign is a tag of no form ferry writes: never removed.
	Foreign TagKind = iota
	// ReleaseTag is <version>-<arch>: a release image or list.
	ReleaseTag
	// ComponentTag is <version>-<arch>-<name>: a component of release
	// <version> (and the RHCOS KubeVirt container, <name> rhcos-kubevirt).
	ComponentTag
	// SignatureTag is sha256-<hex>.sig: the cosign signature of the
	// manifest sha256:<hex>.
	SignatureTag
	// CatalogTag is <name>-<tag>-filtered: a rebuilt operator catalog.
	// Ferry's, but not a release's: prune leaves it.
	CatalogTag
)

func (k TagKind) String() string {
	switch k {
	case ReleaseTag:
		return "release"
	case ComponentTag:
		return "component"
	case SignatureTag:
		return "signature"
	case CatalogTag:
		return "catalog"
	}
	return "not ferry's"
}

// Tag is one tag's form, parsed.
type Tag struct {
	Kind TagKind
	// Version and Arch of a release or component tag.
	Version, Arch string
	// Signs is the manifest a signature tag signs.
	Signs digest.Digest
}

// catalogSuffix ends every tag mirror.CatalogTag makes.
const catalogSuffix = "-filtered"

// ParseTag reads a tag's form. A tag of a release version is a release or
// component tag only when its version is one release.ValidateVersion
// accepts and its arch one OpenShift publishes (release.SplitTag).
func ParseTag(tag string) Tag {
	if d, ok := signedDigest(tag); ok {
		return Tag{Kind: SignatureTag, Signs: d}
	}
	if v, a, ok := release.SplitTag(tag); ok {
		return Tag{Kind: ReleaseTag, Version: v, Arch: a}
	}
	// <version>-<arch>-<name>: the version may hold dashes (4.16.0-rc.1)
	// and so may the name, the arch never does; the first split that
	// leaves a release tag before the dash is the one ferry wrote.
	for i := 0; i < len(tag); i++ {
		if tag[i] != '-' || i == len(tag)-1 {
			continue
		}
		if v, a, ok := release.SplitTag(tag[:i]); ok {
			return Tag{Kind: ComponentTag, Version: v, Arch: a}
		}
	}
	if strings.HasSuffix(tag, catalogSuffix) && len(tag) > len(catalogSuffix) {
		return Tag{Kind: CatalogTag}
	}
	return Tag{Kind: Foreign}
}

// signedDigest is the digest a cosign signature tag names.
func signedDigest(tag string) (digest.Digest, bool) {
	hex, ok := strings.CutSuffix(tag, ".sig")
	if !ok {
		return "", false
	}
	hex, ok = strings.CutPrefix(hex, string(digest.SHA256)+"-")
	if !ok {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex)
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}
