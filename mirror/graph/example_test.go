package graph_test

import (
	"errors"
	"fmt"

	"github.com/ferryhq/ferry/mirror/graph"
)

// A graph where 4.15.0 can go to 4.15.3 directly only by accepting a
// known risk.
const example = `{"version": 1,
 "nodes": [
  {"version": "4.15.0", "payload": "quay.io/openshift-release-dev/ocp-release@sha256:0000000000000000000000000000000000000000000000000000000000000000", "metadata": {}},
  {"version": "4.15.2", "payload": "quay.io/openshift-release-dev/ocp-release@sha256:2222222222222222222222222222222222222222222222222222222222222222", "metadata": {}},
  {"version": "4.15.3", "payload": "quay.io/openshift-release-dev/ocp-release@sha256:3333333333333333333333333333333333333333333333333333333333333333", "metadata": {}}],
 "edges": [[0, 1], [1, 2]],
 "conditionalEdges": [{"edges": [{"from": "4.15.0", "to": "4.15.3"}],
  "risks": [{"name": "EtcdSlow", "message": "etcd may be slow", "url": "https://issues.example/1", "matchingRules": [{"type": "Always"}]}]}]}`

// Path takes unconditional updates unless risks are accepted, and says
// when a shorter path through a conditional update was passed over.
func ExampleGraph_Path() {
	g, err := graph.Parse([]byte(example))
	if err != nil {
		panic(err)
	}
	p, err := g.Path("4.15.0", "4.15.3", false)
	if err != nil {
		panic(err)
	}
	for _, h := range p.Hops {
		fmt.Println(h.From.Version, "->", h.To.Version, h.To.Digest.Encoded()[:4])
	}
	if alt := p.RiskyAlternative; alt != nil {
		fmt.Printf("shorter with risks: %d hop, %s\n", len(alt.Hops), alt.Risks()[0].Name)
	}

	p, _ = g.Path("4.15.0", "4.15.3", true)
	fmt.Println(p.Hops[0].From.Version, "->", p.Hops[0].To.Version, "risk:", p.Hops[0].Risks[0].Message)

	_, err = g.Path("4.15.3", "4.15.0", true)
	var noPath *graph.NoPathError
	fmt.Println(errors.As(err, &noPath), err)
	// Output:
	// 4.15.0 -> 4.15.2 2222
	// 4.15.2 -> 4.15.3 3333
	// shorter with risks: 1 hop, EtcdSlow
	// 4.15.0 -> 4.15.3 risk: etcd may be slow
	// true no update path from 4.15.3 to 4.15.0: updates only go to newer releases
}

// Releases lists a version range, oldest first.
func ExampleGraph_Releases() {
	g, err := graph.Parse([]byte(example))
	if err != nil {
		panic(err)
	}
	nodes, err := g.Releases("4.15.1", "")
	if err != nil {
		panic(err)
	}
	for _, n := range nodes {
		fmt.Println(n.Version, n.Payload[len(n.Payload)-8:])
	}
	// Output:
	// 4.15.2 22222222
	// 4.15.3 33333333
}
