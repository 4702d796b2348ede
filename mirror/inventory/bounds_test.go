package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

// TestScanEndlessTags: a mirror whose tag list paginates forever fails the
// scan at registry.MaxTags instead of growing without end.
func TestScanEndlessTags(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Components: 1, ReleaseRepo: mirrorRepo})
	p := testbed.NewEndlessTagsProxy(t, reg.URL)
	_, err := Scan(context.Background(), p.Host+"/"+mirrorRepo, scanOptions(t))
	be, ok := errors.AsType[*registry.TagListBoundError](err)
	if !ok || be.Bound != "MaxTags" || !strings.Contains(err.Error(), p.Host+"/"+mirrorRepo) {
		t.Fatalf("error = %v, want a *registry.TagListBoundError naming the repository", err)
	}
}

// TestBuilderMaxEntries: manifests whose blobs take the inventory past
// its entry bound (MaxEntries, shrunk here) are refused with an
// *EntriesBoundError; the ones before are kept.
func TestBuilderMaxEntries(t *testing.T) {
	const layers = 255
	b := NewBuilder()
	b.maxEntries = 10*(layers+2) + 100
	added := 0
	for i := 0; ; i++ {
		m := imgspecv1.Manifest{MediaType: imgspecv1.MediaTypeImageManifest}
		m.SchemaVersion = 2
		m.Config = imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: digest.FromString(fmt.Sprint("config", i)), Size: 1}
		for l := range layers {
			m.Layers = append(m.Layers, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageLayerGzip,
				Digest: digest.FromString(fmt.Sprint("layer", i, "/", l)), Size: 1})
		}
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(data)
		_, err = b.AddManifest(d, m.MediaType, data)
		if be, ok := errors.AsType[*EntriesBoundError](err); ok {
			if be.Manifest != d || be.Limit != b.maxEntries || added+layers+2 <= b.maxEntries {
				t.Errorf("refused %+v after %d entries", be, added)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if added += layers + 2; added > b.maxEntries {
			t.Fatalf("%d entries accepted", added)
		}
	}
	inv := b.Inventory("test")
	if got := len(inv.Manifests) + len(inv.Blobs); got != added {
		t.Errorf("the inventory holds %d entries, %d were accepted", got, added)
	}
}
