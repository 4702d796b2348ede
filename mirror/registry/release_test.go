package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/release"
)

// TestReadRelease reads a synthetic release the way the planner will:
// resolve, read image-references out of verified layers, probe .sig tags.
func TestReadRelease(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	rel := testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Version: "4.15.0", Components: 4, Sigstore: true})
	c := New(testOptions(t, nil))

	m, err := c.Resolve(ctx, rel.PullSpec)
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != rel.Digest || !bytes.Equal(m.Bytes, rel.Manifest) {
		t.Fatalf("release resolved to %s, want %s", m.Digest, rel.Digest)
	}
	src, err := c.Source(ctx, rel.DigestSpec())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	var parsed struct {
		Layers []struct {
			Digest digest.Digest `json:"digest"`
			Size   int64         `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(m.Bytes, &parsed); err != nil {
		t.Fatal(err)
	}
	var layers []release.LayerOpener
	opened := 0
	for _, l := range parsed.Layers {
		layers = append(layers, func(ctx context.Context) (io.ReadCloser, error) {
			opened++
			return src.VerifiedBlob(ctx, l.Digest, l.Size)
		})
	}
	files, err := release.ReadFiles(ctx, layers)
	if err != nil {
		t.Fatal(err)
	}
	if opened != 1 {
		t.Errorf("opened %d layers, want only the top one", opened)
	}
	refs, _, err := files.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if refs.Version != rel.Version || len(refs.Components) != len(rel.Components) {
		t.Fatalf("image-references: %s with %d components", refs.Version, len(refs.Components))
	}

	signed := 0
	for _, comp := range refs.Components {
		csrc, err := c.Source(ctx, comp.Image)
		if err != nil {
			t.Fatal(err)
		}
		_, err = csrc.ManifestByTag(ctx, "sha256-"+comp.Digest.Encoded()+".sig")
		switch {
		case err == nil:
			signed++
		case !errors.Is(err, ErrNotFound):
			t.Errorf("%s: %v", comp.Name, err)
		}
		csrc.Close()
	}
	want := 0
	for _, tag := range rel.SigTags {
		for _, comp := range refs.Components {
			if strings.HasSuffix(tag, "sha256-"+comp.Digest.Encoded()+".sig") {
				want++
			}
		}
	}
	if signed != want || want == 0 {
		t.Errorf("found %d signed components, want %d", signed, want)
	}
}

func TestReadReleaseRefusesTagReference(t *testing.T) {
	reg := testbed.NewRegistry(t)
	rel := testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Version: "4.15.1", Components: 2, TagReference: true})
	_, err := release.ParseImageReferences(rel.ImageReferences)
	var tagged string
	for _, comp := range rel.Components {
		if comp.Tag != "" {
			tagged = comp.Name
		}
	}
	if tagged == "" || err == nil || !strings.Contains(err.Error(), `"`+tagged+`"`) {
		t.Errorf("component %q named by tag: %v", tagged, err)
	}
}
