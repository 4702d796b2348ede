package graph

import "slices"

// Hop is one update of a path. To.Digest is the payload the cluster updates
// to; Risks is empty for an unconditional update.
type Hop struct {
	From, To Node
	Risks    []Risk
}

// Conditional reports whether the hop is a conditional update.
func (h Hop) Conditional() bool { return len(h.Risks) > 0 }

// Path is an update path between two releases of a graph.
type Path struct {
	From, To Node
	// Hops are the updates in order; none when From is To.
	Hops []Hop
	// RiskyAlternative is set on a path chosen without accepting risks
	// when a path with fewer hops exists through conditional updates: it
	// is the path that accepting risks would choose. Nil otherwise.
	RiskyAlternative *Path
}

// Releases returns the releases the path goes through, From and To
// included, in order.
func (p *Path) Releases() []Node {
	out := []Node{p.From}
	for _, h := range p.Hops {
		out = append(out, h.To)
	}
	return out
}

// Conditional reports whether any hop is a conditional update.
func (p *Path) Conditional() bool {
	return slices.ContainsFunc(p.Hops, Hop.Conditional)
}

// Risks returns the risks of the path's conditional hops, each name once,
// in the order the hops meet them.
func (p *Path) Risks() []Risk {
	var risks []Risk
	for _, h := range p.Hops {
		for _, r := range h.Risks {
			if !slices.ContainsFunc(risks, func(have Risk) bool { return have.Name == r.Name }) {
				risks = append(risks, r)
			}
		}
	}
	return risks
}

// Path returns the update path from one release to another with the fewest
// hops. Conditional updates are used only when acceptRisks is true.
//
// Among the paths with the fewest hops, Path takes the one with the fewest
// conditional hops; among those, the one whose release just before To is
// the newest, then, among paths that share that release, the one whose
// release before it is the newest, and so on back to From. (Comparing
// backwards from To keeps the cluster on the newest releases, which carry
// the most fixes, for the longest part of the update.) The choice therefore
// depends only on the graph, never on the order of the document.
//
// Without acceptRisks, when a shorter path exists through conditional
// updates, the result's RiskyAlternative is that path; when only such paths
// exist, the error is a *NoPathError whose RiskyAlternative is set. A
// version not in the graph is an *UnknownVersionError. From equal to To is
// a path of no hops.
func (g *Graph) Path(from, to string, acceptRisks bool) (*Path, error) {
	f, err := g.lookup(from)
	if err != nil {
		return nil, err
	}
	t, err := g.lookup(to)
	if err != nil {
		return nil, err
	}
	safe := g.shortest(f, t, false)
	risky := g.shortest(f, t, true)
	if acceptRisks {
		if risky == nil {
			return nil, &NoPathError{From: from, To: to}
		}
		return risky, nil
	}
	if safe == nil {
		return nil, &NoPathError{From: from, To: to, RiskyAlternative: risky}
	}
	if risky != nil && len(risky.Hops) < len(safe.Hops) {
		safe.RiskyAlternative = risky
	}
	return safe, nil
}

func (g *Graph) lookup(version string) (int, error) {
	i, ok := g.index[version]
	if !ok {
		e := &UnknownVersionError{Version: version, Channel: g.Channel, Arch: g.Arch}
		if len(g.nodes) > 0 {
			e.Oldest, e.Newest = g.nodes[0].Version, g.nodes[len(g.nodes)-1].Version
		}
		return 0, e
	}
	return i, nil
}

// shortest is the path Path documents from node f to node t, over
// unconditional updates only unless withRisks; nil when there is none.
//
// A breadth-first search gives every node its hop count from f; on the way,
// each node of layer k gets the fewest conditional hops over the paths of k
// hops that reach it (every such path runs through layers 0..k-1 in order,
// so layer k-1 is final when layer k is computed). Walking back from t, the
// predecessor taken is the newest one of the layer before that keeps the
// conditional count optimal. Nodes are sorted by version, so the newest is
// the highest position.
func (g *Graph) shortest(f, t int, withRisks bool) *Path {
	if f == t {
		return &Path{From: g.nodes[f], To: g.nodes[t]}
	}
	dist := make([]int, len(g.nodes))
	for i := range dist {
		dist[i] = -1
	}
	risky := make([]int, len(g.nodes))
	usable := func(a arc) bool { return withRisks || a.risks == nil }
	cost := func(a arc) int {
		if a.risks != nil {
			return 1
		}
		return 0
	}
	dist[f] = 0
	for layer := []int{f}; len(layer) > 0 && dist[t] < 0; {
		var next []int
		for _, u := range layer {
			for _, a := range g.out[u] {
				if !usable(a) {
					continue
				}
				v, r := a.node, risky[u]+cost(a)
				switch {
				case dist[v] < 0:
					dist[v], risky[v] = dist[u]+1, r
					next = append(next, v)
				case dist[v] == dist[u]+1 && r < risky[v]:
					risky[v] = r
				}
			}
		}
		layer = next
	}
	if dist[t] < 0 {
		return nil
	}
	hops := make([]Hop, dist[t])
	for v := t; v != f; {
		best := -1
		var risks []Risk
		for _, a := range g.in[v] {
			u := a.node
			if usable(a) && dist[u] == dist[v]-1 && risky[u]+cost(a) == risky[v] && u > best {
				best, risks = u, a.risks
			}
		}
		hops[dist[v]-1] = Hop{From: g.nodes[best], To: g.nodes[v], Risks: risks}
		v = best
	}
	return &Path{From: g.nodes[f], To: g.nodes[t], Hops: hops}
}
