package signature

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// MaxSignaturesPerImage caps the signatures of one image read from a
// lookaside store, whatever Fetcher.MaxImageSignatures says. It is the
// limit containers/image (podman, CRI-O) applies to the same stores, so a
// store offering more offers nothing a RHEL host would read, and a store
// that never answers 404 costs at most this many requests of at most
// MaxBody bytes each. Red Hat signs an image once per public registry name
// and tag (four for the noo-bundle fixture), far below it.
const MaxSignaturesPerImage = 128

// LookasideStores maps a registry host (e.g. "registry.redhat.io") to the
// base URL of the lookaside store holding the simple-signing signatures of
// its images: http://, https:// or file://. It is what a host's
// /etc/containers/registries.d files configure as "lookaside" (formerly
// "sigstore") for a whole registry. A nil map has no store.
type LookasideStores map[string]string

// DefaultLookasideStores are Red Hat's lookaside stores, as RHEL's
// registries.d/registry.redhat.io.yaml and registry.access.redhat.com.yaml
// configure them. Each call returns a new map the caller may change.
func DefaultLookasideStores() LookasideStores {
	return LookasideStores{
		"registry.redhat.io":         "https://registry.redhat.io/containers/sigstore",
		"registry.access.redhat.com": "https://access.redhat.com/webassets/docker/content/sigstore",
	}
}

// For returns the store of repository's registry host. repository is an
// image reference; only its host is looked at ("busybox" is on
// docker.io). ok is false when no store is configured for the host or
// repository is not a valid reference.
func (s LookasideStores) For(repository string) (base string, ok bool) {
	ref, err := reference.ParseNormalizedNamed(repository)
	if err != nil {
		return "", false
	}
	base, ok = s[reference.Domain(ref)]
	return base, ok
}

// LookasidePath is the path of signature n of image d of repository below
// a lookaside store's base, as containers/image lays it out:
// "<repository path>@<algo>=<hex>/signature-<n>", where the repository
// path has no host ("albo/aws-load-balancer-operator-bundle"). repository
// must be a valid name (see FetchImage) and d a valid digest.
func LookasidePath(repository string, d digest.Digest, n int) (string, error) {
	name, err := parseRepository(repository)
	if err != nil {
		return "", err
	}
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("lookaside path: digest %q: %w", d, err)
	}
	return lookasidePath(name, d, n), nil
}

func lookasidePath(name reference.Named, d digest.Digest, n int) string {
	return fmt.Sprintf("%s@%s=%s/signature-%d", reference.Path(name), d.Algorithm(), d.Encoded(), n)
}

// parseRepository reads a repository name without tag or digest, in the
// normalised form ("busybox" is docker.io/library/busybox). A tag or a
// digest is refused rather than dropped: the digest checked is always the
// one given apart, never one read from a name.
func parseRepository(repository string) (reference.Named, error) {
	name, err := reference.ParseNormalizedNamed(repository)
	if err != nil {
		return nil, fmt.Errorf("repository %q: %w", repository, err)
	}
	if !reference.IsNameOnly(name) {
		return nil, fmt.Errorf("repository %q: want a repository name without tag or digest", repository)
	}
	return name, nil
}

// FetchImage reads the signatures of image d of repository (e.g.
// "registry.redhat.io/albo/aws-load-balancer-operator-bundle") from the
// lookaside store at base: signature-1, signature-2, ... of
// LookasidePath until the first not-found (an HTTP 404 or a missing file)
// or MaxImageSignatures. It uses the Fetcher's client, timeouts, retry
// policy and MaxBody, as Fetch does; Stores and MaxSignatures are not used.
//
// A result with no signature means the store has none for this image
// (unsigned). A store that fails on any signature after retries gives no
// partial set but an error wrapping a *FetchError that lists every URL
// asked and its answer; an unreachable store is never taken for an
// unsigned image. A malformed base, repository or digest fails at once; so
// does ctx ending.
func (f *Fetcher) FetchImage(ctx context.Context, base, repository string, d digest.Digest) (*FetchResult, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("fetch image signatures: digest %q: %w", d, err)
	}
	name, err := parseRepository(repository)
	if err != nil {
		return nil, fmt.Errorf("fetch image signatures: %w", err)
	}
	u, err := parseStore(base)
	if err != nil {
		return nil, fmt.Errorf("fetch image signatures: lookaside %w", err)
	}
	client, done := f.httpClient()
	defer done()
	maxSigs := f.MaxImageSignatures
	if maxSigs <= 0 || maxSigs > MaxSignaturesPerImage {
		maxSigs = MaxSignaturesPerImage
	}
	sigURL := func(n int) *url.URL { return u.JoinPath(lookasidePath(name, d, n)) }
	var tried []Attempt
	sigs, err := f.fetchStore(ctx, f.getter(client), base, maxSigs, sigURL, &tried)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("fetch signatures of %s@%s: %w", name, d, context.Cause(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("fetch signatures of %s@%s from %s: %w", name, d, base, &FetchError{Digest: d, Tried: tried})
	}
	return &FetchResult{Store: base, Signatures: sigs, Tried: tried}, nil
}

// ImageStatus is the outcome of VerifyImage.
type ImageStatus string

const (
	// ImageSigned means at least one signature verifies and names the
	// image's repository.
	ImageSigned ImageStatus = "signed"
	// ImageUnsigned means the store has no signature for the image.
	ImageUnsigned ImageStatus = "unsigned"
	// ImageInvalid means the store has signatures but none counts: a
	// store serving only signatures that fail is tampered with, or the
	// key is the wrong one, and the image must be refused.
	ImageInvalid ImageStatus = "invalid"
)

// ImageSignature is a signature that counts for an image.
type ImageSignature struct {
	// N is its number: signature-<N>, i.e. its index in the signatures
	// given plus one.
	N int
	// Verified says who signed it and under which identity.
	*Verified
}

// RejectedImageSignature is a signature that does not count, and why.
type RejectedImageSignature struct {
	// N is its number, as in ImageSignature.
	N int
	// Err is a typed error of this package: one of Verify's, or an
	// *IdentityError for a good signature of another image name.
	Err error
}

// ImageVerdict is what the signatures of one image prove.
type ImageVerdict struct {
	// Repository is the image's repository, normalised
	// ("busybox" is "docker.io/library/busybox").
	Repository string
	// Digest is the image's manifest digest, as given.
	Digest digest.Digest
	// Status is never empty.
	Status ImageStatus
	// Signed are the signatures that count, in order; not empty exactly
	// when Status is ImageSigned.
	Signed []ImageSignature
	// Rejected are the others, in order, each with its reason. With
	// ImageSigned they are informative (e.g. a signature for another tag
	// pinned to another digest); with ImageInvalid they say why the image
	// is refused.
	Rejected []RejectedImageSignature
}

// Err is nil unless the verdict is ImageInvalid, when it is an
// *InvalidImageSignaturesError naming the image and every reason.
func (v *ImageVerdict) Err() error {
	if v.Status != ImageInvalid {
		return nil
	}
	return &InvalidImageSignaturesError{Repository: v.Repository, Digest: v.Digest, Rejected: v.Rejected}
}

// VerifyImage checks the signatures of image d of repository, as
// FetchImage read them, against kr at the current time. A signature
// counts when Verify accepts it for d and its docker-reference names
// repository (see identityMatches). The verdict is ImageUnsigned for no
// signature, ImageSigned when at least one counts, ImageInvalid otherwise.
// The error is only for a malformed repository or digest.
func VerifyImage(sigs [][]byte, kr *Keyring, repository string, d digest.Digest) (*ImageVerdict, error) {
	return verifyImageAt(sigs, kr, repository, d, time.Now())
}

func verifyImageAt(sigs [][]byte, kr *Keyring, repository string, d digest.Digest, now time.Time) (*ImageVerdict, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("verify image signatures: digest %q: %w", d, err)
	}
	name, err := parseRepository(repository)
	if err != nil {
		return nil, fmt.Errorf("verify image signatures: %w", err)
	}
	v := &ImageVerdict{Repository: name.String(), Digest: d}
	for i, sig := range sigs {
		n := i + 1
		verified, err := verifyAt(sig, kr, d, now)
		if err == nil {
			err = identityMatches(verified.Identity, name, d)
		}
		if err != nil {
			v.Rejected = append(v.Rejected, RejectedImageSignature{N: n, Err: err})
			continue
		}
		v.Signed = append(v.Signed, ImageSignature{N: n, Verified: verified})
	}
	switch {
	case len(sigs) == 0:
		v.Status = ImageUnsigned
	case len(v.Signed) > 0:
		v.Status = ImageSigned
	default:
		v.Status = ImageInvalid
	}
	return v, nil
}

// redHatRegistries are the public names of Red Hat's one registry.
//
// The rule of identityMatches comes from Red Hat's real signatures (the
// noo-bundle fixture): Red Hat signs each image digest once per public
// registry name and per tag, e.g. registry.access.redhat.com/albo/x:0.0.1,
// registry.access.redhat.com/albo/x:0.0.1-20, registry.redhat.io/albo/x:0.0.1
// and registry.redhat.io/albo/x:0.0.1-20, and both names' lookaside stores
// hold the whole set under the host-less path "albo/x". So the repository
// path is what Red Hat asserts, and these two hosts name the same content;
// a signature under either counts for an image pulled from the other.
// Other hosts are compared exactly: Red Hat's internal build registries
// (registry-proxy.engineering.redhat.com and the like) are not names a
// customer pulls from, and a signature naming them does not count.
var redHatRegistries = []string{"registry.redhat.io", "registry.access.redhat.com"}

// sameRegistry tells whether hosts a and b name the same registry.
func sameRegistry(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	return isRedHatRegistry(a) && isRedHatRegistry(b)
}

func isRedHatRegistry(host string) bool {
	for _, r := range redHatRegistries {
		if strings.EqualFold(host, r) {
			return true
		}
	}
	return false
}

// identityMatches checks a good signature's docker-reference against the
// image: same repository path, same registry (see redHatRegistries), any
// tag (Red Hat signs every tag of a digest; the digest is already
// checked), and, if the reference pins a digest, d.
func identityMatches(identity string, name reference.Named, d digest.Digest) error {
	fail := func(reason string) error {
		return &IdentityError{Identity: identity, Repository: name.String(), Reason: reason}
	}
	ref, err := reference.ParseNormalizedNamed(identity)
	if err != nil {
		return fail("not a valid image reference: " + err.Error())
	}
	if reference.Path(ref) != reference.Path(name) {
		return fail(fmt.Sprintf("it names repository path %q", reference.Path(ref)))
	}
	if !sameRegistry(reference.Domain(ref), reference.Domain(name)) {
		return fail(fmt.Sprintf("it names registry %q", reference.Domain(ref)))
	}
	if c, ok := ref.(reference.Canonical); ok && c.Digest() != d {
		return fail(fmt.Sprintf("it pins digest %s", c.Digest()))
	}
	return nil
}

// IdentityError means a signature is good and signs the digest, but its
// docker-reference (Identity) names another image than Repository.
type IdentityError struct {
	Identity   string
	Repository string
	Reason     string
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("signature identity %q is not for %s: %s", e.Identity, e.Repository, e.Reason)
}

// InvalidImageSignaturesError means a lookaside store holds signatures of
// an image but none counts (ImageInvalid): Rejected says why for each.
type InvalidImageSignaturesError struct {
	Repository string
	Digest     digest.Digest
	Rejected   []RejectedImageSignature
}

func (e *InvalidImageSignaturesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "none of the %d signatures of %s@%s verifies", len(e.Rejected), e.Repository, e.Digest)
	for i, r := range e.Rejected {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "signature-%d: %v", r.N, r.Err)
	}
	return b.String()
}

// Unwrap returns the reasons, so that errors.As finds, e.g., an
// *UnknownKeyError.
func (e *InvalidImageSignaturesError) Unwrap() []error {
	errs := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		errs[i] = r.Err
	}
	return errs
}
