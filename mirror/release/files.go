package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/ferryhq/ferry/mirror/internal/layerio"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// LayerOpener opens one layer of an image as the registry serves it (a tar,
// possibly gzip- or zstd-compressed). ReadFiles closes what it opens.
type LayerOpener func(ctx context.Context) (io.ReadCloser, error)

// Files are the raw release-manifests files of a release image.
type Files struct {
	ImageReferences []byte
	Metadata        []byte
	// PolicyFiles are the release-manifests/ files that declare a
	// ClusterImagePolicy or ImagePolicy (see Policies), in tar order.
	PolicyFiles []ManifestFile
	// CoreOSBootImages is CoreOSBootImagesPath byte for byte, nil when the
	// layers read hold none (see BootImages and KubeVirtContainer).
	CoreOSBootImages []byte

	// bootImagesErr is why CoreOSBootImagesPath could not be kept (not a
	// regular file, over MaxCoreOSBootImagesSize). It fails only the
	// callers that ask for the file: a release is read the same whether
	// or not its bootimages are wanted.
	bootImagesErr error
}

// ManifestFile is one file of release-manifests/.
type ManifestFile struct {
	Name string
	Data []byte
}

// Policies parses the image policies the release ships: what its nodes
// will demand of Sigstore signatures (none before 4.21).
func (f *Files) Policies() ([]sigstore.Policy, error) {
	var all []sigstore.Policy
	for _, file := range f.PolicyFiles {
		ps, err := sigstore.ParsePolicies(file.Name, file.Data)
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
		if len(all) > sigstore.MaxPolicies {
			return nil, fmt.Errorf("release ships more than %d image policies (sigstore.MaxPolicies)", sigstore.MaxPolicies)
		}
	}
	return all, nil
}

// Parse parses both files and checks that they name the same version.
func (f *Files) Parse() (*ImageReferences, *Metadata, error) {
	refs, err := ParseImageReferences(f.ImageReferences)
	if err != nil {
		return nil, nil, err
	}
	meta, err := ParseMetadata(f.Metadata)
	if err != nil {
		return nil, nil, err
	}
	if err := CheckVersion(refs, meta); err != nil {
		return nil, nil, err
	}
	return refs, meta, nil
}

// Bounds on inflating release layers. A layer is small on the wire and
// checked against its digest, but what it inflates to is not: a few hundred
// KB of gzip or zstd can inflate to many GB, and a zstd frame may ask for a
// window of up to 3.75 TB. ReadFiles only ever needs release-manifests/,
// which `oc adm release new` puts in the release image's top layer (tens of
// MB inflated, CRDs included), so these bounds leave a wide margin for real
// releases and stop a bomb after a second or two of CPU and no memory.
const (
	// MaxInflatedPerLayer caps what one layer may inflate to before both
	// files are found: some ten times what a release's
	// release-manifests/ layer holds (tens of MB), far less than a bomb
	// would make ferry inflate.
	MaxInflatedPerLayer = 512 << 20
	// MaxInflatedPerImage caps what all the layers ReadFiles opens for one
	// image inflate to together: two full layers, so that files split
	// over the top two layers still fit, while an image of many bombs
	// costs no more than two.
	MaxInflatedPerImage = 2 * MaxInflatedPerLayer
	// MaxZstdWindow caps the window (history buffer) a zstd frame may
	// demand, which the decoder allocates: 128 MiB is the reference
	// decoder's own default limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 2^27), so
	// any layer `zstd -d` decodes without --memory decodes here too;
	// klauspost/compress would otherwise accept 512 MiB.
	MaxZstdWindow = 128 << 20
)

// InflateBoundError reports a layer that needs more than a bound allows to
// be read: a decompression bomb, or no release image at all. Callers may
// match it with errors.As to tell hostile content from a broken read.
type InflateBoundError struct {
	// Bound names the constant exceeded: "MaxInflatedPerLayer",
	// "MaxInflatedPerImage" or "MaxZstdWindow".
	Bound string
	// Limit is its value, in bytes.
	Limit int64
}

func (e *InflateBoundError) Error() string {
	if e.Bound == "MaxZstdWindow" {
		return fmt.Sprintf("zstd frame asks for a window larger than %d bytes, the bound (release.%s)", e.Limit, e.Bound)
	}
	what := "the layer inflates"
	if e.Bound == "MaxInflatedPerImage" {
		what = "the layers read so far inflate"
	}
	return fmt.Sprintf("%s to more than %d bytes, the bound (release.%s), before %s and %s are found: a decompression bomb, or not a release image",
		what, e.Limit, e.Bound, ImageReferencesPath, MetadataPath)
}

// inflateLimits are the bounds one ReadFiles call applies; tests shrink them.
type inflateLimits struct {
	perLayer, perImage int64
	zstdWindow         uint64
}

var defaultInflateLimits = inflateLimits{perLayer: MaxInflatedPerLayer, perImage: MaxInflatedPerImage, zstdWindow: MaxZstdWindow}

// ReadFiles reads image-references and release-metadata out of an image's
// layers, given in manifest order (base first). It reads from the top layer
// down, as the image's filesystem resolves them: the first layer holding a
// file wins, and a whiteout in an upper layer hides the file below it. Once
// both files are found it opens no further layer, so the large base layers
// of a release are normally never fetched.
//
// From the layers it reads it also keeps the release-manifests/ files that
// declare image policies and the coreos-bootimages manifest
// (CoreOSBootImagesPath); neither is required, and a bootimages manifest
// it cannot keep fails only BootImages and KubeVirtContainer.
//
// It inflates a layer only as far as it must: once both files are read it
// stops, and no layer may inflate past MaxInflatedPerLayer, nor all of them
// together past MaxInflatedPerImage, nor ask for a zstd window over
// MaxZstdWindow (an *InflateBoundError). Every layer it opens is still read
// to its very end, compressed, so that an opener which verifies what it
// streams (registry's VerifiedBlob) gets to check the whole layer: the files
// returned come only from layers that passed.
func ReadFiles(ctx context.Context, layers []LayerOpener) (*Files, error) {
	return readFiles(ctx, layers, defaultInflateLimits)
}

func readFiles(ctx context.Context, layers []LayerOpener, limits inflateLimits) (*Files, error) {
	var (
		files  Files
		hidden = map[string]bool{} // whited out by a layer above
	)
	want := func(name string) bool {
		switch name {
		case ImageReferencesPath:
			return files.ImageReferences == nil && !hidden[name]
		case MetadataPath:
			return files.Metadata == nil && !hidden[name]
		}
		return false
	}
	done := func() bool { return !want(ImageReferencesPath) && !want(MetadataPath) }
	seenPolicy := map[string]bool{}
	wantPolicy := func(name string) bool {
		if !isManifestFile(name) || hidden[name] || seenPolicy[name] {
			return false
		}
		seenPolicy[name] = true
		return true
	}

	budget := &inflateBudget{limits: limits}
	for i := len(layers) - 1; i >= 0 && !done(); i-- {
		whiteouts, err := readLayer(ctx, layers[i], budget, want, done, wantPolicy, &files)
		if err != nil {
			return nil, fmt.Errorf("reading layer %d of %d: %w", i+1, len(layers), err)
		}
		for _, name := range whiteouts {
			hidden[name] = true
		}
	}
	var missing []string
	if files.ImageReferences == nil {
		missing = append(missing, ImageReferencesPath)
	}
	if files.Metadata == nil {
		missing = append(missing, MetadataPath)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("not a release image: %s not found in its layers", strings.Join(missing, " and "))
	}
	return &files, nil
}

// readLayer scans one layer, storing wanted files into files, and returns the
// wanted names that the layer whites out for the layers below it.
//
// With wantPolicy it reads on through release-manifests/ after both files
// are found, keeping each file wantPolicy names that declares an image
// policy.
func readLayer(ctx context.Context, open LayerOpener, budget *inflateBudget, want func(string) bool, done func() bool, wantPolicy func(string) bool, files *Files) (whiteouts []string, err error) {
	rc, err := open(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing layer: %w", cerr)
		}
	}()
	raw := bufio.NewReader(layerio.Reader(ctx, rc))
	r, closeDecomp, err := layerio.Decompress(raw, budget.limits.zstdWindow)
	if err != nil {
		return nil, err
	}
	defer closeDecomp()
	if r != io.Reader(raw) {
		// A plain tar is bounded by its size, which the opener checks;
		// only what a layer inflates to needs counting.
		r = budget.layer(r)
	}

	tr := tar.NewReader(r)
	for !done() || wantPolicy != nil {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		name := cleanName(hdr.Name)
		if done() && !strings.HasPrefix(name, ReleaseManifestsDir) {
			// Past release-manifests/, which `oc adm release new` writes
			// as one directory: nothing more to read, nothing to inflate.
			break
		}
		dir, base := path.Split(name)
		if hidden, ok := strings.CutPrefix(base, ".wh."); ok {
			whiteouts = append(whiteouts, whitedOut(dir, hidden)...)
			continue
		}
		if name == CoreOSBootImagesPath {
			// Kept as the policy files are: the first, unhidden one.
			if wantPolicy != nil && wantPolicy(name) {
				if err := files.readBootImages(tr, hdr, name); err != nil {
					return nil, err
				}
			}
			continue
		}
		if wantPolicy != nil && !want(name) && wantPolicy(name) {
			if err := files.scanPolicyFile(tr, hdr, name); err != nil {
				return nil, err
			}
			continue
		}
		if !want(name) {
			continue
		}
		data, err := readWanted(tr, hdr, name)
		if err != nil {
			return nil, err
		}
		if name == ImageReferencesPath {
			files.ImageReferences = data
		} else {
			files.Metadata = data
		}
	}
	// Read on to the end of the layer as it came, without inflating the
	// rest: the compression trailer, and anything after it, where a
	// verifying reader reports a mismatch.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return nil, fmt.Errorf("reading to the end: %w", err)
	}
	return whiteouts, nil
}

// readWanted reads the tar entry hdr, one of the two files, within its size
// bound.
func readWanted(tr *tar.Reader, hdr *tar.Header, name string) ([]byte, error) {
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%s is not a regular file (tar type %q)", name, hdr.Typeflag)
	}
	limit := int64(MaxImageReferencesSize)
	if name == MetadataPath {
		limit = MaxMetadataSize
	}
	if hdr.Size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", name, hdr.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(data)) != hdr.Size {
		return nil, fmt.Errorf("reading %s: %w", name, io.ErrUnexpectedEOF)
	}
	return data, nil
}

// inflateBudget counts the bytes inflated for one image.
type inflateBudget struct {
	limits inflateLimits
	image  int64
}

// layer returns r (one layer, inflated) counted against the bounds.
func (b *inflateBudget) layer(r io.Reader) io.Reader { return &countingReader{r: r, budget: b} }

type countingReader struct {
	r      io.Reader
	budget *inflateBudget
	n      int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.budget.image += int64(n)
	switch {
	case c.n > c.budget.limits.perLayer:
		return n, &InflateBoundError{Bound: "MaxInflatedPerLayer", Limit: c.budget.limits.perLayer}
	case c.budget.image > c.budget.limits.perImage:
		return n, &InflateBoundError{Bound: "MaxInflatedPerImage", Limit: c.budget.limits.perImage}
	}
	if layerio.WindowExceeded(err) {
		err = fmt.Errorf("%w (%w)", &InflateBoundError{Bound: "MaxZstdWindow", Limit: int64(c.budget.limits.zstdWindow)}, err)
	}
	return n, err
}

// whitedOut returns the wanted files that a whiteout entry ".wh.<hidden>" in
// directory dir hides in lower layers: the file itself or a directory above
// it, or, for the opaque marker ".wh..wh..opq", everything under dir.
func whitedOut(dir, hidden string) []string {
	var out []string
	for _, f := range []string{ImageReferencesPath, MetadataPath, CoreOSBootImagesPath} {
		if hidden == ".wh..opq" && strings.HasPrefix(f, dir) ||
			dir+hidden == f || strings.HasPrefix(f, dir+hidden+"/") {
			out = append(out, f)
		}
	}
	return out
}

// cleanName turns a tar entry name into a clean relative path, accepting the
// "./" and "/" prefixes image builders use.
func cleanName(name string) string {
	name = path.Clean("/" + name)
	return strings.TrimPrefix(name, "/")
}

// Bounds on the scan for image policies, which reads every manifest of
// release-manifests/. A policy file is a few KB; the largest manifests of
// a release are CRDs of a few hundred KB.
const (
	// MaxPolicyFileSize caps a manifest kept for its image policies.
	MaxPolicyFileSize = 1 << 20
	// MaxPolicyFiles caps how many such files one release may have.
	MaxPolicyFiles = 64
)

// ReleaseManifestsDir holds a release image's manifests.
const ReleaseManifestsDir = "release-manifests/"

// policyKind is the word a file must contain to be parsed for image
// policies: both ClusterImagePolicy and ImagePolicy contain the second.
var policyKind = []byte("ImagePolicy")

func isManifestFile(name string) bool {
	if !strings.HasPrefix(name, ReleaseManifestsDir) {
		return false
	}
	switch path.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// scanPolicyFile reads one manifest and keeps it when it declares an image
// policy. A larger file is streamed through, never held, and refused if it
// names a policy kind: a policy ferry skipped would let through a pack the
// nodes will refuse.
func (f *Files) scanPolicyFile(tr *tar.Reader, hdr *tar.Header, name string) error {
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	if hdr.Size > MaxPolicyFileSize {
		found, err := streamContains(tr, policyKind)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if found {
			return fmt.Errorf("%s may declare an image policy and is %d bytes, more than the %d read (release.MaxPolicyFileSize)", name, hdr.Size, MaxPolicyFileSize)
		}
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return f.keepIfPolicy(name, data)
}

// keepIfPolicy keeps data, the manifest name of at most MaxPolicyFileSize
// bytes, when it declares an image policy.
func (f *Files) keepIfPolicy(name string, data []byte) error {
	if !bytes.Contains(data, policyKind) {
		return nil
	}
	if len(f.PolicyFiles) == MaxPolicyFiles {
		return fmt.Errorf("more than %d release manifests declare image policies (release.MaxPolicyFiles)", MaxPolicyFiles)
	}
	f.PolicyFiles = append(f.PolicyFiles, ManifestFile{Name: name, Data: data})
	return nil
}

// readBootImages keeps the coreos-bootimages manifest, or why it could not
// (bootImagesErr), and scans it for image policies as any other manifest:
// reading it changes nothing else ReadFiles returns.
func (f *Files) readBootImages(tr *tar.Reader, hdr *tar.Header, name string) error {
	switch {
	case hdr.Typeflag != tar.TypeReg:
		f.bootImagesErr = fmt.Errorf("%s is not a regular file (tar type %q)", name, hdr.Typeflag)
		return nil
	case hdr.Size > MaxCoreOSBootImagesSize:
		f.bootImagesErr = fmt.Errorf("%s is %d bytes, more than the %d read (release.MaxCoreOSBootImagesSize)", name, hdr.Size, MaxCoreOSBootImagesSize)
		return f.scanPolicyFile(tr, hdr, name)
	}
	data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(data)) != hdr.Size {
		return fmt.Errorf("reading %s: %w", name, io.ErrUnexpectedEOF)
	}
	f.CoreOSBootImages = data
	// MaxCoreOSBootImagesSize is MaxPolicyFileSize: what scanPolicyFile
	// would have read whole.
	return f.keepIfPolicy(name, data)
}

// streamContains reports whether r holds needle, reading it in chunks.
func streamContains(r io.Reader, needle []byte) (bool, error) {
	buf := make([]byte, 64<<10)
	keep := 0
	for {
		n, err := r.Read(buf[keep:])
		if bytes.Contains(buf[:keep+n], needle) {
			_, err := io.Copy(io.Discard, r)
			return true, err
		}
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		total := keep + n
		keep = min(len(needle)-1, total)
		copy(buf, buf[total-keep:total])
	}
}
