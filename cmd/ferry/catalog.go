package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"go.podman.io/image/v5/docker/reference"

	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/registry"
)

type catalogListOptions struct {
	ref      string
	pkg      string
	json     bool
	registry registryFlags
}

func catalogCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "catalog",
		Usage: "look into operator catalogs (OLM file-based catalogs)",
		Description: `Operator catalogs are images holding a file-based catalog (FBC): the packages OLM
can install, their channels and versions. 'ferry catalog list' shows what one holds,
to choose what to carry and to judge installed operators ('ferry check operators').

Examples:
  ferry catalog list registry.redhat.io/redhat/redhat-operator-index:v4.16 --authfile pull-secret.json`,
		Subcommands: []*cli.Command{catalogListCommand(env)},
	}
}

func catalogListCommand(env *environment) *cli.Command {
	o := &catalogListOptions{registry: registryFlags{prefix: "src"}}
	return &cli.Command{
		Name:      "list",
		Usage:     "list a catalog's packages, channels, heads and versions, to write an operator selection",
		ArgsUsage: "CATALOG",
		Description: `Reads the file-based catalog out of the CATALOG image (a pull spec by tag or
digest, e.g. registry.redhat.io/redhat/redhat-operator-index:v4.16): the directory its
label operators.operatorframework.io.index.configs.v1 names, layers flattened as a
container runtime does. Prints each package with its default channel and, per channel,
the head (the bundle a new subscription installs) and how many versions it holds; with
--package, every version of each channel of that package, oldest first.

Heads are found as opm validates channels: the one entry no other entry replaces or
skips. Channels and packages marked in olm.deprecations say so.

Examples:
  ferry catalog list registry.redhat.io/redhat/redhat-operator-index:v4.16 --authfile pull-secret.json
  ferry catalog list registry.redhat.io/redhat/redhat-operator-index:v4.16 --package cluster-logging
  ferry catalog list quay.io/example/catalog@sha256:0da6...6363 --json`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "package", Usage: "list every version of this `PACKAGE`'s channels", Destination: &o.pkg},
			&cli.BoolFlag{Name: "json", Usage: "print the packages as JSON", Destination: &o.json},
		}, o.registry.flags()...),
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "one CATALOG (an image pull spec)"); err != nil {
				return err
			}
			o.ref = c.Args().First()
			return o.run(c.Context, env)
		},
	}
}

func (o *catalogListOptions) run(ctx context.Context, env *environment) error {
	if err := checkImageRef(o.ref); err != nil {
		return usageError(fmt.Errorf("CATALOG %w", err))
	}
	cat, err := catalog.Read(ctx, registry.New(o.registry.options(env)), o.ref)
	if err != nil {
		return withHint(fmt.Errorf("read catalog %s: %w", o.ref, err))
	}
	packages, err := catalog.Summarize(cat.FBC, o.pkg)
	if err != nil {
		return fmt.Errorf("catalog %s: %w", o.ref, err)
	}
	if o.json {
		return jsonEncode(env.stdout, struct {
			Catalog  string                   `json:"catalog"`
			Digest   string                   `json:"digest"`
			Packages []catalog.PackageSummary `json:"packages"`
		}{o.ref, cat.Digest.String(), packages})
	}
	fmt.Fprintf(env.stdout, "catalog %s (%s): %d packages\n", safetext.Clean(o.ref), cat.Digest, len(packages))
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tCHANNEL\tHEAD\tVERSIONS")
	for _, p := range packages {
		for _, ch := range p.Channels {
			name := safetext.Clean(ch.Name)
			if ch.Name == p.DefaultChannel {
				name += " (default)"
			}
			if ch.Deprecated {
				name += " (deprecated)"
			}
			versions := fmt.Sprint(len(ch.Versions))
			if o.pkg != "" {
				versions = strings.Join(safetext.Lines(ch.Versions), " ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", packageLabel(p), name, safetext.Clean(ch.HeadVersion), versions)
		}
	}
	return tw.Flush()
}

func packageLabel(p catalog.PackageSummary) string {
	if p.Deprecated {
		return safetext.Clean(p.Name) + " (deprecated)"
	}
	return safetext.Clean(p.Name)
}

// checkImageRef judges a pull spec before any registry is asked: it must
// parse, and name an image by tag or digest.
func checkImageRef(ref string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("%q: %w", ref, err)
	}
	if reference.IsNameOnly(named) {
		return fmt.Errorf("%q has neither a tag nor a digest (say :latest if that is meant)", ref)
	}
	return nil
}
