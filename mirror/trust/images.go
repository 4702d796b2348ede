package trust

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/release"
)

// sigstoreSuffix ends the tag cosign stores a digest's signature under:
// sha256-<hex>.sig.
const sigstoreSuffix = ".sig"

// manifest reads the manifest d from the bundle, checked against d, with
// its media type as its own bytes declare it (or as they look, for an OCI
// manifest that omits the field).
func (c *checker) manifest(d digest.Digest) ([]byte, string, error) {
	data, ok := c.manifests[d]
	if !ok {
		var err error
		if data, err = c.r.ReadImageManifest(d); err != nil {
			return nil, "", err
		}
		c.manifests[d] = data
	}
	mediaType := manifest.GuessMIMEType(data)
	switch mediaType {
	case "", manifest.DockerV2Schema1MediaType, manifest.DockerV2Schema1SignedMediaType:
		return nil, "", fmt.Errorf("manifest %s: not an image manifest or list ferry carries", d)
	}
	return data, mediaType, nil
}

// prove records the image source@d going to target with tags, and
// everything its manifest names (children, config, layers) under the same
// proof and to the same target. A child has no tags of its own.
func (c *checker) prove(target, source string, d digest.Digest, tags []string, proof Proof) *Image {
	key := placeKey(target, source, d)
	if img, ok := c.proven[key]; ok {
		img.Tags = appendNew(img.Tags, tags...)
		return img
	}
	data, mediaType, err := c.manifest(d)
	if err != nil {
		c.rep.fault("image %s: %v", key, err)
		return nil
	}
	img := &Image{Source: source, Digest: d, MediaType: mediaType, Size: int64(len(data)), Tags: appendNew(nil, tags...), Proof: proof, Target: target}
	c.proven[key] = img
	c.order = append(c.order, key)
	if manifest.MIMETypeIsMultiImage(mediaType) {
		list, err := manifest.ListFromBlob(data, mediaType)
		if err != nil {
			c.rep.fault("image %s: parse manifest list: %v", key, err)
			return img
		}
		img.Children = list.Instances()
		for _, child := range img.Children {
			c.children[placeKey(target, source, child)] = true
			if ch := c.prove(target, source, child, nil, proof); ch != nil && len(ch.Children) > 0 {
				c.rep.fault("image %s: its child %s is itself a manifest list", key, child)
			}
		}
		return img
	}
	m, err := manifest.FromBlob(data, mediaType)
	if err != nil {
		c.rep.fault("image %s: parse manifest: %v", key, err)
		return img
	}
	infos := []types.BlobInfo{m.ConfigInfo()}
	for _, l := range m.LayerInfos() {
		infos = append(infos, l.BlobInfo)
	}
	for _, b := range infos {
		if b.Size < 0 {
			c.rep.fault("image %s: the manifest gives no size for blob %s", key, b.Digest)
			img.Blobs, img.BlobSizes = nil, nil
			return img
		}
		img.Blobs, img.BlobSizes = append(img.Blobs, b.Digest), append(img.BlobSizes, b.Size)
	}
	return img
}

// sigstore proves the cosign signature images of proven digests: an index
// image whose one tag is sha256-<hex>.sig, where sha256:<hex> is proven in
// the same repository, and which is a single image as cosign writes it.
// The tag is derived from the proven digest; whether the signature is one
// the nodes accept is sigstorePolicies' to judge. The release chain puts
// nothing under a target path, so an entry listed with one is left to
// indexImages.
func (c *checker) sigstore() {
	for _, e := range c.idx.Images {
		subject, ok := signatureSubject(e)
		if !ok || e.Target != "" {
			continue
		}
		if s, ok := c.proven[imageKey(e.Source, subject)]; !ok || s.Proof != ReleaseChain {
			continue
		}
		if _, proven := c.proven[imageKey(e.Source, e.Digest)]; proven {
			continue
		}
		img := c.prove("", e.Source, e.Digest, []string{e.Tags[0]}, ReleaseChain)
		if img != nil && len(img.Children) > 0 {
			c.rep.fault("signature image %s: a manifest list, not a signature as cosign writes it", imageKey(e.Source, e.Digest))
			continue
		}
		if img != nil {
			c.signatureOf[imageKey(e.Source, subject)] = e.Digest
		}
	}
}

// signatureSubject is the digest an index image signs when it is a cosign
// signature image: its one tag is sha256-<hex>.sig.
func signatureSubject(e bundle.Image) (digest.Digest, bool) {
	if len(e.Tags) != 1 {
		return "", false
	}
	return sigstoreSubject(e.Tags[0])
}

// sigstoreSubject is the digest a sha256-<hex>.sig tag signs.
func sigstoreSubject(tag string) (digest.Digest, bool) {
	enc, ok := strings.CutSuffix(tag, sigstoreSuffix)
	if !ok {
		return "", false
	}
	alg, hex, ok := strings.Cut(enc, "-")
	d := digest.Digest(alg + ":" + hex)
	if !ok || alg != string(digest.SHA256) || d.Validate() != nil {
		return "", false
	}
	return d, true
}

// indexImages holds the index's images against what is proven: an image
// proven by the release chain must be listed as the chain derives it; any
// other image, source or tag needs the bundle signature (or
// AllowUnproven), and is then taken from the index with its blobs derived
// from its manifest. The release chain puts no image under a target path:
// an image listed with a Target is the bundle signature's to cover, even
// when the chain proves it for the target repository itself.
func (c *checker) indexImages() {
	var unproven []string
	for _, e := range c.idx.Images {
		key := placeKey(e.Target, e.Source, e.Digest)
		if img, ok := c.proven[key]; ok {
			c.sameImage(e, img)
			continue
		}
		what := fmt.Sprintf("image %s (role %s, tags %v)", key, e.Role, e.Tags)
		if chain, ok := c.proven[imageKey(e.Source, e.Digest)]; ok && e.Target != "" && chain.Proof == ReleaseChain {
			what = fmt.Sprintf("image %s (role %s, tags %v), which the release chain proves for the target repository itself", key, e.Role, e.Tags)
		}
		proof, ok := c.accept(what)
		if !ok {
			unproven = append(unproven, what)
			continue
		}
		if repo, err := repositoryOf(e.Source); err != nil || repo != e.Source {
			c.rep.fault("%s: source %q is not a repository name", what, e.Source)
			continue
		}
		c.prove(e.Target, e.Source, e.Digest, e.Tags, proof)
	}
	c.reportUnproven(unproven)
	c.checkPlacement()
}

// checkPlacement requires an image's children and its cosign signature
// image to be listed where the image goes: a list pushed under a path
// whose children went elsewhere would name manifests its repository lacks,
// and a signature beside another copy is no signature the nodes find.
func (c *checker) checkPlacement() {
	childTargets, targets := map[string][]string{}, map[string][]string{}
	for _, k := range c.order {
		img := c.proven[k]
		id := imageKey(img.Source, img.Digest)
		targets[id] = appendNew(targets[id], img.Target)
		if c.children[k] {
			childTargets[id] = appendNew(childTargets[id], img.Target)
		}
	}
	for _, e := range c.idx.Images {
		id := imageKey(e.Source, e.Digest)
		if in := childTargets[id]; len(in) > 0 && !slices.Contains(in, e.Target) {
			c.rep.fault("image %s is listed with target %q, but it is the child of a list going to %q", id, e.Target, in)
		}
		subject, ok := signatureSubject(e)
		if !ok {
			continue
		}
		subjectTargets := targets[imageKey(e.Source, subject)]
		switch {
		case slices.Contains(subjectTargets, e.Target):
		case len(subjectTargets) > 0:
			c.rep.fault("signature image %s is listed with target %q, but the image it signs goes to %q", id, e.Target, subjectTargets)
		case e.Target != "":
			c.rep.fault("signature image %s is listed with target %q, where the image it signs (%s) does not go", id, e.Target, subject)
		}
	}
}

// maxUnprovenNamed bounds the unproven images named one by one: when a
// release fails its proof, every image of it follows, and the release's own
// fault is the one worth reading.
const maxUnprovenNamed = 10

func (c *checker) reportUnproven(unproven []string) {
	c.rep.RefusedUnproven += len(unproven)
	for i, what := range unproven {
		if i == maxUnprovenNamed {
			c.rep.fault("... and %d more images not proven", len(unproven)-i)
			return
		}
		c.rep.fault("%s is not proven by the release chain, and no verified bundle signature covers it", what)
	}
}

// sameImage compares an index entry with the image the chain proved: the
// tags must be among the derived ones (unless the bundle signature covers
// more), and the children and blobs the index lists must be the manifest's.
func (c *checker) sameImage(e bundle.Image, img *Image) {
	key := placeKey(e.Target, e.Source, e.Digest)
	for _, tag := range e.Tags {
		if slices.Contains(img.Tags, tag) {
			continue
		}
		if proof, ok := c.accept(fmt.Sprintf("tag %s on image %s", tag, key)); ok {
			img.Tags = appendNew(img.Tags, tag)
			if proof == Unproven {
				img.Proof = Unproven
			}
			continue
		}
		c.rep.fault("tag %s on image %s is not derived from the release chain (it gives %v), and no verified bundle signature covers it", tag, key, img.Tags)
		c.rep.RefusedUnproven++
	}
	if len(e.Children) > 0 && !slices.Equal(e.Children, img.Children) {
		c.rep.fault("image %s: the index lists children %v, its manifest %v", key, e.Children, img.Children)
	}
	if len(e.Blobs) > 0 && !slices.Equal(e.Blobs, img.Blobs) {
		c.rep.fault("image %s: the index lists blobs its manifest does not name exactly", key)
	}
	if e.MediaType != img.MediaType {
		c.rep.fault("image %s: the index says media type %s, the manifest is %s", key, e.MediaType, img.MediaType)
	}
}

// checkBlobs requires every blob of a proven image in the bundle or among
// the prerequisites of the repository the image goes to. Apply checks
// prerequisites in their own repository, and a registry finds a blob only
// in the repository a manifest is pushed to, so a prerequisite of another
// repository does not do.
func (c *checker) checkBlobs() {
	for _, k := range c.order {
		img := c.proven[k]
		for _, d := range img.Blobs {
			if c.prereqs[prereqKey(img.Target, d)] {
				continue
			}
			if _, _, err := c.r.Blob(d); err != nil && c.prereqDigests[d] {
				c.rep.fault("image %s: blob %s is a prerequisite of another repository than %s, where the image goes", k, d, targetName(img.Target))
			} else if err != nil {
				c.rep.fault("image %s: blob %s is neither in the bundle nor a prerequisite", k, d)
			}
		}
	}
}

// checkTags requires every tag to be valid and to name one manifest in the
// repository it lands in: the target, or a path under it.
func (c *checker) checkTags() {
	type place struct{ target, tag string }
	owner := map[place]digest.Digest{}
	for _, k := range c.order {
		img := c.proven[k]
		for _, tag := range img.Tags {
			if !reference.TagRegexp.MatchString(tag) || len(tag) > 128 {
				c.rep.fault("image %s: %q is not a valid tag", k, tag)
				continue
			}
			at := place{img.Target, tag}
			if prior, ok := owner[at]; ok && prior != img.Digest {
				c.rep.fault("tag %s would name both %s and %s%s", tag, prior, img.Digest, targetSuffix(img.Target))
				continue
			}
			owner[at] = img.Digest
		}
	}
}

// updateSteps derives the upgrades to print: the index's update path when
// it holds (every version a proven release, strictly ascending: never a
// downgrade), else every proven release, oldest first.
func (c *checker) updateSteps(releases []provenRelease) {
	byVersion := map[string][]provenRelease{}
	for _, r := range releases {
		byVersion[r.version] = append(byVersion[r.version], r)
	}
	path := c.idx.UpdatePath
	for i, v := range path {
		if len(byVersion[v]) == 0 {
			c.rep.fault("update path: %s is not a proven release of the bundle", v)
			return
		}
		if i > 0 && release.CompareVersions(path[i-1], v) >= 0 {
			c.rep.fault("update path: %s -> %s is not an upgrade", path[i-1], v)
			return
		}
	}
	if len(path) > 0 {
		releases = nil
		for _, v := range path[1:] { // the first version is where the cluster is
			releases = append(releases, byVersion[v]...)
		}
	} else {
		releases = slices.Clone(releases)
		slices.SortStableFunc(releases, func(a, b provenRelease) int {
			if n := release.CompareVersions(a.version, b.version); n != 0 {
				return n
			}
			return strings.Compare(a.arch, b.arch)
		})
	}
	for _, r := range releases {
		c.rep.Steps = append(c.rep.Steps, Step{Version: r.version, Arch: r.arch, Digest: r.digest})
	}
}

// targetSuffix says where under the target an image goes, for messages.
func targetSuffix(target string) string {
	if target == "" {
		return ""
	}
	return " in target " + target
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// prereqKey names a prerequisite where apply checks it: the digest in the
// repository at target ("" for the target itself).
func prereqKey(target string, d digest.Digest) string { return target + "@" + d.String() }

// targetName says which repository a Target is, for messages.
func targetName(target string) string {
	if target == "" {
		return "the target repository"
	}
	return "<target>/" + target
}
