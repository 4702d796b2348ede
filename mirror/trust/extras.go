package trust

import (
	"fmt"
	"slices"

	"github.com/ferryhq/ferry/bundle"
)

// GraphData is the update service's graph-data image apply may push and
// render an UpdateService for.
type GraphData struct {
	bundle.GraphData
	Proof Proof
}

// graphData proves the index's graph-data record. ferry built the image
// from the graph data it fetched, so no release signature can cover it:
// only the bundle signature (or AllowUnproven) does, and only with its
// image proven and tagged as recorded.
func (c *checker) graphData() {
	g := c.idx.GraphData
	if g == nil {
		return
	}
	key := imageKey(g.Source, g.Digest)
	what := fmt.Sprintf("graph-data image %s (graph data %s)", key, g.Version)
	proof, ok := c.accept(what)
	if !ok {
		c.rep.fault("%s is covered by no release signature, and no verified bundle signature covers it", what)
		c.rep.RefusedUnproven++
		return
	}
	img, ok := c.proven[placeKey(g.Target, g.Source, g.Digest)]
	switch {
	case !ok:
		c.rep.fault("%s: the image is not among the proven images going to %s", what, g.Target)
		return
	case !slices.Contains(img.Tags, g.Tag):
		c.rep.fault("%s: its tag %s is not on the image", what, g.Tag)
		return
	}
	c.rep.GraphData = &GraphData{GraphData: *g, Proof: proof}
}
