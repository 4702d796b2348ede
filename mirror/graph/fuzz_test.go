package graph

import (
	"testing"

	"github.com/ferryhq/ferry/mirror/release"
)

// FuzzParseGraph checks that whatever Parse accepts keeps its promises,
// and that paths over it are well-formed. The committed corpus in
// testdata/fuzz/FuzzParseGraph holds small hand-made graphs.
func FuzzParseGraph(f *testing.F) {
	f.Add(graphDoc([]string{"4.15.0", "4.15.1", "4.15.2"},
		[][2]string{{"4.15.0", "4.15.1"}, {"4.15.1", "4.15.2"}},
		testCond{edges: [][2]string{{"4.15.0", "4.15.2"}}, risks: []string{"R"}}))
	f.Add([]byte(`{"version":1,"nodes":[],"edges":[],"conditionalEdges":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			return
		}
		nodes := g.Nodes()
		for i, n := range nodes {
			if release.ValidateVersion(n.Version) != nil || n.Digest.Validate() != nil {
				t.Fatalf("accepted node %+v", n)
			}
			if i > 0 && release.CompareVersions(nodes[i-1].Version, n.Version) >= 0 {
				t.Fatalf("nodes out of order: %s, %s", nodes[i-1].Version, n.Version)
			}
		}
		for _, e := range g.Edges() {
			if _, ok := g.Node(e.From); !ok || e.From == e.To {
				t.Fatalf("bad edge %+v", e)
			}
			if _, ok := g.Node(e.To); !ok {
				t.Fatalf("bad edge %+v", e)
			}
		}
		if len(nodes) == 0 {
			return
		}
		for _, accept := range []bool{false, true} {
			p, err := g.Path(nodes[0].Version, nodes[len(nodes)-1].Version, accept)
			if err != nil {
				continue
			}
			at := p.From.Version
			for _, h := range p.Hops {
				if h.From.Version != at || (h.Conditional() && !accept) {
					t.Fatalf("bad hop %+v in a path from %s (risks %v)", h, p.From.Version, accept)
				}
				at = h.To.Version
			}
			if at != p.To.Version {
				t.Fatalf("path ends at %s, not %s", at, p.To.Version)
			}
		}
	})
}
