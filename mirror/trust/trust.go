// Package trust decides what of a bundle may reach a mirror and a cluster.
// Check proves a bundle offline and returns only what is proven: the images
// to push with the tags to give them, the repositories the mirror sets may
// route, the signature ConfigMaps and the upgrade steps. Nothing in it is
// read from the index on the index's word alone; the index only says where
// to look.
//
// Two proofs cover content (docs/design.md, "Trust"):
//
//   - the release chain: a release signature under the release keyring ->
//     the release digest -> image-references read out of the release image's
//     own layers -> each component digest -> its manifest, children, config
//     and layers; the Sigstore `.sig` tags of digests so proven. Tags and
//     mirror-set sources are derived from this data;
//   - the packer's bundle signature over the index, under the bundle
//     keyring, which covers every file the index lists and so everything
//     beyond the release chain, the carried binary and the update path.
//
// Anything else is a fault, unless Options.AllowUnproven accepts it (and
// the Report says so).
package trust

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// maxFaults caps a report, as bundle.Verify caps its own: a hostile index
// with a million inconsistencies must not print a million lines.
const maxFaults = 1000

// Proof names what covers an image.
type Proof string

// The proofs, strongest first.
const (
	ReleaseChain    Proof = "release chain"
	BundleSignature Proof = "bundle signature"
	// SourceRegistry covers what `ferry mirror` read from the source
	// registry in the same run, digests checked: no courier, no gap.
	SourceRegistry Proof = "source registry"
	// Unproven content is accepted only with Options.AllowUnproven.
	Unproven Proof = "unproven"
)

// Options say which keys to trust and what to accept without proof.
type Options struct {
	// Keyring holds the release keys (Red Hat's, or the cluster's own
	// release-verification keys). Nil fails every signed release.
	Keyring *signature.Keyring
	// BundleKeyring holds the packers' keys. When set, the bundle must be
	// signed by one of them; when nil, a bundle signature is not checked
	// and proves nothing.
	BundleKeyring *signature.Keyring
	// AllowUnsigned accepts releases packed without signatures; the report
	// lists each one as unverified.
	AllowUnsigned bool
	// AllowUnproven accepts index content no proof covers; the report lists
	// each item as unverified.
	AllowUnproven bool
	// Sigstore says what an image a release's image policy covers without
	// a signature its nodes accept is: a fault (sigstore.Required, the
	// default), unverified (sigstore.BestEffort), or unchecked
	// (sigstore.Off).
	Sigstore sigstore.Mode
}

// Image is one manifest apply may push, with what proves it.
type Image struct {
	// Source is the repository the cluster pulls it from; the mirror sets
	// route it to the mirror.
	Source    string
	Digest    digest.Digest
	MediaType string
	Size      int64
	// Tags are the tags to write in the target repository.
	Tags []string
	// Children are a manifest list's instances, Blobs a single image's
	// config and layers and BlobSizes their sizes, all as the manifest's
	// own bytes name them.
	Children  []digest.Digest
	Blobs     []digest.Digest
	BlobSizes []int64
	Proof     Proof
	// Target is the repository path under apply's target repository the
	// image goes to, "" for the target itself. Only the bundle signature
	// (or AllowUnproven) puts an image under a path: the release chain
	// derives none. A manifest list's children and an image's cosign
	// signature go where the image goes.
	Target string
}

// Step is one upgrade: to the release with this digest.
type Step struct {
	Version string
	Arch    string
	Digest  digest.Digest
}

// Report is what Check found: the faults, and what is proven.
type Report struct {
	// Faults are the reasons the bundle must not be applied; Omitted
	// counts those past the cap.
	Faults  []string
	Omitted int
	// Unverified lists what is accepted without proof, by an explicit
	// option (AllowUnsigned, AllowUnproven) or because nothing applies it
	// (the carried binary of an unsigned bundle).
	Unverified []string
	// Signatures describes each verified release signature.
	Signatures []string
	// BundleSigner is who signed the index, when BundleKeyring verified it.
	BundleSigner *signature.Signer
	// Images are the manifests to push, each once per source and target;
	// Sources the repositories to route to the mirror, sorted.
	Images  []Image
	Sources []string
	// Routes maps each of Sources to the targets (Image.Target) its images
	// go to, sorted and distinct: "" (the target repository itself) sorts
	// first. The mirror sets route the source to each of them.
	Routes map[string][]string
	// TagRoutes maps the sources whose images the cluster pulls by tag
	// (additional images named by tag) to the targets that hold them under
	// their source tag, sorted and distinct: the ImageTagMirrorSet routes
	// only these. A digest pull finds an image under any tag; a tag pull
	// only where the mirror holds the same tag.
	TagRoutes map[string][]string
	// ConfigMaps are the bundle files of the proven signature ConfigMaps.
	ConfigMaps []string
	// Steps are the upgrades to print, in the order to run them.
	Steps []Step
	// RefusedUnsigned counts releases refused for having no signatures
	// (AllowUnsigned would accept them); RefusedUnproven counts images,
	// sources and tags refused for lacking a proof (a bundle keyring or
	// AllowUnproven would decide them). Callers say what to do.
	RefusedUnsigned, RefusedUnproven int
	// Sigstore is what was proven of the signatures the releases' image
	// policies demand.
	Sigstore *SigstoreProof
	// Catalogs are the operator catalogs proven whole: apply serves them
	// to the cluster.
	Catalogs []Catalog
	// GraphData is the proven graph-data image, if the bundle carries one.
	GraphData *GraphData
}

// OK reports whether nothing stands in the way of applying the bundle.
func (r *Report) OK() bool { return len(r.Faults) == 0 && r.Omitted == 0 }

func (r *Report) fault(format string, args ...any) {
	if len(r.Faults) >= maxFaults {
		r.Omitted++
		return
	}
	r.Faults = append(r.Faults, fmt.Sprintf(format, args...))
}

// Check proves the bundle r offline, with opts. It does not verify the
// bytes of every file against the index (bundle.Reader.Verify does) but
// checks every manifest it reads against its digest. A cancelled ctx ends
// the check with a fault.
func Check(ctx context.Context, r *bundle.Reader, opts Options) *Report {
	c := newChecker(r, opts)
	c.bundleSignature()
	releases := c.releases(ctx)
	if ctx.Err() != nil {
		c.rep.fault("interrupted: %v", ctx.Err())
		return c.rep
	}
	c.sigstore()
	c.sigstorePolicies(ctx, releases)
	c.indexImages()
	c.catalogs()
	c.graphData()
	c.checkBlobs()
	c.checkTags()
	c.updateSteps(releases)
	c.carriedBinary()
	if len(c.idx.Releases) == 0 && !c.signed {
		c.rep.fault("the bundle carries no release and no bundle signature: nothing in it is proven")
	}
	c.rep.Images, c.rep.Sources, c.rep.Routes = c.sorted()
	c.rep.TagRoutes = c.tagRoutes()
	return c.rep
}

// checker is the state of one Check.
type checker struct {
	r      *bundle.Reader
	idx    *bundle.Index
	opts   Options
	rep    *Report
	signed bool // the index's signature verified under BundleKeyring
	// proven images by placeKey (target, source and digest), in the order
	// proven
	proven map[string]*Image
	order  []string
	// manifests read and checked, by digest
	manifests map[digest.Digest][]byte
	// prereqs are the prerequisites by prereqKey (target and digest);
	// prereqDigests by digest alone.
	prereqs       map[string]bool
	prereqDigests map[digest.Digest]bool
	// signatureOf maps a proven image (source@digest) to the digest of
	// the cosign signature image proven beside it.
	signatureOf map[string]digest.Digest
	// bootImages are the coreos-bootimages manifests read out of release
	// images, by image digest.
	bootImages map[digest.Digest][]byte
	// children are the placeKeys of images proven as a list's child.
	children map[string]bool
}

func newChecker(r *bundle.Reader, opts Options) *checker {
	c := &checker{r: r, idx: r.Index(), opts: opts, rep: &Report{},
		proven: map[string]*Image{}, manifests: map[digest.Digest][]byte{}, prereqs: map[string]bool{}, prereqDigests: map[digest.Digest]bool{},
		signatureOf: map[string]digest.Digest{}, children: map[string]bool{}, bootImages: map[digest.Digest][]byte{}}
	for _, p := range c.idx.Prerequisites {
		c.prereqs[prereqKey(p.Target, p.Digest)] = true
		c.prereqDigests[p.Digest] = true
	}
	return c
}

// bundleSignature checks the index's signature under BundleKeyring.
func (c *checker) bundleSignature() {
	index, sig := c.r.IndexSignature()
	switch {
	case c.opts.BundleKeyring == nil && sig != nil:
		c.rep.Unverified = append(c.rep.Unverified, "the bundle is signed, but no bundle keyring was given: the signature proves nothing here")
	case c.opts.BundleKeyring == nil:
	case sig == nil:
		c.rep.fault("the bundle is not signed, but a bundle keyring was given: a signed bundle was expected")
	default:
		signer, err := signature.VerifyDetached(c.opts.BundleKeyring, bytes.NewReader(index), sig)
		if err != nil {
			c.rep.fault("bundle signature %s: %v", bundle.IndexSignatureName, err)
			return
		}
		c.signed, c.rep.BundleSigner = true, signer
	}
}

// carriedBinary: the binary at the top of the bundle is covered only by a
// bundle signature; nothing applies it, so without one it is a warning.
func (c *checker) carriedBinary() {
	if _, err := c.r.Open(bundle.SelfName); err != nil || c.signed {
		return
	}
	c.rep.Unverified = append(c.rep.Unverified, fmt.Sprintf("the carried %s binary is not covered by a verified bundle signature: do not run it; "+
		"check it with gpg --verify %s %s against the packer's key first", bundle.SelfName, bundle.SelfSignatureName, bundle.SelfName))
}

// accept says how content the release chain does not cover is taken: by
// the bundle signature, by AllowUnproven (recorded), or not at all.
func (c *checker) accept(what string) (Proof, bool) {
	switch {
	case c.signed:
		return BundleSignature, true
	case c.opts.AllowUnproven:
		c.rep.Unverified = append(c.rep.Unverified, what+" (accepted unproven)")
		return Unproven, true
	}
	return "", false
}

func (c *checker) sorted() ([]Image, []string, map[string][]string) {
	images := make([]Image, 0, len(c.order))
	var sources []string
	routes := map[string][]string{}
	for _, k := range c.order {
		img := c.proven[k]
		slices.Sort(img.Tags)
		images = append(images, *img)
		sources = append(sources, img.Source)
		routes[img.Source] = appendNew(routes[img.Source], img.Target)
	}
	for _, targets := range routes {
		slices.Sort(targets)
	}
	slices.Sort(sources)
	return images, slices.Compact(sources), routes
}

func imageKey(source string, d digest.Digest) string { return source + "@" + d.String() }

// placeKey names an image where it goes: source@digest for the target
// repository itself, with the path under it otherwise. A Target holds no
// space or parenthesis (bundle validates it), so keys cannot collide.
func placeKey(target, source string, d digest.Digest) string {
	if target == "" {
		return imageKey(source, d)
	}
	return imageKey(source, d) + " (target " + target + ")"
}
