package release

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// DefaultRepository is where OpenShift publishes its release images; a bare
// version expands to a tag in it.
const DefaultRepository = "quay.io/openshift-release-dev/ocp-release"

// maxVersionLength keeps <version>-<arch>-<component> tags within the
// registry's 128-character tag limit with room for the suffixes.
const maxVersionLength = 64

// versionPattern is semantic versioning 2.0 without build metadata (a "+" is
// not allowed in an image tag): numeric parts without leading zeros, and an
// optional pre-release of dot-separated identifiers (4.15.0-rc.1,
// 4.16.0-ec.2, 4.15.0-0.okd-2024-03-10-010116).
var versionPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
	`(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?$`)

// ValidateVersion reports whether v is a release version such as 4.15.0 or
// 4.15.0-rc.1 (semantic versioning without build metadata).
func ValidateVersion(v string) error {
	if len(v) > maxVersionLength {
		return fmt.Errorf("invalid release version %q: longer than %d characters", v, maxVersionLength)
	}
	if !versionPattern.MatchString(v) {
		return fmt.Errorf("invalid release version %q: want MAJOR.MINOR.PATCH with an optional -pre.release (e.g. 4.15.0, 4.15.0-rc.1)", v)
	}
	return nil
}

// Ref names a release image.
type Ref struct {
	// Repository is the normalized repository, without tag or digest.
	Repository string
	// Tag is empty when the release was named by digest only.
	Tag string
	// Digest is empty when the release was named by tag only.
	Digest digest.Digest
	// Version and Arch are filled when known from the name: for a bare
	// version, or when Tag has the form <version>-<arch>. Otherwise they are
	// empty until the release's image-references are read.
	Version string
	Arch    string
}

// String returns the pull spec: repository, then ":tag" and "@digest" as set.
func (r Ref) String() string {
	s := r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// PullSpec returns the reference to pull: by digest when the digest is known
// (the tag is then dropped, as registries resolve one or the other), else by
// tag.
func (r Ref) PullSpec() string {
	if r.Digest != "" {
		return r.Repository + "@" + r.Digest.String()
	}
	return r.Repository + ":" + r.Tag
}

// ParseRef parses a release named as a bare version ("4.15.0", expanded to
// DefaultRepository:<version>-<arch>) or as a pull spec with a tag, a digest
// or both.
//
// arch is required for a bare version. For a pull spec it may be empty; when
// given and the tag has the form <version>-<arch> with a different arch,
// ParseRef fails rather than silently mirroring another architecture.
func ParseRef(s, arch string) (Ref, error) {
	if s == "" {
		return Ref{}, errors.New("empty release name: give a version (4.15.0) or a pull spec")
	}
	wantArch := ""
	if arch != "" {
		a, err := NormalizeArch(arch)
		if err != nil {
			return Ref{}, err
		}
		wantArch = a
	}
	if looksLikeVersion(s) {
		if err := ValidateVersion(s); err != nil {
			return Ref{}, err
		}
		if wantArch == "" {
			return Ref{}, fmt.Errorf("release %q: an architecture is needed to expand a bare version", s)
		}
		return Ref{
			Repository: DefaultRepository,
			Tag:        s + "-" + wantArch,
			Version:    s,
			Arch:       wantArch,
		}, nil
	}

	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		if err := validateDigest(s[i+1:]); err != nil {
			return Ref{}, fmt.Errorf("release %q: %w", s, err)
		}
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, fmt.Errorf("release %q: not a version nor a valid pull spec: %w", s, err)
	}
	ref := Ref{Repository: reference.TrimNamed(named).String()}
	if t, ok := named.(reference.Tagged); ok {
		ref.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		ref.Digest = d.Digest()
	}
	if ref.Tag == "" && ref.Digest == "" {
		return Ref{}, fmt.Errorf("release %q: the pull spec needs a tag or a digest", s)
	}
	if v, a, ok := SplitTag(ref.Tag); ok {
		if wantArch != "" && a != wantArch {
			return Ref{}, fmt.Errorf("release %q: its tag is for architecture %s, not %s", s, a, wantArch)
		}
		ref.Version, ref.Arch = v, a
	}
	return ref, nil
}

// SplitTag splits a release tag of the form <version>-<arch> (such as
// 4.15.0-rc.1-aarch64). ok is false for any other tag.
func SplitTag(tag string) (version, arch string, ok bool) {
	i := strings.LastIndexByte(tag, '-')
	if i < 0 {
		return "", "", false
	}
	version, arch = tag[:i], tag[i+1:]
	// x86_64 contains no '-', so the last '-' always precedes the arch.
	if !isCanonicalArch(arch) || ValidateVersion(version) != nil {
		return "", "", false
	}
	return version, arch, true
}

// looksLikeVersion tells a bare version apart from a pull spec: versions start
// with a digit and hold no '/', ':' or '@'. A short image name that starts with
// a digit ("4.15.0") is therefore read as a version, which is what users mean.
func looksLikeVersion(s string) bool {
	return s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "/:@")
}

// validateDigest accepts only sha256 digests in canonical form, the only kind
// OpenShift publishes, so that a typo gets a clear message.
func validateDigest(s string) error {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return fmt.Errorf("invalid digest %q: want sha256:<64 lower-case hex>", s)
	}
	if len(hex) != 64 {
		return fmt.Errorf("invalid digest %q: want 64 hex characters after sha256:, got %d", s, len(hex))
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("invalid digest %q: %q is not a lower-case hex character", s, c)
		}
	}
	return nil
}
