package graph

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseFixture(t *testing.T) {
	data, _ := readFixture(t)
	g := mustParse(t, data)
	ix := indexRaw(t, data)

	nodes := g.Nodes()
	if len(nodes) != 55 {
		t.Fatalf("%d nodes, want 55", len(nodes))
	}
	if nodes[0].Version != "4.14.0" || nodes[len(nodes)-1].Version != "4.15.23" {
		t.Errorf("nodes run %s .. %s, want 4.14.0 .. 4.15.23", nodes[0].Version, nodes[len(nodes)-1].Version)
	}
	for i, n := range nodes {
		if i > 0 && !olderPlain(nodes[i-1].Version, n.Version) {
			t.Errorf("nodes out of order: %s before %s", nodes[i-1].Version, n.Version)
		}
		if n.Payload != ix.payload[n.Version] || !strings.HasSuffix(n.Payload, "@"+n.Digest.String()) {
			t.Errorf("%s: payload %s digest %s, served %s", n.Version, n.Payload, n.Digest, ix.payload[n.Version])
		}
		if strings.Join(n.Channels, ",") != ix.channels[n.Version] {
			t.Errorf("%s: channels %v, served %q", n.Version, n.Channels, ix.channels[n.Version])
		}
		if !strings.HasPrefix(n.URL, "https://access.redhat.com/errata/") {
			t.Errorf("%s: errata URL %q", n.Version, n.URL)
		}
	}

	var safe, risky int
	for _, e := range g.Edges() {
		key := [2]string{e.From, e.To}
		switch {
		case e.Conditional():
			risky++
			var names []string
			for _, r := range e.Risks {
				names = append(names, r.Name)
				if r.Message == "" || r.URL != ix.riskURL[r.Name] || len(r.MatchingRules) == 0 {
					t.Errorf("%s -> %s: risk %+v incomplete", e.From, e.To, r)
				}
			}
			if want := ix.risky[key]; !sameSet(names, want) {
				t.Errorf("%s -> %s: risks %v, served %v", e.From, e.To, names, want)
			}
		default:
			safe++
			if !ix.safe[key] {
				t.Errorf("edge %s -> %s not served", e.From, e.To)
			}
		}
	}
	if safe != 358 || risky != len(ix.risky) {
		t.Errorf("%d edges and %d conditional edges, want 358 and %d", safe, risky, len(ix.risky))
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func TestParseRejects(t *testing.T) {
	good := `{"version":1,"nodes":[{"version":"4.15.0","payload":"` + testPayload("4.15.0") + `","metadata":{}},` +
		`{"version":"4.15.1","payload":"` + testPayload("4.15.1") + `","metadata":{}}],`
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not json", `nodes: []`, "invalid JSON"},
		{"trailing", good + `"edges":[]} {}`, "data after the document"},
		{"unknown top field", good + `"edges":[],"extra":1}`, `unknown field "extra"`},
		{"unknown node field", `{"version":1,"nodes":[{"version":"4.15.0","payload":"` + testPayload("4.15.0") + `","size":1}]}`, `unknown field "size"`},
		{"no version", `{"nodes":[]}`, "version: missing"},
		{"version 2", `{"version":2,"nodes":[]}`, "graph format 2"},
		{"bad node version", `{"version":1,"nodes":[{"version":"4.15","payload":"` + testPayload("4.15") + `"}]}`, "nodes[0]: version"},
		{"payload by tag", `{"version":1,"nodes":[{"version":"4.15.0","payload":"quay.io/x/y:4.15.0-x86_64"}]}`, "not a pull spec by digest"},
		{"payload bad digest", `{"version":1,"nodes":[{"version":"4.15.0","payload":"quay.io/x/y@sha256:abc"}]}`, "invalid digest"},
		{"duplicate node", `{"version":1,"nodes":[{"version":"4.15.0","payload":"` + testPayload("4.15.0") + `"},{"version":"4.15.0","payload":"` + testPayload("4.15.0") + `"}]}`, "listed twice"},
		{"edge out of range", good + `"edges":[[0,2]]}`, "edges[0]: node index 2 out of range"},
		{"negative edge", good + `"edges":[[-1,0]]}`, "out of range"},
		{"short edge", good + `"edges":[[0]]}`, "1 elements"},
		{"self edge", good + `"edges":[[1,1]]}`, "to itself"},
		{"fractional edge", good + `"edges":[[0.5,1]]}`, "invalid JSON"},
		{"conditional unknown node", good + `"edges":[],"conditionalEdges":[{"edges":[{"from":"4.15.0","to":"4.15.9"}],"risks":[{"name":"R","message":"m","url":"u","matchingRules":[]}]}]}`, `"4.15.9" is not a node`},
		{"conditional no risk", good + `"edges":[],"conditionalEdges":[{"edges":[{"from":"4.15.0","to":"4.15.1"}],"risks":[]}]}`, "at least one risk"},
		{"risk without name", good + `"edges":[],"conditionalEdges":[{"edges":[{"from":"4.15.0","to":"4.15.1"}],"risks":[{"name":" ","message":"m"}]}]}`, "name: empty"},
		{"unknown risk field", good + `"edges":[],"conditionalEdges":[{"edges":[{"from":"4.15.0","to":"4.15.1"}],"risks":[{"name":"R","severity":"high"}]}]}`, `unknown field "severity"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			var malformed *MalformedError
			if !errors.As(err, &malformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v; want a *MalformedError containing %q", err, tc.want)
			}
		})
	}
}

func TestParseMergesEdges(t *testing.T) {
	doc := graphDoc([]string{"4.15.2", "4.15.0", "4.15.1"},
		[][2]string{{"4.15.0", "4.15.1"}, {"4.15.0", "4.15.1"}},
		testCond{edges: [][2]string{{"4.15.0", "4.15.1"}, {"4.15.1", "4.15.2"}}, risks: []string{"A"}},
		testCond{edges: [][2]string{{"4.15.1", "4.15.2"}}, risks: []string{"B", "A"}})
	g := mustParse(t, doc)
	edges := g.Edges()
	if len(edges) != 2 {
		t.Fatalf("edges %+v, want two", edges)
	}
	if edges[0].From != "4.15.0" || edges[0].Conditional() {
		t.Errorf("4.15.0 -> 4.15.1 is listed unconditionally and should stay so: %+v", edges[0])
	}
	if names := riskNames(edges[1].Risks); !slices.Equal(names, []string{"A", "B"}) {
		t.Errorf("4.15.1 -> 4.15.2 risks %v, want [A B]", names)
	}
	if v := g.Nodes()[0].Version; v != "4.15.0" {
		t.Errorf("first node %s, want 4.15.0 (sorted)", v)
	}
}

func TestReleases(t *testing.T) {
	data, _ := readFixture(t)
	g := mustParse(t, data)
	got, err := g.Releases("4.14.30", "4.15.2")
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, n := range got {
		vs = append(vs, n.Version)
	}
	want := []string{"4.14.30", "4.14.31", "4.14.32", "4.14.33", "4.15.0", "4.15.2"}
	if !slices.Equal(vs, want) {
		t.Errorf("Releases(4.14.30, 4.15.2) = %v, want %v", vs, want)
	}
	if all, _ := g.Releases("", ""); len(all) != 55 {
		t.Errorf("Releases with open bounds: %d, want 55", len(all))
	}
	if tail, _ := g.Releases("4.15.22", "4.15.99"); len(tail) != 2 {
		t.Errorf("Releases(4.15.22, 4.15.99): %d, want 2", len(tail))
	}
	if _, err := g.Releases("4.15.3", "4.15.1"); err == nil {
		t.Error("inverted range accepted")
	}
	if _, err := g.Releases("4.15", ""); err == nil {
		t.Error("malformed bound accepted")
	}
}

func TestFilter(t *testing.T) {
	data, _ := readFixture(t)
	ix := indexRaw(t, data)
	g := mustParse(t, data).filter("stable-4.14", "amd64")
	var want []string
	for _, v := range ix.versions {
		if slices.Contains(strings.Split(ix.channels[v], ","), "stable-4.14") {
			want = append(want, v)
		}
	}
	var got []string
	for _, n := range g.Nodes() {
		got = append(got, n.Version)
	}
	if !sameSet(got, want) || len(got) == 55 || len(got) == 0 {
		t.Fatalf("stable-4.14 holds %v, want %v", got, want)
	}
	for _, e := range g.Edges() {
		if _, ok := g.Node(e.From); !ok {
			t.Errorf("edge from %s outside the channel", e.From)
		}
		if _, ok := g.Node(e.To); !ok {
			t.Errorf("edge to %s outside the channel", e.To)
		}
	}

	// Architecture metadata, when present, must match.
	multi := mustParse(t, []byte(`{"version":1,"nodes":[`+
		`{"version":"4.15.0","payload":"`+testPayload("a")+`","metadata":{"release.openshift.io/architecture":"multi"}},`+
		`{"version":"4.15.1","payload":"`+testPayload("b")+`","metadata":{"release.openshift.io/architecture":"arm64"}},`+
		`{"version":"4.15.2","payload":"`+testPayload("c")+`","metadata":{}}],"edges":[[0,2]]}`))
	for arch, want := range map[string]string{"multi": "4.15.0 4.15.2", "arm64": "4.15.1 4.15.2", "amd64": "4.15.2"} {
		var vs []string
		for _, n := range multi.filter("stable-4.15", arch).Nodes() {
			vs = append(vs, n.Version)
		}
		if strings.Join(vs, " ") != want {
			t.Errorf("arch %s keeps %v, want %s", arch, vs, want)
		}
	}
}
