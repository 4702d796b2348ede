package graph

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestPathFixtureAllPairs checks every pair of the real snapshot, both ways
// of treating risks, against a plain breadth-first search: same
// reachability, same hop count, every hop a served edge, conditional exactly
// when served as conditional, with its payload digest, and the tie broken
// as documented (checked by enumerating every shortest path).
func TestPathFixtureAllPairs(t *testing.T) {
	data, _ := readFixture(t)
	g := mustParse(t, data)
	ix := indexRaw(t, data)
	var found, risky, alternatives int
	for _, from := range ix.versions {
		safeDist, allDist := ix.bfs(from, false), ix.bfs(from, true)
		for _, to := range ix.versions {
			for _, accept := range []bool{false, true} {
				dist := safeDist
				if accept {
					dist = allDist
				}
				p, err := g.Path(from, to, accept)
				want, reachable := dist[to]
				if !reachable {
					var noPath *NoPathError
					if !errors.As(err, &noPath) {
						t.Fatalf("%s -> %s (risks %v): %v, want a *NoPathError", from, to, accept, err)
					}
					_, riskyReachable := allDist[to]
					if !accept && riskyReachable != (noPath.RiskyAlternative != nil) {
						t.Errorf("%s -> %s: risky alternative %v, BFS over all edges reaches it: %v", from, to, noPath.RiskyAlternative != nil, riskyReachable)
					}
					if noPath.RiskyAlternative != nil && len(noPath.RiskyAlternative.Hops) != allDist[to] {
						t.Errorf("%s -> %s: risky alternative of %d hops, BFS says %d", from, to, len(noPath.RiskyAlternative.Hops), allDist[to])
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s -> %s (risks %v): %v; BFS finds %d hops", from, to, accept, err, want)
				}
				found++
				if len(p.Hops) != want {
					t.Fatalf("%s -> %s (risks %v): %d hops (%s), BFS says %d", from, to, accept, len(p.Hops), hopVersions(p), want)
				}
				checkHops(t, ix, p, accept)
				if p.Conditional() {
					risky++
				}
				if !accept && p.RiskyAlternative != nil {
					alternatives++
					if len(p.RiskyAlternative.Hops) != allDist[to] || len(p.RiskyAlternative.Hops) >= len(p.Hops) {
						t.Errorf("%s -> %s: risky alternative of %d hops, path of %d, BFS over all edges %d", from, to, len(p.RiskyAlternative.Hops), len(p.Hops), allDist[to])
					}
				}
				if best := bestByEnumeration(ix, from, to, want, accept); best != hopVersions(p) {
					t.Errorf("%s -> %s (risks %v): took %s, the documented tie-break picks %s", from, to, accept, hopVersions(p), best)
				}
			}
		}
	}
	if found == 0 || risky == 0 {
		t.Fatalf("%d paths, %d conditional: the fixture should give both", found, risky)
	}
	t.Logf("%d paths checked, %d conditional, %d with a shorter risky alternative", found, risky, alternatives)
}

// checkHops checks a path edge by edge against the served document.
func checkHops(t *testing.T, ix *rawIndex, p *Path, accept bool) {
	t.Helper()
	prev := p.From.Version
	for i, h := range p.Hops {
		key := [2]string{h.From.Version, h.To.Version}
		if h.From.Version != prev {
			t.Fatalf("%s: hop %d starts at %s, not at %s", hopVersions(p), i, h.From.Version, prev)
		}
		prev = h.To.Version
		if !strings.HasSuffix(ix.payload[h.To.Version], "@"+h.To.Digest.String()) {
			t.Errorf("hop to %s: digest %s, served payload %s", h.To.Version, h.To.Digest, ix.payload[h.To.Version])
		}
		switch {
		case ix.safe[key]:
			if h.Conditional() {
				t.Errorf("hop %s -> %s is served unconditionally but carries risks", key[0], key[1])
			}
		case ix.risky[key] != nil:
			if !accept {
				t.Errorf("hop %s -> %s is conditional and risks were not accepted", key[0], key[1])
			}
			if !sameSet(riskNames(h.Risks), ix.risky[key]) {
				t.Errorf("hop %s -> %s: risks %v, served %v", key[0], key[1], riskNames(h.Risks), ix.risky[key])
			}
		default:
			t.Errorf("hop %s -> %s is not an edge of the graph", key[0], key[1])
		}
	}
	if prev != p.To.Version {
		t.Errorf("%s ends at %s, not %s", hopVersions(p), prev, p.To.Version)
	}
}

// bestByEnumeration lists every path of exactly hops hops and returns the
// one the documented rule picks: fewest conditional hops, then the newest
// release before the target, then the one before it, and so on.
func bestByEnumeration(ix *rawIndex, from, to string, hops int, accept bool) string {
	type cand struct {
		versions []string
		risky    int
	}
	var best *cand
	better := func(a, b *cand) bool {
		if a.risky != b.risky {
			return a.risky < b.risky
		}
		for i := len(a.versions) - 2; i > 0; i-- {
			if a.versions[i] != b.versions[i] {
				return olderPlain(b.versions[i], a.versions[i])
			}
		}
		return false
	}
	var walk func(path []string, risky int)
	walk = func(path []string, risky int) {
		last := path[len(path)-1]
		if len(path)-1 == hops {
			if last == to {
				c := &cand{versions: slices.Clone(path), risky: risky}
				if best == nil || better(c, best) {
					best = c
				}
			}
			return
		}
		for _, next := range ix.succ[last] {
			key := [2]string{last, next}
			switch {
			case ix.safe[key]:
				walk(append(path, next), risky)
			case accept && ix.risky[key] != nil:
				walk(append(path, next), risky+1)
			}
		}
	}
	walk([]string{from}, 0)
	if best == nil {
		return ""
	}
	return strings.Join(best.versions, " -> ")
}

func TestPathFixtureRisks(t *testing.T) {
	data, _ := readFixture(t)
	g := mustParse(t, data)

	// 4.14.10 reaches 4.15.23 only through conditional updates.
	_, err := g.Path("4.14.10", "4.15.23", false)
	var noPath *NoPathError
	if !errors.As(err, &noPath) || noPath.RiskyAlternative == nil {
		t.Fatalf("without accepting risks: %v, want a *NoPathError with a risky alternative", err)
	}
	if !strings.Contains(err.Error(), "through conditional updates") {
		t.Errorf("error does not point at the risky path: %v", err)
	}
	p, err := g.Path("4.14.10", "4.15.23", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hops) != 2 || !p.Conditional() || len(p.Risks()) == 0 {
		t.Fatalf("with risks accepted: %s, risks %v; want 2 hops through a conditional update", hopVersions(p), riskNames(p.Risks()))
	}
	if hopVersions(p) != hopVersions(noPath.RiskyAlternative) {
		t.Errorf("risky alternative %s differs from the path taken with risks accepted %s", hopVersions(noPath.RiskyAlternative), hopVersions(p))
	}

	// A conditional hop carries the served risks, name, message and URL.
	p, err = g.Path("4.14.8", "4.14.14", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hops) != 1 {
		t.Fatalf("4.14.8 -> 4.14.14: %s, want one hop", hopVersions(p))
	}
	risks := p.Hops[0].Risks
	if names := riskNames(risks); !sameSet(names, []string{"CephCapDropPanic", "HighNodeStatusReportFrequency"}) {
		t.Fatalf("risks %v, want CephCapDropPanic and HighNodeStatusReportFrequency", names)
	}
	for _, r := range risks {
		if r.Name == "HighNodeStatusReportFrequency" &&
			(r.URL != "https://issues.redhat.com/browse/MCO-1094" || !strings.Contains(r.Message, "nodeStatusReportFrequency")) {
			t.Errorf("risk %+v lost its URL or message", r)
		}
	}

	// Unconditional hops are taken without risks either way.
	for _, accept := range []bool{false, true} {
		p, err := g.Path("4.14.10", "4.14.33", accept)
		if err != nil || len(p.Hops) != 1 || p.Conditional() {
			t.Errorf("4.14.10 -> 4.14.33 (risks %v): %v %v, want one unconditional hop", accept, p, err)
		}
	}
}

func TestPathAcceptRisksShortens(t *testing.T) {
	g := mustParse(t, graphDoc([]string{"4.15.0", "4.15.1", "4.15.2", "4.15.3"},
		[][2]string{{"4.15.0", "4.15.1"}, {"4.15.1", "4.15.2"}, {"4.15.2", "4.15.3"}},
		testCond{edges: [][2]string{{"4.15.0", "4.15.3"}}, risks: []string{"EtcdSlow"}}))
	safe, err := g.Path("4.15.0", "4.15.3", false)
	if err != nil {
		t.Fatal(err)
	}
	if hopVersions(safe) != "4.15.0 -> 4.15.1 -> 4.15.2 -> 4.15.3" || safe.Conditional() {
		t.Errorf("without risks: %s", hopVersions(safe))
	}
	alt := safe.RiskyAlternative
	if alt == nil || hopVersions(alt) != "4.15.0 -> 4.15.3" || riskNames(alt.Risks())[0] != "EtcdSlow" {
		t.Fatalf("risky alternative %+v, want the direct conditional update", alt)
	}
	risky, err := g.Path("4.15.0", "4.15.3", true)
	if err != nil {
		t.Fatal(err)
	}
	if hopVersions(risky) != "4.15.0 -> 4.15.3" || !risky.Hops[0].Conditional() || risky.RiskyAlternative != nil {
		t.Errorf("with risks: %s", hopVersions(risky))
	}
	r := risky.Hops[0].Risks[0]
	if r.Name != "EtcdSlow" || r.Message != "EtcdSlow may hurt" || r.URL != "https://issues.example/EtcdSlow" {
		t.Errorf("risk %+v", r)
	}
}

func TestPathTieBreak(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nodes  []string
		edges  [][2]string
		conds  []testCond
		accept bool
		want   string
	}{{
		name:  "newest intermediate",
		nodes: []string{"4.15.0", "4.15.1", "4.15.2", "4.15.9"},
		edges: [][2]string{{"4.15.0", "4.15.2"}, {"4.15.0", "4.15.1"}, {"4.15.1", "4.15.9"}, {"4.15.2", "4.15.9"}},
		want:  "4.15.0 -> 4.15.2 -> 4.15.9",
	}, {
		name:  "compared from the target backwards",
		nodes: []string{"4.15.0", "4.15.1", "4.15.2", "4.15.3", "4.15.4", "4.15.9"},
		edges: [][2]string{{"4.15.0", "4.15.2"}, {"4.15.2", "4.15.3"}, {"4.15.3", "4.15.9"},
			{"4.15.0", "4.15.1"}, {"4.15.1", "4.15.4"}, {"4.15.4", "4.15.9"}},
		want: "4.15.0 -> 4.15.1 -> 4.15.4 -> 4.15.9",
	}, {
		name:  "pre-releases are older",
		nodes: []string{"4.15.0", "4.16.0-rc.3", "4.16.0-rc.10", "4.16.1"},
		edges: [][2]string{{"4.15.0", "4.16.0-rc.3"}, {"4.15.0", "4.16.0-rc.10"}, {"4.16.0-rc.3", "4.16.1"}, {"4.16.0-rc.10", "4.16.1"}},
		want:  "4.15.0 -> 4.16.0-rc.10 -> 4.16.1",
	}, {
		name:   "fewer conditional hops before newer releases",
		nodes:  []string{"4.15.0", "4.15.1", "4.15.2", "4.15.9"},
		edges:  [][2]string{{"4.15.0", "4.15.1"}, {"4.15.1", "4.15.9"}, {"4.15.2", "4.15.9"}},
		conds:  []testCond{{edges: [][2]string{{"4.15.0", "4.15.2"}}, risks: []string{"R"}}},
		accept: true,
		want:   "4.15.0 -> 4.15.1 -> 4.15.9",
	}, {
		name:  "same version",
		nodes: []string{"4.15.0", "4.15.1"},
		edges: [][2]string{{"4.15.0", "4.15.1"}},
		want:  "4.15.0",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			// Node order in the document must not matter.
			for _, nodes := range [][]string{tc.nodes, reversed(tc.nodes)} {
				g := mustParse(t, graphDoc(nodes, tc.edges, tc.conds...))
				p, err := g.Path(tc.nodes[0], tc.want[strings.LastIndex(tc.want, " ")+1:], tc.accept)
				if err != nil {
					t.Fatal(err)
				}
				if got := hopVersions(p); got != tc.want {
					t.Errorf("path %s, want %s", got, tc.want)
				}
			}
		})
	}
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func TestPathErrors(t *testing.T) {
	data, _ := readFixture(t)
	g := mustParse(t, data)
	_, err := g.Path("4.14.99", "4.15.23", true)
	var unknown *UnknownVersionError
	if !errors.As(err, &unknown) || unknown.Version != "4.14.99" || !strings.Contains(err.Error(), "4.14.0 to 4.15.23") {
		t.Errorf("unknown from: %v", err)
	}
	if _, err := g.Path("4.15.0", "5.0.0", true); !errors.As(err, &unknown) || unknown.Version != "5.0.0" {
		t.Errorf("unknown to: %v", err)
	}
	_, err = g.Path("4.15.23", "4.14.0", true)
	var noPath *NoPathError
	if !errors.As(err, &noPath) || !strings.Contains(err.Error(), "only go to newer releases") {
		t.Errorf("downgrade: %v", err)
	}
}
