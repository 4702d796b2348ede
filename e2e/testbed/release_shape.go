package testbed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// The shape of a real OpenShift payload, as measured on a 4.x x86_64
// release: about 190 component images, 240 manifests (a few components
// are indexes of two arches; cosign .sig tags on some), 860 unique blobs,
// 1.8 GB; layer sizes log-normal around a 1 MB median, a few large and
// many small; a handful of base layers (RHEL and OpenShift bases) shared
// by most components.
const (
	// RealComponents is how many component images a real payload names.
	RealComponents = 190
	// RealPayloadBytes is a real payload's layer data, in bytes.
	RealPayloadBytes = 1_800_000_000
	// realMedianLayer is the median size of a component's own layer.
	realMedianLayer = 1 << 20
	// realLayerSigma is the spread of ln(layer size): with a 1 MB median it
	// makes the mean about 2.7 MB, so that ~600 own layers and the base
	// layers come to the payload's 1.8 GB without rescaling much.
	realLayerSigma = 1.4
	// realBaseLayers is how many shared base layers a payload has.
	realBaseLayers = 6
	// realBaseShare is the part of the payload's bytes in base layers.
	realBaseShare = 0.10
	// realMaxOwnLayers is the most own layers a component image has (at
	// least one; three on average).
	realMaxOwnLayers = 5
	// realIndexEvery: one component in this many is an index of two
	// per-arch images (12 of 190).
	realIndexEvery = 16
	// realSignedEvery: one component in this many has a cosign .sig tag
	// (24 of 190; the release has one too).
	realSignedEvery = 8
	// minShapeComponents is the fewest components a scaled-down shape
	// keeps, so that base layers are still shared by several.
	minShapeComponents = 8
	// minShapeLayer is the smallest random layer: a layer holds at least a
	// small file.
	minShapeLayer = 1 << 10
	// maxLayerFraction caps one layer at this part of the payload, so that
	// one draw from the log-normal's tail cannot be most of it.
	maxLayerFraction = 0.125
)

// baseUse is the chance that a component starts with base layer k (base 0,
// the RHEL base, is in every component).
var baseUse = []float64{1, 0.6, 0.4, 0.3, 0.2, 0.1}

// baseWeights split the base layers' bytes: the RHEL base is the largest.
var baseWeights = []float64{0.40, 0.20, 0.15, 0.10, 0.10, 0.05}

// PayloadShape is the plan of a synthetic release shaped like a real one:
// the sizes of its random layers and how the components use them. Made by
// RealPayload; BuildRelease follows it when ReleaseOptions.Shape is set.
type PayloadShape struct {
	// BaseLayers are the sizes of the shared base layers.
	BaseLayers []int64
	// ReleaseLayer is the size of the release image's own random layer.
	ReleaseLayer int64
	// Components in image-references build order.
	Components []ComponentShape
}

// ComponentShape is one component image of a PayloadShape.
type ComponentShape struct {
	// Base are indexes into PayloadShape.BaseLayers, in layer order.
	Base []int
	// Layers are the sizes of the component's own random layers (each
	// per-arch image of an index has its own, of these sizes).
	Layers []int64
	// Arches is 1 for an image manifest, 2 for an index of two per-arch
	// images (the release's arch and another) sharing Base.
	Arches int
	// Signed gives the component a cosign sha256-<hex>.sig tag.
	Signed bool
}

// RealPayload plans a payload of the real shape at scale (1: 1.8 GB and
// 190 components). Below 1 both the bytes and the components shrink, so
// that layers keep their ~1 MB median; above 1 the components stay 190
// and every layer grows. The same scale and seed give the same plan.
func RealPayload(scale float64, seed int64) (*PayloadShape, error) {
	if !(scale > 0) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("payload scale %v: want a positive number", scale)
	}
	comps := max(minShapeComponents, int(math.Round(RealComponents*min(scale, 1))))
	return NewPayloadShape(comps, int64(RealPayloadBytes*scale), seed), nil
}

// NewPayloadShape plans components images of about total bytes of random
// layers, shaped as RealPayload describes.
func NewPayloadShape(components int, total int64, seed int64) *PayloadShape {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5ea1_5a7e))
	nBase := min(realBaseLayers, max(1, components/4))
	s := &PayloadShape{Components: make([]ComponentShape, components)}
	for i := range s.Components {
		c := &s.Components[i]
		c.Arches = 1
		if i%realIndexEvery == 3 {
			c.Arches = 2
		}
		c.Signed = i%realSignedEvery == 0
		c.Base = []int{0}
		for k := 1; k < nBase; k++ {
			// Every base layer is in at least two components, whatever draws.
			if rng.Float64() < baseUse[k] || i/2 == k-1 {
				c.Base = append(c.Base, k)
			}
		}
		for range 1 + rng.IntN(realMaxOwnLayers) {
			c.Layers = append(c.Layers, logNormalSize(rng))
		}
	}
	s.ReleaseLayer = logNormalSize(rng)

	// Base layers get their share, split by weight; own layers are scaled
	// together to the rest, each then held within its bounds.
	baseBytes := int64(float64(total) * realBaseShare)
	var weights float64
	for k := range nBase {
		weights += baseWeights[k]
	}
	for k := range nBase {
		s.BaseLayers = append(s.BaseLayers, max(minShapeLayer, int64(float64(baseBytes)*baseWeights[k]/weights)))
	}
	own := s.ReleaseLayer
	for _, c := range s.Components {
		for _, n := range c.Layers {
			own += n * int64(c.Arches)
		}
	}
	factor := float64(total-baseBytes) / float64(max(own, 1))
	maxLayer := max(minShapeLayer, int64(float64(total)*maxLayerFraction))
	resize := func(n int64) int64 { return min(maxLayer, max(minShapeLayer, int64(float64(n)*factor))) }
	s.ReleaseLayer = resize(s.ReleaseLayer)
	for i := range s.Components {
		for j, n := range s.Components[i].Layers {
			s.Components[i].Layers[j] = resize(n)
		}
	}
	return s
}

// logNormalSize draws a layer size around realMedianLayer.
func logNormalSize(rng *rand.Rand) int64 {
	return int64(realMedianLayer * math.Exp(realLayerSigma*rng.NormFloat64()))
}

// Bytes is the payload's random layer data: each base layer once, each
// component's own layers once per arch, the release's layer.
func (s *PayloadShape) Bytes() int64 {
	n := s.ReleaseLayer
	for _, b := range s.BaseLayers {
		n += b
	}
	for _, c := range s.Components {
		for _, l := range c.Layers {
			n += l * int64(c.Arches)
		}
	}
	return n
}

// OwnLayerSizes are the sizes of every own layer of every per-arch image,
// sorted: what the log-normal draws made.
func (s *PayloadShape) OwnLayerSizes() []int64 {
	var out []int64
	for _, c := range s.Components {
		for range c.Arches {
			out = append(out, c.Layers...)
		}
	}
	slices.Sort(out)
	return out
}

// Manifests is how many manifests a release built on this shape has: each
// component's (an index and its children for two arches), the release
// image's, and one per signature (the release's included).
func (s *PayloadShape) Manifests() int {
	n := 1 + 1 // the release image and its signature
	for _, c := range s.Components {
		n++
		if c.Arches > 1 {
			n += c.Arches
		}
		if c.Signed {
			n++
		}
	}
	return n
}

// ShapedRelease returns options for a single-arch, signed (GPG by the
// caller's store, cosign on some components) release built on shape.
func ShapedRelease(shape *PayloadShape) ReleaseOptions {
	return ReleaseOptions{Shape: shape, Sigstore: true}
}

// otherArch is the second arch of a two-arch component index.
func otherArch(goarch string) string {
	if goarch == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// normalizeShape checks Shape against the other options and takes from it
// the counts the rest of the builder reads.
func (o *ReleaseOptions) normalizeShape() error {
	s := o.Shape
	if s == nil {
		return nil
	}
	if o.Multi {
		return fmt.Errorf("a release shape is for a single-arch release, not Multi")
	}
	if len(s.Components) == 0 || len(s.BaseLayers) == 0 {
		return fmt.Errorf("release shape has no components or no base layers")
	}
	o.Components, o.SharedBaseLayers = len(s.Components), len(s.BaseLayers)
	for i, c := range s.Components {
		if c.Arches < 1 || c.Arches > 2 || len(c.Layers) == 0 {
			return fmt.Errorf("release shape: component %d has %d arches and %d layers; want 1 or 2 arches and a layer", i, c.Arches, len(c.Layers))
		}
		for _, k := range c.Base {
			if k < 0 || k >= len(s.BaseLayers) {
				return fmt.Errorf("release shape: component %d starts with base layer %d of %d", i, k, len(s.BaseLayers))
			}
		}
	}
	return nil
}

// baseLayerSize is the size of shared base layer n.
func (b *builder) baseLayerSize(n int) int64 {
	if s := b.opts.Shape; s != nil {
		return s.BaseLayers[n]
	}
	return b.opts.LayerSize
}

// releaseLayerSize is the size of the release image's own random layer.
func (b *builder) releaseLayerSize() int64 {
	if s := b.opts.Shape; s != nil {
		return s.ReleaseLayer
	}
	return b.opts.LayerSize
}

// componentPlan is how one component is built: an image per arch (an
// index of them when index), each on base(arch), with own layers of these
// sizes.
type componentPlan struct {
	arches []string
	index  bool
	own    []int64
	base   func(arch string) []*blob
}

// componentPlan plans component i: from the Shape when there is one, else
// every arch of the release with LayersPerImage layers on all base layers.
func (b *builder) componentPlan(st *releaseState, i int) componentPlan {
	s := b.opts.Shape
	if s == nil {
		own := make([]int64, b.opts.LayersPerImage)
		for j := range own {
			own[j] = b.opts.LayerSize
		}
		return componentPlan{arches: b.arches, index: b.opts.Multi, own: own,
			base: func(arch string) []*blob { return slices.Clone(st.base[arch]) }}
	}
	c := s.Components[i]
	arches := []string{b.arches[0]}
	if c.Arches > 1 {
		arches = append(arches, otherArch(b.arches[0]))
	}
	// Every arch of an index shares the release arch's base layers: the
	// shape is about blob sizes and sharing, not what runs where.
	base := make([]*blob, 0, len(c.Base))
	for _, k := range c.Base {
		base = append(base, st.base[b.arches[0]][k])
	}
	return componentPlan{arches: arches, index: c.Arches > 1, own: c.Layers,
		base: func(string) []*blob { return slices.Clone(base) }}
}
