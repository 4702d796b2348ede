package graph

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror/release"
)

// Node metadata keys the update service sets (SPEC §6).
const (
	// MetadataChannels lists the channels a release is in, comma-separated.
	MetadataChannels = "io.openshift.upgrades.graph.release.channels"
	// MetadataURL is the release's errata page.
	MetadataURL = "url"
	// MetadataArch is the release's architecture; the API sets it on
	// multi-architecture releases and leaves it out for single-arch ones.
	MetadataArch = "release.openshift.io/architecture"
)

// graphFormatVersion is the only graph document version the API serves.
const graphFormatVersion = 1

// Node is one release of the graph. Its slices and map are shared with the
// Graph: treat them as read-only.
type Node struct {
	// Version is the release version, e.g. 4.15.0.
	Version string
	// Payload is the release image's pull spec by digest, as served.
	Payload string
	// Digest is the payload's digest.
	Digest digest.Digest
	// Channels are the channels the release is in, from its metadata;
	// nil when the metadata does not say.
	Channels []string
	// URL is the errata page; empty when the metadata has none.
	URL string
	// Metadata is the node's metadata as served.
	Metadata map[string]string
}

// Risk is a known issue that makes an update conditional.
type Risk struct {
	Name    string
	Message string
	URL     string
	// MatchingRules are the rules the cluster evaluates to decide whether
	// the risk applies to it, as served ({"type": "Always"}, {"type":
	// "PromQL", "promql": {...}}). ferry does not evaluate them: it has
	// no cluster to ask, so every risk is taken to apply.
	MatchingRules []json.RawMessage
}

// Edge is an update from one release to another. An edge with risks is a
// conditional update: the cluster only takes it when the user accepts them.
type Edge struct {
	From, To string
	Risks    []Risk
}

// Conditional reports whether the update carries risks.
func (e Edge) Conditional() bool { return len(e.Risks) > 0 }

// Graph is an update graph: releases and the updates between them. It is
// immutable; its methods are safe for concurrent use.
type Graph struct {
	// Channel and Arch are what the graph was fetched for (Arch as the
	// API names it, e.g. amd64); both are empty for a graph from Parse.
	Channel string
	Arch    string

	nodes []Node         // ascending by version precedence
	index map[string]int // version -> position in nodes
	out   [][]arc        // by node position, ascending by target
	in    [][]arc        // by node position, ascending by source
}

// arc is an edge by node position; risks is nil for an unconditional one.
type arc struct {
	node  int
	risks []Risk
}

// wire types: exactly the documented fields (SPEC §6). Decoding refuses any
// other field, at every level: the real snapshot in shared/fixtures has none,
// and a field ferry does not know might change what an edge means. Node
// metadata is a free-form string map and matching rules are kept as raw
// JSON, because the service adds keys and rule types there.
type wireGraph struct {
	Version          *int              `json:"version"`
	Nodes            []wireNode        `json:"nodes"`
	Edges            [][]int           `json:"edges"`
	ConditionalEdges []wireConditional `json:"conditionalEdges"`
}

type wireNode struct {
	Version  string            `json:"version"`
	Payload  string            `json:"payload"`
	Metadata map[string]string `json:"metadata"`
}

type wireConditional struct {
	Edges []wireEdge `json:"edges"`
	Risks []wireRisk `json:"risks"`
}

type wireEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type wireRisk struct {
	URL           string            `json:"url"`
	Name          string            `json:"name"`
	Message       string            `json:"message"`
	MatchingRules []json.RawMessage `json:"matchingRules"`
}

// Parse reads a graph document as the API serves it (SPEC §6) and checks
// it: document version 1; no field beyond the documented ones; every node
// version a valid release version, each once; every payload a pull spec by
// sha256 digest; every edge index in range; every conditional edge between
// two nodes, with at least one named risk; no update from a release to
// itself. A failure is a *MalformedError.
//
// Duplicate edges are merged. A pair listed both as an edge and as a
// conditional edge is unconditional (the service lists a pair in one or the
// other). A conditional pair listed in several groups carries the risks of
// all of them, each name once.
func Parse(data []byte) (*Graph, error) {
	var w wireGraph
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, &MalformedError{Err: fmt.Errorf("invalid JSON: %w", err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &MalformedError{Err: errors.New("invalid JSON: data after the document")}
	}
	if w.Version == nil {
		return nil, &MalformedError{Field: "version", Err: errors.New("missing")}
	}
	if *w.Version != graphFormatVersion {
		return nil, &MalformedError{Field: "version", Err: fmt.Errorf("graph format %d, want %d", *w.Version, graphFormatVersion)}
	}

	nodes := make([]Node, len(w.Nodes))
	seen := make(map[string]bool, len(w.Nodes))
	for i, wn := range w.Nodes {
		n, err := parseNode(wn)
		if err != nil {
			return nil, &MalformedError{Field: fmt.Sprintf("nodes[%d]", i), Err: err}
		}
		if seen[n.Version] {
			return nil, &MalformedError{Field: fmt.Sprintf("nodes[%d]", i), Err: fmt.Errorf("version %s listed twice", n.Version)}
		}
		seen[n.Version] = true
		nodes[i] = n
	}

	var edges []Edge
	for i, e := range w.Edges {
		field := fmt.Sprintf("edges[%d]", i)
		if len(e) != 2 {
			return nil, &MalformedError{Field: field, Err: fmt.Errorf("%d elements, want [from, to]", len(e))}
		}
		for _, x := range e {
			if x < 0 || x >= len(nodes) {
				return nil, &MalformedError{Field: field, Err: fmt.Errorf("node index %d out of range [0, %d)", x, len(nodes))}
			}
		}
		if e[0] == e[1] {
			return nil, &MalformedError{Field: field, Err: fmt.Errorf("update from %s to itself", nodes[e[0]].Version)}
		}
		edges = append(edges, Edge{From: nodes[e[0]].Version, To: nodes[e[1]].Version})
	}
	for i, c := range w.ConditionalEdges {
		field := fmt.Sprintf("conditionalEdges[%d]", i)
		if len(c.Risks) == 0 {
			return nil, &MalformedError{Field: field + ".risks", Err: errors.New("a conditional update needs at least one risk")}
		}
		risks := make([]Risk, len(c.Risks))
		for j, r := range c.Risks {
			if strings.TrimSpace(r.Name) == "" {
				return nil, &MalformedError{Field: fmt.Sprintf("%s.risks[%d].name", field, j), Err: errors.New("empty")}
			}
			risks[j] = Risk{Name: r.Name, Message: r.Message, URL: r.URL, MatchingRules: r.MatchingRules}
		}
		for j, e := range c.Edges {
			ef := fmt.Sprintf("%s.edges[%d]", field, j)
			for _, v := range []string{e.From, e.To} {
				if !seen[v] {
					return nil, &MalformedError{Field: ef, Err: fmt.Errorf("version %q is not a node", v)}
				}
			}
			if e.From == e.To {
				return nil, &MalformedError{Field: ef, Err: fmt.Errorf("update from %s to itself", e.From)}
			}
			edges = append(edges, Edge{From: e.From, To: e.To, Risks: risks})
		}
	}
	return newGraph(nodes, edges), nil
}

func parseNode(wn wireNode) (Node, error) {
	if err := release.ValidateVersion(wn.Version); err != nil {
		return Node{}, fmt.Errorf("version: %w", err)
	}
	ref, err := release.ParseRef(wn.Payload, "")
	if err != nil {
		return Node{}, fmt.Errorf("payload of %s: %w", wn.Version, err)
	}
	if ref.Digest == "" {
		return Node{}, fmt.Errorf("payload of %s: %q is not a pull spec by digest", wn.Version, wn.Payload)
	}
	n := Node{Version: wn.Version, Payload: wn.Payload, Digest: ref.Digest, Metadata: wn.Metadata, URL: wn.Metadata[MetadataURL]}
	if list, ok := wn.Metadata[MetadataChannels]; ok {
		n.Channels = []string{}
		for _, c := range strings.Split(list, ",") {
			if c = strings.TrimSpace(c); c != "" {
				n.Channels = append(n.Channels, c)
			}
		}
	}
	return n, nil
}

// newGraph builds the graph's indexes. Every edge must name two of nodes.
func newGraph(nodes []Node, edges []Edge) *Graph {
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b Node) int { return release.CompareVersions(a.Version, b.Version) })
	g := &Graph{
		nodes: nodes,
		index: make(map[string]int, len(nodes)),
		out:   make([][]arc, len(nodes)),
		in:    make([][]arc, len(nodes)),
	}
	for i, n := range nodes {
		g.index[n.Version] = i
	}
	type pair struct{ from, to int }
	merged := map[pair][]Risk{}
	var order []pair
	for _, e := range edges {
		p := pair{g.index[e.From], g.index[e.To]}
		risks, known := merged[p]
		if !known {
			order = append(order, p)
		}
		if !e.Conditional() || (known && risks == nil) {
			merged[p] = nil // unconditional wins
			continue
		}
		for _, r := range e.Risks {
			if !slices.ContainsFunc(risks, func(have Risk) bool { return have.Name == r.Name }) {
				risks = append(risks, r)
			}
		}
		merged[p] = risks
	}
	for _, p := range order {
		risks := merged[p]
		g.out[p.from] = append(g.out[p.from], arc{node: p.to, risks: risks})
		g.in[p.to] = append(g.in[p.to], arc{node: p.from, risks: risks})
	}
	for i := range nodes {
		slices.SortFunc(g.out[i], func(a, b arc) int { return cmp.Compare(a.node, b.node) })
		slices.SortFunc(g.in[i], func(a, b arc) int { return cmp.Compare(a.node, b.node) })
	}
	return g
}

// Nodes returns every release of the graph, oldest first (by semantic
// version precedence).
func (g *Graph) Nodes() []Node { return slices.Clone(g.nodes) }

// Node returns the release with the given version.
func (g *Graph) Node(version string) (Node, bool) {
	i, ok := g.index[version]
	if !ok {
		return Node{}, false
	}
	return g.nodes[i], true
}

// Edges returns every update of the graph, unconditional and conditional,
// ordered by source then target version.
func (g *Graph) Edges() []Edge {
	var edges []Edge
	for from, arcs := range g.out {
		for _, a := range arcs {
			edges = append(edges, Edge{From: g.nodes[from].Version, To: g.nodes[a.node].Version, Risks: a.risks})
		}
	}
	return edges
}

// Releases returns the releases whose version v satisfies
// oldest <= v <= newest by semantic version precedence, oldest first. An
// empty bound is open. The bounds need not be releases of the graph; a
// bound that is not a valid version, or oldest newer than newest, is an
// error.
func (g *Graph) Releases(oldest, newest string) ([]Node, error) {
	for _, b := range []string{oldest, newest} {
		if b == "" {
			continue
		}
		if err := release.ValidateVersion(b); err != nil {
			return nil, err
		}
	}
	if oldest != "" && newest != "" && release.CompareVersions(oldest, newest) > 0 {
		return nil, fmt.Errorf("empty version range: %s is newer than %s", oldest, newest)
	}
	var out []Node
	for _, n := range g.nodes {
		if (oldest == "" || release.CompareVersions(n.Version, oldest) >= 0) && (newest == "" || release.CompareVersions(n.Version, newest) <= 0) {
			out = append(out, n)
		}
	}
	return out, nil
}

// filter returns the subgraph of the releases in channel (by their channels
// metadata) and of the graph architecture arch (by their architecture
// metadata), with the updates between them. A node without channels
// metadata is kept, as is one without architecture metadata: the API leaves
// the architecture out on single-architecture releases.
func (g *Graph) filter(channel, arch string) *Graph {
	var nodes []Node
	for _, n := range g.nodes {
		if n.Channels != nil && !slices.Contains(n.Channels, channel) {
			continue
		}
		if a, ok := n.Metadata[MetadataArch]; ok {
			if ga, err := release.GraphArch(a); err != nil || ga != arch {
				continue
			}
		}
		nodes = append(nodes, n)
	}
	keep := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		keep[n.Version] = true
	}
	var edges []Edge
	for _, e := range g.Edges() {
		if keep[e.From] && keep[e.To] {
			edges = append(edges, e)
		}
	}
	f := newGraph(nodes, edges)
	f.Channel, f.Arch = channel, arch
	return f
}
