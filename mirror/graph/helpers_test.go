package graph

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixturePath is the real graph snapshot in the project's shared fixtures,
// which CI places beside the checkout.
const fixturePath = "../../../shared/fixtures/graph/graph-stable-4.15.json"

// readFixture returns the real snapshot's bytes and its absolute path.
func readFixture(t testing.TB) ([]byte, string) {
	t.Helper()
	abs, err := filepath.Abs(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		t.Fatalf("fixture %s is missing (shared/ must sit beside the checkout): %v", abs, err)
	}
	return data, abs
}

// rawGraph is the snapshot as the test reads it, independently of Parse.
type rawGraph struct {
	Nodes []struct {
		Version  string            `json:"version"`
		Payload  string            `json:"payload"`
		Metadata map[string]string `json:"metadata"`
	} `json:"nodes"`
	Edges            [][2]int `json:"edges"`
	ConditionalEdges []struct {
		Edges []struct{ From, To string } `json:"edges"`
		Risks []struct{ Name, Message, URL string }
	} `json:"conditionalEdges"`
}

// rawIndex is rawGraph turned into what the checks need.
type rawIndex struct {
	versions []string
	payload  map[string]string
	channels map[string]string
	safe     map[[2]string]bool
	risky    map[[2]string][]string // risk names
	riskURL  map[string]string
	succ     map[string][]string // every edge's target by source
}

func indexRaw(t testing.TB, data []byte) *rawIndex {
	t.Helper()
	var g rawGraph
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	ix := &rawIndex{payload: map[string]string{}, channels: map[string]string{}, safe: map[[2]string]bool{},
		risky: map[[2]string][]string{}, riskURL: map[string]string{}, succ: map[string][]string{}}
	for _, n := range g.Nodes {
		ix.versions = append(ix.versions, n.Version)
		ix.payload[n.Version] = n.Payload
		ix.channels[n.Version] = n.Metadata["io.openshift.upgrades.graph.release.channels"]
	}
	for _, e := range g.Edges {
		ix.safe[[2]string{g.Nodes[e[0]].Version, g.Nodes[e[1]].Version}] = true
	}
	for _, c := range g.ConditionalEdges {
		for _, e := range c.Edges {
			for _, r := range c.Risks {
				ix.risky[[2]string{e.From, e.To}] = append(ix.risky[[2]string{e.From, e.To}], r.Name)
				ix.riskURL[r.Name] = r.URL
			}
		}
	}
	for e := range ix.safe {
		ix.succ[e[0]] = append(ix.succ[e[0]], e[1])
	}
	for e := range ix.risky {
		ix.succ[e[0]] = append(ix.succ[e[0]], e[1])
	}
	return ix
}

// bfs is a plain breadth-first search: hop counts from src over the safe
// edges, and the risky ones too when withRisks.
func (ix *rawIndex) bfs(src string, withRisks bool) map[string]int {
	adj := map[string][]string{}
	for e := range ix.safe {
		adj[e[0]] = append(adj[e[0]], e[1])
	}
	if withRisks {
		for e := range ix.risky {
			adj[e[0]] = append(adj[e[0]], e[1])
		}
	}
	dist := map[string]int{src: 0}
	queue := []string{src}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, v := range adj[u] {
			if _, ok := dist[v]; !ok {
				dist[v] = dist[u] + 1
				queue = append(queue, v)
			}
		}
	}
	return dist
}

// olderPlain orders plain x.y.z versions (all the snapshot has).
func olderPlain(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range 3 {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return false
}

// testPayload is a made-up digest pull spec for a hand-made node.
func testPayload(version string) string {
	sum := sha256.Sum256([]byte(version))
	return "quay.io/openshift-release-dev/ocp-release@sha256:" + hex.EncodeToString(sum[:])
}

// testCond is a hand-made conditional-edge group.
type testCond struct {
	edges [][2]string
	risks []string
}

// graphDoc writes a small graph document: nodes by version (in the given
// order), unconditional edges by version, and conditional groups.
func graphDoc(versions []string, edges [][2]string, conds ...testCond) []byte {
	type node struct {
		Version  string            `json:"version"`
		Payload  string            `json:"payload"`
		Metadata map[string]string `json:"metadata"`
	}
	type risk struct {
		URL           string           `json:"url"`
		Name          string           `json:"name"`
		Message       string           `json:"message"`
		MatchingRules []map[string]any `json:"matchingRules"`
	}
	type edge struct {
		From string `json:"from"`
		To   string `json:"to"`
	}
	type cond struct {
		Edges []edge `json:"edges"`
		Risks []risk `json:"risks"`
	}
	doc := struct {
		Version          int      `json:"version"`
		Nodes            []node   `json:"nodes"`
		Edges            [][2]int `json:"edges"`
		ConditionalEdges []cond   `json:"conditionalEdges"`
	}{Version: 1, Nodes: []node{}, Edges: [][2]int{}, ConditionalEdges: []cond{}}
	pos := map[string]int{}
	for i, v := range versions {
		pos[v] = i
		doc.Nodes = append(doc.Nodes, node{Version: v, Payload: testPayload(v), Metadata: map[string]string{
			MetadataChannels: "stable-4.15", MetadataURL: "https://access.redhat.com/errata/" + v}})
	}
	for _, e := range edges {
		doc.Edges = append(doc.Edges, [2]int{pos[e[0]], pos[e[1]]})
	}
	for _, c := range conds {
		var gc cond
		for _, e := range c.edges {
			gc.Edges = append(gc.Edges, edge{e[0], e[1]})
		}
		for _, r := range c.risks {
			gc.Risks = append(gc.Risks, risk{URL: "https://issues.example/" + r, Name: r, Message: r + " may hurt",
				MatchingRules: []map[string]any{{"type": "Always"}}})
		}
		doc.ConditionalEdges = append(doc.ConditionalEdges, gc)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return data
}

func mustParse(t testing.TB, data []byte) *Graph {
	t.Helper()
	g, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// hopVersions renders a path as "a -> b -> c".
func hopVersions(p *Path) string {
	var vs []string
	for _, n := range p.Releases() {
		vs = append(vs, n.Version)
	}
	return strings.Join(vs, " -> ")
}
