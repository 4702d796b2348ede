package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
)

// testPlanner reads the plain-HTTP test registries, without the host's
// credentials, retrying fast.
func testPlanner(t *testing.T) *Planner {
	t.Helper()
	return &Planner{Registry: registry.New(registry.Options{
		AuthFile: filepath.Join(t.TempDir(), "auth.json"),
		Retry:    registry.RetryPolicy{Attempts: 2, Base: time.Millisecond},
	})}
}

func plan(t *testing.T, p *Planner, spec string) (*Plan, error) {
	t.Helper()
	ref, err := release.ParseRef(spec, "")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := p.Plan(t.Context(), []release.Ref{ref})
	if pl != nil {
		t.Cleanup(func() { pl.Close() })
	}
	return pl, err
}

// requestLog records the paths a proxy was asked for.
type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) record(_ int64, r *http.Request) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paths = append(l.paths, r.URL.Path)
	return true
}

func (l *requestLog) asked(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.paths {
		if strings.Contains(p, sub) {
			return true
		}
	}
	return false
}

// pusher pushes hand-made images to repo.
type pusher struct {
	t    *testing.T
	c    *testbed.Client
	repo string
}

func (p pusher) blob(data []byte) imgspecv1.Descriptor {
	p.t.Helper()
	d, err := p.c.PushBlob(context.Background(), p.repo, data)
	if err != nil {
		p.t.Fatal(err)
	}
	return imgspecv1.Descriptor{Digest: d, Size: int64(len(data))}
}

// manifest pushes v as mediaType under reference ("" for its digest).
func (p pusher) manifest(v any, mediaType, reference string) imgspecv1.Descriptor {
	p.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	d := digest.FromBytes(data)
	if reference == "" {
		reference = d.String()
	}
	if _, err := p.c.PushManifest(context.Background(), p.repo, reference, mediaType, data); err != nil {
		p.t.Fatal(err)
	}
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// image pushes an OCI image of the given layers (media type layerType)
// with a config unique to label.
func (p pusher) image(label, layerType string, layers []imgspecv1.Descriptor, reference string) imgspecv1.Descriptor {
	p.t.Helper()
	cfg := p.blob([]byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"l":"` + label + `"}},"rootfs":{"type":"layers","diff_ids":[]}}`))
	cfg.MediaType = imgspecv1.MediaTypeImageConfig
	m := imgspecv1.Manifest{MediaType: imgspecv1.MediaTypeImageManifest, Config: cfg, Layers: []imgspecv1.Descriptor{}}
	m.SchemaVersion = 2
	for _, l := range layers {
		l.MediaType = layerType
		m.Layers = append(m.Layers, l)
	}
	return p.manifest(m, m.MediaType, reference)
}

// index pushes an OCI index of children under reference.
func (p pusher) index(children []imgspecv1.Descriptor, reference string) imgspecv1.Descriptor {
	p.t.Helper()
	idx := imgspecv1.Index{MediaType: imgspecv1.MediaTypeImageIndex, Manifests: children}
	idx.SchemaVersion = 2
	return p.manifest(idx, idx.MediaType, reference)
}

func (p pusher) images(n int) []imgspecv1.Descriptor {
	layer := p.blob([]byte("layer"))
	var out []imgspecv1.Descriptor
	for i := range n {
		out = append(out, p.image(fmt.Sprintf("child-%d", i), imgspecv1.MediaTypeImageLayerGzip, []imgspecv1.Descriptor{layer}, ""))
	}
	return out
}

// TestPlanCarriesCosignSignatures: what cosign writes passes the checks
// of signature tags, for single-arch and multi-arch releases.
func TestPlanCarriesCosignSignatures(t *testing.T) {
	for _, multi := range []bool{false, true} {
		t.Run(fmt.Sprintf("multi=%v", multi), func(t *testing.T) {
			reg := testbed.NewMemoryRegistry(t)
			rel := testbed.BuildRelease(t, reg.Host, testbed.ReleaseOptions{Components: 3, Sigstore: true, Multi: multi})
			pl, err := plan(t, testPlanner(t), rel.DigestSpec())
			if err != nil {
				t.Fatal(err)
			}
			sigs := 0
			for _, img := range pl.Images {
				if img.Role == RoleSigstore {
					sigs++
				}
			}
			if sigs != len(rel.SigTags) || sigs == 0 {
				t.Errorf("%d signature images planned, %d pushed", sigs, len(rel.SigTags))
			}
		})
	}
}

// TestPlanRefusesForgedSignatureTags: a sha256-<hex>.sig tag that is not
// a cosign signature fails the plan with a *SigstoreError naming the tag,
// before anything it points to is read.
func TestPlanRefusesForgedSignatureTags(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	proxy := testbed.NewFaultProxy(t, reg.URL)
	rel := testbed.BuildRelease(t, proxy.Host, testbed.ReleaseOptions{Components: 2})
	comp := rel.Components[0]
	p := pusher{t: t, c: reg.Client(), repo: comp.Repository}
	tag := SigstoreTag(comp.Digest)
	payload := p.blob([]byte(`{"critical":{}}`))
	cases := []struct {
		name   string
		push   func() []imgspecv1.Descriptor // the tag's target, then what must not be read
		reason string
	}{
		{"a manifest list", func() []imgspecv1.Descriptor {
			children := p.images(3)
			return append([]imgspecv1.Descriptor{p.index(children, tag)}, children...)
		}, "it is a manifest list"},
		{"layers that are not payloads", func() []imgspecv1.Descriptor {
			big := p.blob(make([]byte, 10<<10))
			return []imgspecv1.Descriptor{p.image("sig", imgspecv1.MediaTypeImageLayerGzip, []imgspecv1.Descriptor{big}, tag), big}
		}, "not " + MediaTypeCosignPayload},
		{"a payload too large", func() []imgspecv1.Descriptor {
			big := p.blob(make([]byte, MaxSigstoreBlobSize+1))
			return []imgspecv1.Descriptor{p.image("sig", MediaTypeCosignPayload, []imgspecv1.Descriptor{big}, tag), big}
		}, "mirror.MaxSigstoreBlobSize"},
		{"too many payloads", func() []imgspecv1.Descriptor {
			layers := make([]imgspecv1.Descriptor, MaxSigstoreLayers+1)
			for i := range layers {
				layers[i] = payload
			}
			return []imgspecv1.Descriptor{p.image("sig", MediaTypeCosignPayload, layers, tag), payload}
		}, "mirror.MaxSigstoreLayers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pushed := tc.push()
			log := &requestLog{}
			proxy.OnRequest(log.record)
			defer proxy.OnRequest(nil)
			_, err := plan(t, testPlanner(t), rel.DigestSpec())
			se, ok := errors.AsType[*SigstoreError](err)
			if !ok || se.Tag != proxy.Host+"/"+comp.Repository+":"+tag || se.Digest != pushed[0].Digest.String() || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error = %v, want a *SigstoreError for %s saying %q", err, tag, tc.reason)
			}
			for _, d := range pushed[1:] {
				if log.asked(d.Digest.String()) {
					t.Errorf("%s, named by the forged tag, was read", d.Digest)
				}
			}
		})
	}
}

// TestPlanBounds: a list naming more than MaxListChildren manifests, an
// image of more than MaxImageLayers layers, and manifests past the plan's
// byte budget each fail the plan with a *BoundError naming the manifest;
// no child of an oversized list is read.
func TestPlanBounds(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	proxy := testbed.NewFaultProxy(t, reg.URL)
	repo := "hostile/release"
	p := pusher{t: t, c: reg.Client(), repo: repo}

	children := p.images(MaxListChildren + 1)
	list := p.index(children, "wide")
	layer := p.blob([]byte("one layer"))
	layers := make([]imgspecv1.Descriptor, MaxImageLayers+1)
	for i := range layers {
		layers[i] = layer
	}
	deep := p.image("deep", imgspecv1.MediaTypeImageLayerGzip, layers, "deep")

	log := &requestLog{}
	proxy.OnRequest(log.record)
	spec := proxy.Host + "/" + repo
	_, err := plan(t, testPlanner(t), spec+":wide")
	wantBound(t, err, "MaxListChildren", spec+"@"+list.Digest.String(), MaxListChildren, MaxListChildren+1)
	for _, c := range children {
		if log.asked(c.Digest.String()) {
			t.Errorf("child %s of the oversized list was read", c.Digest)
			break
		}
	}
	_, err = plan(t, testPlanner(t), spec+":deep")
	wantBound(t, err, "MaxImageLayers", spec+"@"+deep.Digest.String(), MaxImageLayers, MaxImageLayers+1)

	// A list of ten children of 1 KiB or so, with a budget of five.
	small := p.index(children[:10], "small")
	pl := testPlanner(t)
	pl.maxManifestBytes = small.Size + 5*children[0].Size
	_, err = plan(t, pl, spec+":small")
	be, ok := errors.AsType[*BoundError](err)
	if !ok || be.Bound != "MaxPlanManifestBytes" || be.Limit != pl.maxManifestBytes || be.Got <= be.Limit ||
		!strings.Contains(err.Error(), "mirror.MaxPlanManifestBytes") {
		t.Fatalf("error = %v, want a *BoundError for MaxPlanManifestBytes", err)
	}
}

func wantBound(t *testing.T, err error, bound, image string, limit, got int64) {
	t.Helper()
	be, ok := errors.AsType[*BoundError](err)
	if !ok || be.Bound != bound || be.Image != image || be.Limit != limit || be.Got != got {
		t.Fatalf("error = %v (%+v), want a *BoundError for %s of %s (%d > %d)", err, be, bound, image, got, limit)
	}
	if !strings.Contains(err.Error(), image) || !strings.Contains(err.Error(), "mirror."+bound) {
		t.Errorf("error %q does not name the image and the bound", err)
	}
}

// TestPlanFailsOnASignatureLookup: the Sigstore lookups run beside the
// walk; one that fails (its connection reset at every try) fails the plan
// with its own error, naming the tag, not with the cancellation it caused
// in the walk.
func TestPlanFailsOnASignatureLookup(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	proxy := testbed.NewFaultProxy(t, reg.URL)
	rel := testbed.BuildRelease(t, proxy.Host, testbed.ReleaseOptions{Components: 12})
	tag := SigstoreTag(rel.Digest)
	proxy.OnRequest(func(_ int64, r *http.Request) bool {
		return !strings.HasSuffix(r.URL.Path, "/manifests/"+tag)
	})
	pl, err := plan(t, testPlanner(t), rel.DigestSpec())
	if pl != nil || err == nil {
		t.Fatal("the plan succeeded though its release's signature tag could not be looked up")
	}
	if errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "look up "+proxy.Host+"/"+rel.Repository+":"+tag) {
		t.Errorf("error = %v, want the lookup of %s's failure", err, tag)
	}
}
