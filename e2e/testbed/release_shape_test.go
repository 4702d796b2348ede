package testbed

import (
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestRealPayloadShape: the plan at the real scale is deterministic and
// has the real payload's shape: 190 components, about 240 manifests,
// 1.8 GB, own layers log-normal around 1 MB (many small, a few large),
// base layers shared.
func TestRealPayloadShape(t *testing.T) {
	s, err := RealPayload(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := RealPayload(1, 1)
	if !reflect.DeepEqual(s, again) {
		t.Fatal("RealPayload(1, 1) differs between two calls")
	}
	if other, _ := RealPayload(1, 2); reflect.DeepEqual(s, other) {
		t.Fatal("RealPayload with another seed made the same plan")
	}
	if len(s.Components) != RealComponents {
		t.Errorf("%d components, want %d", len(s.Components), RealComponents)
	}
	if m := s.Manifests(); m < 220 || m > 260 {
		t.Errorf("%d manifests, want about 240", m)
	}
	if n := s.Bytes(); n < RealPayloadBytes*95/100 || n > RealPayloadBytes*105/100 {
		t.Errorf("%d bytes of layers, want %d within 5%%", n, int64(RealPayloadBytes))
	}
	sizes := s.OwnLayerSizes()
	if n := len(sizes); n < 500 || n > 700 {
		t.Errorf("%d own layers, want about 600 (with configs, base and signatures: ~860 blobs)", n)
	}
	median, largest := sizes[len(sizes)/2], sizes[len(sizes)-1]
	if median < 512<<10 || median > 2<<20 {
		t.Errorf("median own layer %d bytes, want about 1 MiB", median)
	}
	if largest < 20*median {
		t.Errorf("largest own layer %d bytes, want a long tail (at least 20x the median %d)", largest, median)
	}
	if small := sizes[len(sizes)/4]; small > median/2 {
		t.Errorf("a quarter of the layers are above %d bytes, want many small (under half the median %d)", small, median)
	}
	assertBaseShared(t, s)
	var indexes, signed int
	for _, c := range s.Components {
		if c.Arches > 1 {
			indexes++
		}
		if c.Signed {
			signed++
		}
	}
	if indexes == 0 || signed == 0 || signed > len(s.Components)/4 {
		t.Errorf("%d two-arch indexes and %d signed components of %d; want some of each, signatures on some", indexes, signed, len(s.Components))
	}
}

// assertBaseShared: the first base layer is in every component, every
// other in at least two.
func assertBaseShared(t *testing.T, s *PayloadShape) {
	t.Helper()
	users := make([]int, len(s.BaseLayers))
	for _, c := range s.Components {
		for _, k := range c.Base {
			users[k]++
		}
	}
	if users[0] != len(s.Components) {
		t.Errorf("base layer 0 is in %d of %d components, want all", users[0], len(s.Components))
	}
	for k, n := range users {
		if n < 2 {
			t.Errorf("base layer %d is in %d components, want it shared", k, n)
		}
	}
}

// TestRealPayloadScale: a scaled-down plan keeps the median layer and
// shrinks the components; a scaled-up one keeps the components.
func TestRealPayloadScale(t *testing.T) {
	small, err := RealPayload(0.1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(small.Components) != RealComponents/10 {
		t.Errorf("scale 0.1: %d components, want %d", len(small.Components), RealComponents/10)
	}
	if n := small.Bytes(); n < RealPayloadBytes/10*80/100 || n > RealPayloadBytes/10*120/100 {
		t.Errorf("scale 0.1: %d bytes, want about %d", n, int64(RealPayloadBytes/10))
	}
	large, _ := RealPayload(4, 1)
	if len(large.Components) != RealComponents {
		t.Errorf("scale 4: %d components, want %d", len(large.Components), RealComponents)
	}
	for _, bad := range []float64{0, -1} {
		if _, err := RealPayload(bad, 1); err == nil {
			t.Errorf("RealPayload(%v) made a plan", bad)
		}
	}
}

// TestShapedRelease builds a tiny release on a plan and finds the plan in
// it: every manifest, the layer bytes, base layers in several images, the
// signed components signed and the indexes with two children.
func TestShapedRelease(t *testing.T) {
	shape, err := RealPayload(0.005, 7)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewMemoryRegistry(t)
	rel := BuildRelease(t, reg.Host, ShapedRelease(shape))
	if len(rel.Components) != len(shape.Components) {
		t.Fatalf("%d components, want %d", len(rel.Components), len(shape.Components))
	}
	if len(rel.Images) != shape.Manifests() {
		t.Errorf("%d manifests pushed, the shape plans %d", len(rel.Images), shape.Manifests())
	}
	// Layers are tar'd and gzip'd (stored): a little over their payload.
	if rel.Bytes < shape.Bytes() || rel.Bytes > shape.Bytes()+shape.Bytes()/10 {
		t.Errorf("release has %d bytes of blobs, the shape %d of layer payload", rel.Bytes, shape.Bytes())
	}
	in := map[digest.Digest]int{}
	var lists int
	for _, im := range rel.Images {
		for _, d := range im.Blobs {
			in[d]++
		}
		if len(im.Children) == 2 {
			lists++
		}
	}
	var shared int
	for _, n := range in {
		if n >= 3 {
			shared++
		}
	}
	if shared < len(shape.BaseLayers) {
		t.Errorf("%d blobs are in three images or more, want at least the %d base layers", shared, len(shape.BaseLayers))
	}
	var wantLists int
	for i, c := range shape.Components {
		if c.Arches > 1 {
			wantLists++
		}
		name := componentName(i)
		got, ok := rel.Component(name)
		if !ok || got.Signed != c.Signed {
			t.Errorf("component %s: signed %t (found %t), the shape says %t", name, got.Signed, ok, c.Signed)
		}
	}
	if lists != wantLists || wantLists == 0 {
		t.Errorf("%d two-arch indexes pushed, the shape plans %d", lists, wantLists)
	}
}
