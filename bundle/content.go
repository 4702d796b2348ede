package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/internal/strictjson"
)

// Manifest media types a bundle may hold besides the OCI ones.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

const (
	// maxLayoutIndexSize caps mirror/oci/index.json: a few hundred bytes
	// per tagged image.
	maxLayoutIndexSize = 16 << 20
	maxLayoutFileSize  = 4 << 10
)

// descriptor holds the fields of an OCI or Docker descriptor Verify uses.
type descriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// manifestDoc holds the fields of a manifest or a list Verify uses; the
// others (annotations, platform, subject...) are of no concern here.
type manifestDoc struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        *descriptor  `json:"config"`
	Layers        []descriptor `json:"layers"`
	Manifests     []descriptor `json:"manifests"`
}

// parseManifest parses a manifest of the given media type and returns the
// blobs (config and layers) and child manifests it references.
func parseManifest(data []byte, mediaType string) (blobs, children []descriptor, err error) {
	var doc manifestDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if doc.SchemaVersion != 2 {
		return nil, nil, fmt.Errorf("schemaVersion %d, want 2", doc.SchemaVersion)
	}
	if doc.MediaType != mediaType && (doc.MediaType != "" || isDocker(mediaType)) {
		return nil, nil, fmt.Errorf("declares media type %q, expected %q", doc.MediaType, mediaType)
	}
	switch mediaType {
	case MediaTypeDockerManifest, v1.MediaTypeImageManifest:
		if doc.Config == nil || doc.Manifests != nil {
			return nil, nil, errors.New("an image manifest needs a config and no manifests")
		}
		blobs = append([]descriptor{*doc.Config}, doc.Layers...)
	case MediaTypeDockerManifestList, v1.MediaTypeImageIndex:
		if doc.Manifests == nil || doc.Config != nil || doc.Layers != nil {
			return nil, nil, errors.New("a manifest list needs manifests and no config or layers")
		}
		children = doc.Manifests
	default:
		return nil, nil, fmt.Errorf("unsupported manifest media type %q", mediaType)
	}
	for _, d := range append(append([]descriptor(nil), blobs...), children...) {
		if err := checkDescriptor(d); err != nil {
			return nil, nil, err
		}
	}
	return blobs, children, nil
}

func isDocker(mediaType string) bool {
	return mediaType == MediaTypeDockerManifest || mediaType == MediaTypeDockerManifestList
}

func checkDescriptor(d descriptor) error {
	if err := checkDigest(d.Digest); err != nil {
		return fmt.Errorf("descriptor: %w", err)
	}
	if d.MediaType == "" || d.Size < 0 {
		return fmt.Errorf("descriptor %s: media type and size required", d.Digest)
	}
	return nil
}

// contentCheck checks what the files mean: manifests, the OCI layout and
// the releases' files.
type contentCheck struct {
	r      *Reader
	rep    *Report
	prereq map[digest.Digest]Prerequisite
}

func (r *Reader) checkContent(rep *Report) {
	c := &contentCheck{r: r, rep: rep, prereq: make(map[digest.Digest]Prerequisite, len(r.idx.Prerequisites))}
	for _, p := range r.idx.Prerequisites {
		c.prereq[p.Digest] = p
	}
	c.images()
	c.layout()
	c.releases()
	c.updatePath()
}

func (c *contentCheck) fault(file, format string, args ...any) {
	c.rep.add(Fault{Volume: -1, Offset: -1, File: file, Msg: fmt.Sprintf(format, args...)})
}

// need reports whether the blob d references is in the bundle (or a
// prerequisite) with the size the reference states, and says why not.
func (c *contentCheck) need(from string, d descriptor, what string) bool {
	if f, ok := c.r.files[BlobName(d.Digest)]; ok {
		if f.Size != d.Size {
			c.fault(from, "references %s %s of %d bytes; the bundle holds %d bytes", what, d.Digest, d.Size, f.Size)
		}
		return true
	}
	if p, ok := c.prereq[d.Digest]; ok {
		if p.Size != d.Size {
			c.fault(from, "references %s %s of %d bytes; the prerequisite is %d bytes", what, d.Digest, d.Size, p.Size)
		}
		return true
	}
	c.fault(from, "references %s %s, which is neither in the bundle nor a prerequisite", what, d.Digest)
	return false
}

// manifestWork is a manifest to check and where the reference came from.
type manifestWork struct {
	desc descriptor
	from string
}

// images checks every index image's manifest and, through lists, every
// child manifest, each once.
func (c *contentCheck) images() {
	var queue []manifestWork
	for _, im := range c.r.idx.Images {
		from := fmt.Sprintf("image %s (%s)", im.Digest, im.Source)
		queue = append(queue, manifestWork{descriptor{im.MediaType, im.Digest, im.Size}, from})
		for _, d := range im.Children {
			if !c.known(d) {
				c.fault(from, "child manifest %s is not in the bundle", d)
			}
		}
		for _, d := range im.Blobs {
			if !c.known(d) {
				c.fault(from, "blob %s is neither in the bundle nor a prerequisite", d)
			}
		}
	}
	visited := map[digest.Digest]bool{}
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		if visited[w.desc.Digest] {
			continue
		}
		visited[w.desc.Digest] = true
		queue = append(queue, c.manifest(w)...)
	}
}

func (c *contentCheck) known(d digest.Digest) bool {
	_, inBundle := c.r.files[BlobName(d)]
	_, prereq := c.prereq[d]
	return inBundle || prereq
}

// manifest checks one manifest and returns its children to check.
func (c *contentCheck) manifest(w manifestWork) []manifestWork {
	name := BlobName(w.desc.Digest)
	f, ok := c.r.files[name]
	if !ok {
		if _, ok := c.prereq[w.desc.Digest]; !ok {
			c.fault(name, "the manifest of %s is not in the bundle", w.from)
		}
		return nil
	}
	if f.Size != w.desc.Size {
		c.fault(name, "%d bytes, %s says %d", f.Size, w.from, w.desc.Size)
	}
	data, err := c.r.ReadImageManifest(w.desc.Digest)
	if err != nil {
		c.fault(name, "cannot check the manifest: %v", err)
		return nil
	}
	blobs, children, err := parseManifest(data, w.desc.MediaType)
	if err != nil {
		c.fault(name, "manifest of %s: %v", w.from, err)
		return nil
	}
	for _, b := range blobs {
		c.need(name, b, "blob")
	}
	var next []manifestWork
	for _, ch := range children {
		if c.need(name, ch, "child manifest") {
			next = append(next, manifestWork{ch, "list " + string(w.desc.Digest)})
		}
	}
	return next
}

// layout checks the OCI layout's oci-layout and index.json.
func (c *contentCheck) layout() {
	_, hasIndex := c.r.files[LayoutIndexName]
	_, hasLayout := c.r.files[LayoutFileName]
	if !hasIndex && !hasLayout && len(c.r.idx.Images) == 0 {
		return
	}
	c.layoutFile()
	data, err := c.readCapped(LayoutIndexName, maxLayoutIndexSize)
	if err != nil {
		c.fault(LayoutIndexName, "%v", err)
		return
	}
	_, entries, err := parseManifest(data, v1.MediaTypeImageIndex)
	if err != nil {
		c.fault(LayoutIndexName, "%v", err)
		return
	}
	types := make(map[digest.Digest]string, len(c.r.idx.Images))
	for _, im := range c.r.idx.Images {
		types[im.Digest] = im.MediaType
	}
	for _, e := range entries {
		if _, ok := c.r.files[BlobName(e.Digest)]; !ok {
			c.fault(LayoutIndexName, "points at %s, which is not in the bundle", e.Digest)
			continue
		}
		c.need(LayoutIndexName, e, "manifest")
		if mt, ok := types[e.Digest]; ok && mt != e.MediaType {
			c.fault(LayoutIndexName, "gives %s media type %q, the index %q", e.Digest, e.MediaType, mt)
		}
	}
}

func (c *contentCheck) layoutFile() {
	data, err := c.readCapped(LayoutFileName, maxLayoutFileSize)
	if err != nil {
		c.fault(LayoutFileName, "%v", err)
		return
	}
	var l v1.ImageLayout
	if err := strictjson.Decode(data, &l); err != nil {
		c.fault(LayoutFileName, "parsing: %v", err)
	} else if l.Version != v1.ImageLayoutVersion {
		c.fault(LayoutFileName, "imageLayoutVersion %q, want %q", l.Version, v1.ImageLayoutVersion)
	}
}

// readCapped reads a whole file of the bundle of at most max bytes.
func (c *contentCheck) readCapped(name string, max int64) ([]byte, error) {
	sr, err := c.r.Open(name)
	if err != nil {
		return nil, errors.New("missing")
	}
	if sr.Size() > max {
		return nil, fmt.Errorf("%d bytes, more than the %d allowed", sr.Size(), max)
	}
	data, err := io.ReadAll(sr)
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	return data, nil
}

// releases checks that each release's manifest, signatures (numbered from
// 1 without gaps) and ConfigMap are in the bundle.
func (c *contentCheck) releases() {
	for _, rel := range c.r.idx.Releases {
		from := fmt.Sprintf("release %s (%s)", rel.Version, rel.Arch)
		if _, ok := c.r.files[BlobName(rel.Digest)]; !ok {
			c.fault(from, "the release manifest %s is not in the bundle", rel.Digest)
		}
		if !rel.Unsigned && len(rel.Signatures) == 0 {
			c.fault(from, "has no signatures but is not marked unsigned")
		}
		for i, s := range rel.Signatures {
			if want := SignatureName(rel.Digest, i+1); s.File != want {
				c.fault(from, "signature %d is %s, expected %s", i+1, s.File, want)
			}
			if _, ok := c.r.files[s.File]; !ok {
				c.fault(s.File, "signature of %s is not in the bundle", from)
			}
		}
		if _, ok := c.r.files[rel.ConfigMap]; rel.ConfigMap != "" && !ok {
			c.fault(rel.ConfigMap, "signature ConfigMap of %s is not in the bundle", from)
		}
	}
}

// updatePath checks that every version of the update path is a release of
// the bundle: apply prints one upgrade step per hop.
func (c *contentCheck) updatePath() {
	versions := make(map[string]bool, len(c.r.idx.Releases))
	for _, rel := range c.r.idx.Releases {
		versions[rel.Version] = true
	}
	for i, v := range c.r.idx.UpdatePath {
		if !versions[v] {
			c.fault(IndexName, "updatePath[%d] %s is not a release of the bundle", i, v)
		}
	}
}
