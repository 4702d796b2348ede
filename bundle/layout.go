package bundle

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Names of the OCI image layout inside a bundle.
const (
	LayoutDir       = "mirror/oci"
	LayoutFileName  = LayoutDir + "/" + v1.ImageLayoutFile
	LayoutIndexName = LayoutDir + "/" + v1.ImageIndexFile
)

// BlobName is the entry name of a blob: mirror/oci/blobs/<algorithm>/<hex>.
// It does not validate d; the writer and reader refuse malformed names.
func BlobName(d digest.Digest) string {
	alg, enc, _ := strings.Cut(string(d), ":")
	return blobDir + alg + "/" + enc
}

// SignatureName is the entry name of the n-th (from 1) signature of a
// release: mirror/signatures/sha256=<hex>/signature-<n>.
func SignatureName(release digest.Digest, n int) string {
	alg, enc, _ := strings.Cut(string(release), ":")
	return "mirror/signatures/" + alg + "=" + enc + "/signature-" + strconv.Itoa(n)
}

// LayoutEntry is one entry point of the layout's index.json.
type LayoutEntry struct {
	Digest digest.Digest
	// MediaType is the manifest's media type as stored, Docker or OCI.
	MediaType string
	Size      int64
	// RefName becomes the org.opencontainers.image.ref.name annotation
	// (the target tag); empty leaves the entry unnamed.
	RefName string
}

// OCILayout returns the content of mirror/oci/oci-layout.
func OCILayout() []byte {
	b, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	return b
}

// OCIIndex returns the content of mirror/oci/index.json listing entries
// sorted by name, then digest, so that the same entries give the same bytes
// whatever order they were found in. An entry listed twice with the same
// name is kept once.
func OCIIndex(entries []LayoutEntry) ([]byte, error) {
	entries = slices.Clone(entries)
	slices.SortStableFunc(entries, func(a, b LayoutEntry) int {
		return cmp.Or(strings.Compare(a.RefName, b.RefName), strings.Compare(string(a.Digest), string(b.Digest)))
	})
	idx := v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: make([]v1.Descriptor, 0, len(entries)),
	}
	seen := make(map[LayoutEntry]bool, len(entries))
	for _, e := range entries {
		if err := checkDigest(e.Digest); err != nil {
			return nil, fmt.Errorf("layout entry %s: %w", e.RefName, err)
		}
		if e.MediaType == "" || e.Size < 0 {
			return nil, fmt.Errorf("layout entry %s %s: media type and size required", e.RefName, e.Digest)
		}
		if seen[e] {
			continue
		}
		seen[e] = true
		desc := v1.Descriptor{MediaType: e.MediaType, Digest: e.Digest, Size: e.Size}
		if e.RefName != "" {
			desc.Annotations = map[string]string{v1.AnnotationRefName: e.RefName}
		}
		idx.Manifests = append(idx.Manifests, desc)
	}
	return json.MarshalIndent(idx, "", "  ")
}
