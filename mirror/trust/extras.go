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

// tagRoutes are the places the additional images named by tag go to with
// their source tag, for the ImageTagMirrorSet: only a proven image holding
// that tag there serves a pull by tag. An image given another target tag,
// or carried already for a release or catalog (and so under no path of its
// own), is pulled by digest or by its new name.
func (c *checker) tagRoutes() map[string][]string {
	routes := map[string][]string{}
	for _, a := range c.idx.Additional {
		if a.Tag == "" || a.TargetTag != a.Tag || a.AlreadyCarried != "" {
			continue
		}
		img, ok := c.proven[placeKey(a.Target, a.Source, a.Digest)]
		if !ok || !slices.Contains(img.Tags, a.Tag) {
			continue
		}
		routes[a.Source] = appendNew(routes[a.Source], a.Target)
	}
	for _, targets := range routes {
		slices.Sort(targets)
	}
	return routes
}
