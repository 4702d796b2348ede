package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/mirror/graph"
	"github.com/ferryhq/ferry/mirror/release"
)

type graphOptions struct {
	channel     string
	arch        string
	from, to    string
	acceptRisks bool
	graphURL    string
	json        bool
	net         timeoutFlags
}

func graphCommand(env *environment) *cli.Command {
	o := &graphOptions{}
	return &cli.Command{
		Name:  "graph",
		Usage: "show a channel's releases or the update path between two versions",
		Description: `Reads the OpenShift update graph of a channel from the update service (or a saved
copy) and prints either every release of the channel, oldest first, with its payload
digest and errata, or, with --from and --to, the update path with the fewest hops,
each hop with the payload digest the cluster updates to.

Among paths of equal length ferry takes the one with the fewest conditional updates,
then the one whose release just before the target is newest, then the one before it,
and so on. Conditional updates carry known risks; a path through one is taken only
with --accept-risks, and its risks are printed (name, message and link). Without it
ferry takes the best path of unconditional updates and mentions a shorter risky one.

Examples:
  ferry graph --channel stable-4.15
  ferry graph --channel stable-4.15 --from 4.14.10 --to 4.15.23 --accept-risks
  ferry graph --channel stable-4.15 --arch arm64 --from 4.15.0 --to 4.15.20 --json
  ferry graph --channel stable-4.15 --graph-url file:///media/graph-stable-4.15.json`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "channel", Usage: "update channel, e.g. stable-4.15 (required)", Destination: &o.channel},
			&cli.StringFlag{Name: "arch", Value: graph.DefaultArch, Usage: "architecture: amd64 (x86_64), arm64 (aarch64), s390x, ppc64le, multi", Destination: &o.arch},
			&cli.StringFlag{Name: "from", Usage: "current `VERSION`; with --to, print the update path", Destination: &o.from},
			&cli.StringFlag{Name: "to", Usage: "target `VERSION`; with --from, print the update path", Destination: &o.to},
			&cli.BoolFlag{Name: "accept-risks", Usage: "allow conditional updates (their risks are printed)", Destination: &o.acceptRisks},
			&cli.StringFlag{Name: "graph-url", Value: graph.DefaultURL, Usage: "update service graph `URL`, or file:///path of a saved graph document", Destination: &o.graphURL},
			&cli.BoolFlag{Name: "json", Usage: "print the releases or the path as JSON", Destination: &o.json},
		}, o.net.flags()...),
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, "no arguments (the versions go in --from and --to)"); err != nil {
				return err
			}
			return o.run(c.Context, env)
		},
	}
}

// check validates the flags; every failure is a usage error.
func (o *graphOptions) check() error {
	if o.channel == "" {
		return errors.New("--channel is required, e.g. --channel stable-4.15")
	}
	arch, err := release.GraphArch(o.arch)
	if err != nil {
		return fmt.Errorf("--arch: %w", err)
	}
	o.arch = arch
	if (o.from == "") != (o.to == "") {
		return errors.New("--from and --to go together: give both for an update path, neither for the channel's releases")
	}
	for _, v := range []struct{ flag, value string }{{"--from", o.from}, {"--to", o.to}} {
		if v.value == "" {
			continue
		}
		if err := release.ValidateVersion(v.value); err != nil {
			return fmt.Errorf("%s: %w", v.flag, err)
		}
	}
	if o.acceptRisks && o.from == "" {
		return errors.New("--accept-risks applies to an update path: give --from and --to")
	}
	return nil
}

func (o *graphOptions) run(ctx context.Context, env *environment) error {
	if err := o.check(); err != nil {
		return usageError(err)
	}
	g, err := graph.Fetch(ctx, o.net.graphOptions(env, o.graphURL, o.channel, o.arch))
	if err != nil {
		return err
	}
	if o.from == "" {
		return o.printReleases(env.stdout, g)
	}
	p, err := g.Path(o.from, o.to, o.acceptRisks)
	var noPath *graph.NoPathError
	if errors.As(err, &noPath) && noPath.RiskyAlternative != nil {
		if !o.json {
			fmt.Fprintf(env.stderr, "With --accept-risks, ferry would take this path:\n")
			printHops(env.stderr, noPath.RiskyAlternative)
			printRisks(env.stderr, noPath.RiskyAlternative)
		}
		return fmt.Errorf("%w; rerun with --accept-risks to take it", err)
	}
	if err != nil {
		return err
	}
	return o.printPath(env.stdout, g, p)
}

// jsonRelease is a release in --json output.
type jsonRelease struct {
	Version  string   `json:"version"`
	Payload  string   `json:"payload"`
	Digest   string   `json:"digest"`
	URL      string   `json:"url,omitempty"`
	Channels []string `json:"channels,omitempty"`
}

type jsonRisk struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	URL     string `json:"url"`
}

type jsonHop struct {
	From    string     `json:"from"`
	To      string     `json:"to"`
	Payload string     `json:"payload"`
	Digest  string     `json:"digest"`
	URL     string     `json:"url,omitempty"`
	Risks   []jsonRisk `json:"risks"`
}

type jsonPath struct {
	Hops  []jsonHop  `json:"hops"`
	Risks []jsonRisk `json:"risks"`
}

func toJSONRelease(n graph.Node) jsonRelease {
	return jsonRelease{Version: n.Version, Payload: n.Payload, Digest: n.Digest.String(), URL: n.URL, Channels: n.Channels}
}

func toJSONRisks(risks []graph.Risk) []jsonRisk {
	out := make([]jsonRisk, len(risks))
	for i, r := range risks {
		out[i] = jsonRisk{Name: r.Name, Message: r.Message, URL: r.URL}
	}
	return out
}

func toJSONPath(p *graph.Path) *jsonPath {
	if p == nil {
		return nil
	}
	out := &jsonPath{Hops: []jsonHop{}, Risks: toJSONRisks(p.Risks())}
	for _, h := range p.Hops {
		out.Hops = append(out.Hops, jsonHop{From: h.From.Version, To: h.To.Version, Payload: h.To.Payload,
			Digest: h.To.Digest.String(), URL: h.To.URL, Risks: toJSONRisks(h.Risks)})
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (o *graphOptions) printReleases(w io.Writer, g *graph.Graph) error {
	nodes := g.Nodes()
	if o.json {
		out := struct {
			Channel  string        `json:"channel"`
			Arch     string        `json:"arch"`
			Releases []jsonRelease `json:"releases"`
		}{Channel: g.Channel, Arch: g.Arch, Releases: []jsonRelease{}}
		for _, n := range nodes {
			out.Releases = append(out.Releases, toJSONRelease(n))
		}
		return writeJSON(w, out)
	}
	fmt.Fprintf(w, "Channel %s (%s): %d releases, %s to %s\n\n", g.Channel, g.Arch, len(nodes), nodes[0].Version, nodes[len(nodes)-1].Version)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tPAYLOAD DIGEST\tERRATA")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Version, n.Digest, orDash(n.URL))
	}
	return tw.Flush()
}

func (o *graphOptions) printPath(w io.Writer, g *graph.Graph, p *graph.Path) error {
	if o.json {
		out := struct {
			Channel          string     `json:"channel"`
			Arch             string     `json:"arch"`
			From             string     `json:"from"`
			To               string     `json:"to"`
			AcceptRisks      bool       `json:"acceptRisks"`
			Payload          string     `json:"payload"`
			Digest           string     `json:"digest"`
			Hops             []jsonHop  `json:"hops"`
			Risks            []jsonRisk `json:"risks"`
			RiskyAlternative *jsonPath  `json:"riskyAlternative,omitempty"`
		}{Channel: g.Channel, Arch: g.Arch, From: p.From.Version, To: p.To.Version, AcceptRisks: o.acceptRisks,
			Payload: p.To.Payload, Digest: p.To.Digest.String(), RiskyAlternative: toJSONPath(p.RiskyAlternative)}
		path := toJSONPath(p)
		out.Hops, out.Risks = path.Hops, path.Risks
		return writeJSON(w, out)
	}
	if len(p.Hops) == 0 {
		fmt.Fprintf(w, "%s is the target already: no update needed (payload %s)\n", p.From.Version, p.From.Payload)
		return nil
	}
	conditional := 0
	for _, h := range p.Hops {
		if h.Conditional() {
			conditional++
		}
	}
	fmt.Fprintf(w, "Update path from %s to %s in %s (%s): %s", p.From.Version, p.To.Version, g.Channel, g.Arch, plural(len(p.Hops), "update"))
	if conditional > 0 {
		fmt.Fprintf(w, ", %d conditional", conditional)
	}
	fmt.Fprint(w, "\n\n")
	printHops(w, p)
	printRisks(w, p)
	if alt := p.RiskyAlternative; alt != nil {
		var vs []string
		for _, n := range alt.Releases() {
			vs = append(vs, n.Version)
		}
		var names []string
		for _, r := range alt.Risks() {
			names = append(names, r.Name)
		}
		fmt.Fprintf(w, "\nA shorter path of %s goes through conditional updates: %s (risks: %s).\n"+
			"Rerun with --accept-risks to see its risks and take it.\n",
			plural(len(alt.Hops), "update"), strings.Join(vs, " -> "), strings.Join(names, ", "))
	}
	return nil
}

// printHops writes a path as a table, one hop per row.
func printHops(w io.Writer, p *graph.Path) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOP\tFROM\tTO\tPAYLOAD DIGEST\tRISKS")
	for i, h := range p.Hops {
		var names []string
		for _, r := range h.Risks {
			names = append(names, r.Name)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, h.From.Version, h.To.Version, h.To.Digest, orDash(strings.Join(names, ", ")))
	}
	_ = tw.Flush() // errors of w surface on the next write
}

// printRisks explains every risk of a path's conditional hops.
func printRisks(w io.Writer, p *graph.Path) {
	risks := p.Risks()
	if len(risks) == 0 {
		return
	}
	fmt.Fprintf(w, "\nKnown risks of the conditional updates (the cluster evaluates whether each applies to it):\n")
	for _, r := range risks {
		var via []string
		for _, h := range p.Hops {
			for _, hr := range h.Risks {
				if hr.Name == r.Name {
					via = append(via, h.From.Version+" -> "+h.To.Version)
				}
			}
		}
		fmt.Fprintf(w, "  %s (%s)\n", r.Name, strings.Join(via, ", "))
		for _, line := range strings.Split(strings.TrimSpace(r.Message), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
		if r.URL != "" {
			fmt.Fprintf(w, "    %s\n", r.URL)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
