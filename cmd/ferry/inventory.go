package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/fileio"
	"github.com/ferryhq/ferry/internal/regularfile"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/inventory"
	"github.com/ferryhq/ferry/mirror/registry"
)

type inventoryOptions struct {
	to         string
	repos      cli.StringSlice
	fromBundle string
	// operators and kubeconfig: the cluster's installed OLM operators
	// instead of the mirror's contents.
	operators  bool
	kubeconfig string
	volumes    []string
	output     string
	parallel   int
	json       bool
	registry   registryFlags
}

func inventoryCommand(env *environment) *cli.Command {
	o := &inventoryOptions{registry: registryFlags{prefix: "dest"}}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "to", Usage: "mirror `REGISTRY/REPO` to read, as given to 'ferry apply --to'", Destination: &o.to},
		&cli.StringSliceFlag{Name: "repo", Usage: "with --to: also read the repository `PATH` under it, where an additional image went " +
			"(repeatable; " + mirror.GraphImageTarget + ", the graph-data image's, is always read)", Destination: &o.repos},
		&cli.StringFlag{Name: "from-bundle", Usage: "derive the inventory from a `BUNDLE` applied to the mirror instead", Destination: &o.fromBundle},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "inventory.json", Usage: "inventory `FILE` to write (- for stdout)", Destination: &o.output},
		&cli.IntFlag{Name: "parallel", Value: registry.DefaultParallel, Usage: "manifests read at once", Destination: &o.parallel},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON", Destination: &o.json},
		&cli.BoolFlag{Name: "operators", Usage: "record the cluster's installed OLM operators instead (default -o installed-operators.json), " +
			"for 'ferry check operators --installed' on the connected side", Destination: &o.operators, Category: "Cluster"},
		&cli.StringFlag{Name: "kubeconfig", Usage: "with --operators: the cluster to read (default: $KUBECONFIG, ~/.kube/config)", Destination: &o.kubeconfig, Category: "Cluster"},
	}
	flags = append(flags, o.registry.flags()...)
	return &cli.Command{
		Name:      "inventory",
		Usage:     "record what the mirror registry holds, for 'ferry pack --since'",
		ArgsUsage: "[VOLUME...]",
		Description: `Runs on the bastion. Writes a small JSON file listing what the mirror repository
already holds: the manifests its tags lead to, every config and layer those reference
(digest, size, media type), and the releases tagged <version>-<arch>. Carry it back to
the connected side: 'ferry pack --since inventory.json' then leaves all of that out of
the next bundle. The file holds no credentials and nothing secret.

With --to ferry reads the registry: it lists the repository's tags and reads each
manifest (a registry cannot list blobs, but holds a manifest only with its blobs); and
the same, with every tag, for the repositories under it that ferry pushes to: graph-image
and each --repo PATH (an additional image's path, as 'ferry inspect' shows it). A bundle
packed --since the inventory then leaves out what each of those already holds too, and
reports a tag that names another image than when the inventory was made.
With --from-bundle it derives the same from a bundle that was applied to the mirror
(its manifests, their blobs and its prerequisites), without any network access; data
volumes are found beside BUNDLE by name, or given after it.

With --operators it records instead what the cluster runs of OLM operators (each
Subscription's package, channel and installed ClusterServiceVersion with its version and
olm.properties) and the cluster's version: 'ferry check operators --installed FILE' then
tells on the connected side, before anything is packed, which operators would block the
next update and which version of each to carry.

Examples:
  ferry inventory --to registry.example:5000/ocp4/openshift4 -o inventory.json
  ferry inventory --to registry.example:5000/ocp4/openshift4 --repo openshift4/ose-must-gather -o inventory.json
  ferry inventory --from-bundle ocp-4.15.0.tar -o inventory.json
  ferry inventory --operators --kubeconfig ~/kubeconfig`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			o.volumes = c.Args().Slice()
			if o.operators {
				if !c.IsSet("output") {
					o.output = "installed-operators.json"
				}
				return o.runOperators(c.Context, env)
			}
			return o.run(c.Context, env)
		},
	}
}

// check validates the flags; every failure is a usage error.
func (o *inventoryOptions) check() error {
	switch {
	case (o.to == "") == (o.fromBundle == ""):
		return errors.New("give either --to REGISTRY/REPO or --from-bundle BUNDLE")
	case len(o.volumes) > 0 && o.fromBundle == "":
		return errors.New("VOLUME arguments go with --from-bundle")
	case len(o.repos.Value()) > 0 && o.to == "":
		return errors.New("--repo goes with --to (a bundle names its repositories itself)")
	case o.output == "":
		return errors.New("--output: give a file, or - for stdout")
	case o.parallel < 1:
		return errors.New("--parallel must be at least 1")
	}
	if o.to != "" {
		if err := checkRepositoryArg(o.to); err != nil {
			return fmt.Errorf("--to %q: %w", o.to, err)
		}
	}
	for _, p := range o.repos.Value() {
		if err := mirror.CheckTargetRepo(p); err != nil {
			return fmt.Errorf("--repo: %w", err)
		}
	}
	return nil
}

// paths are the repositories under --to to read: graph-image and --repo,
// each once.
func (o *inventoryOptions) paths() []string {
	paths := []string{mirror.GraphImageTarget}
	for _, p := range o.repos.Value() {
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	return paths
}

func (o *inventoryOptions) run(ctx context.Context, env *environment) error {
	if err := o.check(); err != nil {
		return usageError(err)
	}
	if o.fromBundle != "" {
		if err := checkBundleArgs(o.fromBundle, o.volumes); err != nil {
			return err
		}
	}
	if err := o.checkOutput(); err != nil {
		return err
	}
	inv, err := o.collect(ctx, env)
	if err != nil {
		return err
	}
	data, err := inv.Marshal()
	if err != nil {
		return err
	}
	if toStdout, err := o.write(env, data); toStdout || err != nil {
		return err
	}
	return o.printSummary(env, inv, int64(len(data)))
}

// checkOutput makes sure, before any bundle, registry or cluster is read,
// that --output can be written: "-", or a file in an existing directory.
func (o *inventoryOptions) checkOutput() error {
	if o.output == "-" {
		return nil
	}
	if st, err := os.Stat(o.output); err == nil && st.IsDir() {
		return usageError(fmt.Errorf("-o %s is a directory: name the file to write", o.output))
	}
	return checkWritableDir("-o", filepath.Dir(o.output))
}

// write puts an inventory's bytes into --output, atomically, or on stdout
// for "-" (then no summary follows: toStdout).
func (o *inventoryOptions) write(env *environment, data []byte) (toStdout bool, err error) {
	if o.output == "-" {
		_, err := env.stdout.Write(data)
		return true, err
	}
	return false, fileio.WriteAtomic(o.output, data, 0o644)
}

// collect reads the registry or the bundle.
func (o *inventoryOptions) collect(ctx context.Context, env *environment) (*inventory.Inventory, error) {
	if o.fromBundle != "" {
		r, err := bundle.Open(o.fromBundle, bundle.ReadOptions{Volumes: o.volumes})
		if err != nil {
			return nil, verificationError(err)
		}
		defer r.Close()
		inv, err := inventory.FromBundle(r)
		if err != nil {
			return nil, verificationError(err)
		}
		return inv, nil
	}
	regOpts := o.registry.options(env)
	regOpts.Parallel = o.parallel
	var announce sync.Once
	inv, err := inventory.Scan(ctx, o.to, inventory.ScanOptions{
		Registry: regOpts,
		Parallel: o.parallel,
		Paths:    o.paths(),
		Progress: func(_, total int) {
			announce.Do(func() { env.log.Info("reading the manifest of every tag", "repository", o.to, "tags", total) })
		},
	})
	if err != nil {
		return nil, fmt.Errorf("inventory of %s: %w", o.to, err)
	}
	for _, r := range inv.Repositories {
		env.log.Info("repository under the target read", "path", r.Path, "tags", len(r.Tags), "blobs", len(r.Blobs))
	}
	if len(inv.Manifests) == 0 {
		env.log.Warn("the repository holds no tagged image: the inventory is empty, and a bundle packed against it is complete", "repository", o.to)
	}
	return inv, nil
}

// inventorySummary is what inventory prints at the end.
type inventorySummary struct {
	Inventory string   `json:"inventory"`
	Size      int64    `json:"size"`
	Source    string   `json:"source"`
	Releases  []string `json:"releases"`
	Manifests int      `json:"manifests"`
	Blobs     int      `json:"blobs"`
	Bytes     int64    `json:"bytes"`
	// Repositories are the paths under the target read, with their tags
	// and blobs.
	Repositories []inventoryRepository `json:"repositories,omitempty"`
}

// inventoryRepository is one repository under the target in the summary.
type inventoryRepository struct {
	Path  string `json:"path"`
	Tags  int    `json:"tags"`
	Blobs int    `json:"blobs"`
}

func (o *inventoryOptions) printSummary(env *environment, inv *inventory.Inventory, size int64) error {
	s := inventorySummary{Inventory: o.output, Size: size, Source: inv.Source, Releases: []string{},
		Manifests: len(inv.Manifests), Blobs: len(inv.Blobs), Bytes: inv.Bytes()}
	for _, r := range inv.Releases {
		s.Releases = append(s.Releases, r.Version+"-"+r.Arch)
	}
	sort.Strings(s.Releases)
	for _, r := range inv.Repositories {
		s.Repositories = append(s.Repositories, inventoryRepository{Path: r.Path, Tags: len(r.Tags), Blobs: len(r.Blobs)})
	}
	sort.Slice(s.Repositories, func(i, j int) bool { return s.Repositories[i].Path < s.Repositories[j].Path })
	if o.json {
		return jsonEncode(env.stdout, s)
	}
	releases := "none"
	if len(s.Releases) > 0 {
		releases = strings.Join(s.Releases, ", ")
	}
	fmt.Fprintf(env.stdout, "%s: releases %s; %d manifests, %d blobs (%s)\n", s.Source, releases, s.Manifests, s.Blobs, formatBytes(s.Bytes))
	for _, r := range s.Repositories {
		fmt.Fprintf(env.stdout, "  under it, %s: %d tags, %d blobs\n", r.Path, r.Tags, r.Blobs)
	}
	fmt.Fprintf(env.stdout, "wrote %s (%s)\n", s.Inventory, formatBytes(s.Size))
	return nil
}

// readInventory reads the --since file, refusing a named pipe or a device
// without blocking on it.
func readInventory(path string) (*inventory.Inventory, error) {
	f, err := regularfile.Open(path, "an inventory file")
	if err != nil {
		return nil, fileArgError(fmt.Errorf("--since: %w", err))
	}
	defer f.Close()
	inv, err := inventory.Parse(f)
	if err != nil {
		return nil, usageError(fmt.Errorf("--since %s: %w", path, err))
	}
	return inv, nil
}

// missingSummary names the first few missing digests and counts the rest.
func missingSummary(missing []digest.Digest) string {
	const shown = 3
	names := make([]string, 0, shown)
	for _, d := range missing[:min(shown, len(missing))] {
		names = append(names, d.String())
	}
	s := strings.Join(names, ", ")
	if len(missing) > shown {
		s += fmt.Sprintf(" and %d more", len(missing)-shown)
	}
	return s
}
