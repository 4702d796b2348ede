package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/graph"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
)

// graphSelection picks the releases to pack from the update graph: the
// update path between two versions (--from, --to), or every release of a
// channel in a version range (--min, --max).
type graphSelection struct {
	channel     string
	from, to    string
	min, max    string
	graphURL    string
	acceptRisks bool
}

func (s *graphSelection) flags() []cli.Flag {
	const cat = "Update graph"
	return []cli.Flag{
		&cli.StringFlag{Name: "channel", Usage: "pick the releases from this update `CHANNEL` (e.g. stable-4.15) instead of RELEASE arguments", Destination: &s.channel, Category: cat},
		&cli.StringFlag{Name: "from", Usage: "with --to: pack every release on the update path from `VERSION` (the cluster's current one, included)", Destination: &s.from, Category: cat},
		&cli.StringFlag{Name: "to", Usage: "with --from: the target `VERSION`", Destination: &s.to, Category: cat},
		&cli.StringFlag{Name: "min", Usage: "pack every release of the channel from `VERSION` on", Destination: &s.min, Category: cat},
		&cli.StringFlag{Name: "max", Usage: "pack every release of the channel up to `VERSION`", Destination: &s.max, Category: cat},
		&cli.BoolFlag{Name: "accept-risks", Usage: "let the update path take conditional updates (their risks are printed)", Destination: &s.acceptRisks, Category: cat},
		&cli.StringFlag{Name: "graph-url", Value: graph.DefaultURL, Usage: "update service graph `URL`, or file:///path of a saved graph document", Destination: &s.graphURL, Category: cat},
	}
}

// active reports whether any graph flag was given.
func (s *graphSelection) active() bool {
	return s.channel != "" || s.from != "" || s.to != "" || s.min != "" || s.max != "" || s.acceptRisks
}

func (s *graphSelection) isPath() bool { return s.from != "" || s.to != "" }

// check validates the graph flags against the number of RELEASE arguments;
// every failure is a usage error.
func (s *graphSelection) check(nargs int) error {
	if !s.active() {
		return nil
	}
	isRange := s.min != "" || s.max != ""
	switch {
	case nargs > 0:
		return errors.New("give RELEASE arguments or --channel, not both")
	case s.channel == "":
		return errors.New("--from, --to, --min and --max pick releases from a channel: give --channel too")
	case s.isPath() && isRange:
		return errors.New("--from/--to (an update path) and --min/--max (a range) exclude each other")
	case s.isPath() && (s.from == "" || s.to == ""):
		return errors.New("--from and --to go together")
	case !s.isPath() && !isRange:
		return errors.New("with --channel, give --from and --to (an update path), or --min and/or --max (a range)")
	case s.acceptRisks && !s.isPath():
		return errors.New("--accept-risks applies to an update path: give --from and --to")
	}
	for _, v := range []struct{ flag, value string }{{"--from", s.from}, {"--to", s.to}, {"--min", s.min}, {"--max", s.max}} {
		if v.value == "" {
			continue
		}
		if err := release.ValidateVersion(v.value); err != nil {
			return fmt.Errorf("%s: %w", v.flag, err)
		}
	}
	return nil
}

// graphPick is what the graph chose: the releases to pack in order, as
// refs by the graph's payload digest, and the update path's versions
// (nil for a range).
type graphPick struct {
	nodes []graph.Node
	refs  []release.Ref
	path  []string
	arch  string // release arch name: x86_64, aarch64, ..., multi
}

// pick fetches the graph within the bounds of net and chooses the
// releases. archName is --arch.
func (s *graphSelection) pick(ctx context.Context, env *environment, net *timeoutFlags, archName string) (*graphPick, error) {
	arch, err := release.NormalizeArch(archName)
	if err != nil {
		return nil, usageError(fmt.Errorf("--arch: %w", err))
	}
	graphArch, err := release.GraphArch(arch)
	if err != nil {
		return nil, usageError(fmt.Errorf("--arch: %w", err))
	}
	g, err := graph.Fetch(ctx, net.graphOptions(env, s.graphURL, s.channel, graphArch))
	if err != nil {
		return nil, err
	}
	p := &graphPick{arch: arch}
	if s.isPath() {
		path, err := s.path(env, g)
		if err != nil {
			return nil, err
		}
		p.nodes = path.Releases()
		for _, n := range p.nodes {
			p.path = append(p.path, n.Version)
		}
	} else {
		if p.nodes, err = g.Releases(s.min, s.max); err != nil {
			return nil, usageError(err)
		}
		if len(p.nodes) == 0 {
			return nil, fmt.Errorf("channel %s (%s) has no release between %s and %s", s.channel, graphArch, orAny(s.min), orAny(s.max))
		}
	}
	for _, n := range p.nodes {
		ref, err := refFromNode(n)
		if err != nil {
			return nil, err
		}
		p.refs = append(p.refs, ref)
	}
	return p, nil
}

// path finds the update path and shows its risks, as 'ferry graph' does.
func (s *graphSelection) path(env *environment, g *graph.Graph) (*graph.Path, error) {
	p, err := g.Path(s.from, s.to, s.acceptRisks)
	var noPath *graph.NoPathError
	if errors.As(err, &noPath) && noPath.RiskyAlternative != nil {
		fmt.Fprintf(env.stderr, "With --accept-risks, ferry would take this path:\n")
		printHops(env.stderr, noPath.RiskyAlternative)
		printRisks(env.stderr, noPath.RiskyAlternative)
		return nil, fmt.Errorf("%w; rerun with --accept-risks to take it", err)
	}
	if err != nil {
		return nil, err
	}
	if p.Conditional() {
		env.log.Warn("the update path takes conditional updates; the cluster will evaluate their risks")
		printRisks(env.stderr, p)
	}
	if p.RiskyAlternative != nil {
		env.log.Info("a shorter update path goes through conditional updates; --accept-risks takes it",
			"hops", len(p.RiskyAlternative.Hops))
	}
	return p, nil
}

func orAny(v string) string {
	if v == "" {
		return "any"
	}
	return v
}

// refFromNode is the release a graph node names, by its payload digest.
// Version is set so that the walk checks the release image says the same;
// Arch is left for the walk to read from the image, and checkArch compares.
func refFromNode(n graph.Node) (release.Ref, error) {
	ref, err := release.ParseRef(n.Payload, "")
	if err != nil {
		return release.Ref{}, fmt.Errorf("release %s: payload %s: %w", n.Version, n.Payload, err)
	}
	if ref.Digest != n.Digest {
		return release.Ref{}, fmt.Errorf("release %s: payload %s does not name digest %s", n.Version, n.Payload, n.Digest)
	}
	ref.Tag, ref.Version, ref.Arch = "", n.Version, ""
	return ref, nil
}

// crossCheck compares each release's digest in the graph with the digest
// the registry's release tag (<version>-<arch>) points at: they must be the
// same. A registry without that tag cannot disagree; it is said, and the
// digest from the graph is used. (The payload itself is then read by
// digest, which checks the registry's bytes against it.)
func (p *graphPick) crossCheck(ctx context.Context, env *environment, client *registry.Client) error {
	for i, n := range p.nodes {
		tagged := p.refs[i].Repository + ":" + n.Version + "-" + p.arch
		m, err := client.Resolve(ctx, tagged)
		if errors.Is(err, registry.ErrNotFound) {
			env.log.Warn("cannot cross-check the graph's digest: the registry has no release tag", "release", n.Version, "tag", tagged)
			continue
		}
		if err != nil {
			return fmt.Errorf("cross-check release %s against %s: %w", n.Version, tagged, err)
		}
		if m.Digest != n.Digest {
			return verificationError(fmt.Errorf("release %s: the update graph gives payload %s, but %s points at %s",
				n.Version, n.Digest, tagged, m.Digest))
		}
	}
	return nil
}

// checkArch makes sure every release planned is of the architecture asked
// for: the graph of one architecture may name payloads of another.
func (p *graphPick) checkArch(plan *mirror.Plan) error {
	var wrong []string
	for _, r := range plan.Releases {
		if r.Arch != p.arch {
			wrong = append(wrong, fmt.Sprintf("%s is %s", r.Version, r.Arch))
		}
	}
	if len(wrong) > 0 {
		return verificationError(fmt.Errorf("the update graph for %s names releases of another architecture: %s", p.arch, strings.Join(wrong, ", ")))
	}
	return nil
}
