// Package release reads OpenShift release images without touching the
// network: it parses release pull specs and architecture names, and reads the
// two files a release image carries in release-manifests/ (image-references
// and release-metadata) out of layer streams that the caller opens, with the
// image policies and the coreos-bootimages manifest found beside them.
//
// The formats are OpenShift's (see SPEC §1); this package checks what the
// cluster checks, so that a release ferry accepts is one the cluster accepts.
package release

import (
	"fmt"
	"strings"
)

// Release architecture names, as used in release tags (<version>-<arch>).
const (
	ArchX86_64  = "x86_64"
	ArchAarch64 = "aarch64"
	ArchS390x   = "s390x"
	ArchPpc64le = "ppc64le"
	// ArchMulti is a manifest list covering every architecture.
	ArchMulti = "multi"
)

// Arches returns the canonical release architecture names, in a stable order.
func Arches() []string {
	return []string{ArchX86_64, ArchAarch64, ArchS390x, ArchPpc64le, ArchMulti}
}

// NormalizeArch returns the canonical release architecture name for s. It
// accepts the canonical names and the Go/OCI aliases amd64 and arm64, in any
// letter case; anything else is an error listing the accepted names.
func NormalizeArch(s string) (string, error) {
	switch a := strings.ToLower(s); a {
	case ArchX86_64, "amd64":
		return ArchX86_64, nil
	case ArchAarch64, "arm64":
		return ArchAarch64, nil
	case ArchS390x, ArchPpc64le, ArchMulti:
		return a, nil
	}
	return "", fmt.Errorf("unknown architecture %q: use one of %s (or amd64, arm64)", s, strings.Join(Arches(), ", "))
}

// GraphArch maps a release architecture name (or an alias NormalizeArch
// accepts) to the name the update graph (Cincinnati) uses: amd64, arm64,
// s390x, ppc64le or multi.
func GraphArch(releaseArch string) (string, error) {
	a, err := NormalizeArch(releaseArch)
	if err != nil {
		return "", err
	}
	switch a {
	case ArchX86_64:
		return "amd64", nil
	case ArchAarch64:
		return "arm64", nil
	}
	return a, nil
}

// isCanonicalArch reports whether s is exactly a canonical release arch name.
func isCanonicalArch(s string) bool {
	switch s {
	case ArchX86_64, ArchAarch64, ArchS390x, ArchPpc64le, ArchMulti:
		return true
	}
	return false
}
