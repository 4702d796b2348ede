package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/fileio"
	"github.com/ferryhq/ferry/mirror/prune"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
)

type pruneOptions struct {
	to          string
	keep        []string
	keepBundles []string
	confirm     bool
	json        bool
	report      string
	parallel    int
	registry    registryFlags
}

func pruneCommand(env *environment) *cli.Command {
	o := &pruneOptions{registry: registryFlags{prefix: "dest"}}
	var keep, keepBundles cli.StringSlice
	flags := []cli.Flag{
		&cli.StringFlag{Name: "to", Usage: "mirror `REGISTRY/REPO` to prune, as given to 'ferry apply --to'", Destination: &o.to},
		&cli.StringSliceFlag{Name: "keep", Usage: "release `VERSION` to keep, every arch (repeat the flag)", Destination: &keep},
		&cli.StringSliceFlag{Name: "keep-bundle", Usage: "keep every release and image of `BUNDLE` (its data volumes beside it; repeat the flag)", Destination: &keepBundles},
		&cli.BoolFlag{Name: "confirm", Usage: "delete; without it prune only says what it would delete", Destination: &o.confirm},
		&cli.StringFlag{Name: "report", Usage: "JSON report `FILE` of what was deleted (default with --confirm: ferry-prune-<time>.json)", Destination: &o.report},
		&cli.IntFlag{Name: "parallel", Value: registry.DefaultParallel, Usage: "manifests read at once", Destination: &o.parallel},
		&cli.BoolFlag{Name: "json", Usage: "print the report as JSON instead of the summary", Destination: &o.json},
	}
	flags = append(flags, o.registry.flags()...)
	return &cli.Command{
		Name:  "prune",
		Usage: "remove from the mirror the releases no cluster needs any more",
		Description: `Runs on the bastion. Reads every tag of the mirror repository and the manifest each
points at (lists with their children), keeps the releases named by --keep and the
releases and images of each --keep-bundle, and deletes the manifests only the other
releases use. Without --confirm it deletes nothing and prints what it would delete:
each manifest by digest with its tags, and the bytes of the blobs that only those
manifests use.

Which tags are ferry's is known from their form; prune removes only these:
  <version>-<arch>          a release (4.16.3-x86_64, 4.16.3-multi)
  <version>-<arch>-<name>   a release's component, and its RHCOS KubeVirt container
  sha256-<hex>.sig          the cosign signature of sha256:<hex>, when that manifest goes
A tag of any other form is not ferry's: it stays, and so does every manifest it leads
to. Rebuilt catalogs (<name>-<tag>-filtered) are ferry's but not a release's: they stay.
Other repositories (additional images and graph data under REPO/...) are not touched.
A manifest anything kept references stays, even when the tag of a release that goes
also points at it (that tag then stays too: deleting by digest would take the kept
tag with it). Manifests are deleted by digest, lists before their children.

Blobs are not deleted: the registry frees the ones no manifest references only when its
garbage collection runs (distribution: 'registry garbage-collect CONFIG', the registry
stopped or read-only; 'ferry serve gc --root DIR'; Quay: its own GC worker). Manifests
pushed without a tag (operator images of carried catalogs) are invisible to a tag
listing: keep the bundles that carried them with --keep-bundle.

A confirmed prune writes a JSON report (--report, default ferry-prune-<time>.json).
Run 'ferry inventory' again afterwards: an older inventory claims deleted blobs.
A registry that does not delete (405, UNSUPPORTED) is refused on the first deletion.

Examples:
  ferry prune --to registry.example:5000/ocp4/openshift4 --keep 4.16.3 --keep 4.16.4
  ferry prune --to registry.example:5000/ocp4/openshift4 --keep 4.16.4 --confirm --report prune.json
  ferry prune --to registry.example:5000/ocp4/openshift4 --keep-bundle ocp-4.16.4.tar --json`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(fmt.Errorf("unexpected argument %q; see `ferry prune --help`", c.Args().First()))
			}
			o.keep, o.keepBundles = keep.Value(), keepBundles.Value()
			return o.run(c.Context, env)
		},
	}
}

// check validates the flags; every failure is a usage error.
func (o *pruneOptions) check() error {
	switch {
	case o.to == "":
		return errors.New("give the mirror with --to REGISTRY/REPO")
	case len(o.keep) == 0 && len(o.keepBundles) == 0:
		return errors.New("give the releases to keep with --keep VERSION or --keep-bundle BUNDLE: prune never empties a mirror")
	case o.parallel < 1:
		return errors.New("--parallel must be at least 1")
	}
	if err := checkRepositoryArg(o.to); err != nil {
		return fmt.Errorf("--to %q: %w", o.to, err)
	}
	for _, v := range o.keep {
		if err := release.ValidateVersion(v); err != nil {
			return fmt.Errorf("--keep: %w", err)
		}
	}
	return nil
}

func (o *pruneOptions) run(ctx context.Context, env *environment) error {
	if err := o.check(); err != nil {
		return usageError(err)
	}
	keep, err := o.keepSet()
	if err != nil {
		return err
	}
	regOpts := o.registry.options(env)
	env.log.Info("reading the mirror's tags and manifests", "repository", o.to)
	snap, err := prune.Read(ctx, o.to, prune.ReadOptions{Registry: regOpts, Parallel: o.parallel})
	if err != nil {
		return fmt.Errorf("prune %s: %w", o.to, err)
	}
	plan, err := prune.Compute(snap, keep)
	var noRelease *prune.NoReleaseError
	if errors.As(err, &noRelease) {
		return usageError(err)
	}
	if err != nil {
		return err
	}
	var deleted []prune.Deletion
	var deleteErr error
	if o.confirm {
		deleted, deleteErr = prune.Delete(ctx, plan, prune.DeleteOptions{Registry: regOpts, Deleted: func(d prune.Deletion) {
			env.log.Debug("deleted", "digest", d.Digest, "tags", d.Tags)
		}})
	}
	rep := prune.NewReport(snap, plan, keep, o.keepBundles, o.confirm, deleted, deleteErr)
	reportPath, err := o.writeReport(rep)
	if err != nil {
		return errors.Join(deleteErr, err)
	}
	if deleteErr != nil {
		return pruneFailed(deleteErr, len(deleted), reportPath)
	}
	if o.json {
		return jsonEncode(env.stdout, rep)
	}
	printPrune(env.stdout, rep, reportPath)
	return nil
}

// keepSet merges --keep and the contents of every --keep-bundle. A bundle
// is not verified: its index can only make prune keep more.
func (o *pruneOptions) keepSet() (prune.Keep, error) {
	k := prune.Keep{Versions: append([]string(nil), o.keep...)}
	for _, path := range o.keepBundles {
		r, err := bundle.Open(path, bundle.ReadOptions{})
		if err != nil {
			return k, usageError(fmt.Errorf("--keep-bundle: %w", err))
		}
		b := prune.KeepBundle(r.Index())
		if err := r.Close(); err != nil {
			return k, fmt.Errorf("--keep-bundle %s: %w", path, err)
		}
		k.Versions = append(k.Versions, b.Versions...)
		k.Digests = append(k.Digests, b.Digests...)
		k.Blobs = append(k.Blobs, b.Blobs...)
	}
	return k, nil
}

// writeReport writes the report where --report says or, for a confirmed
// prune, to ferry-prune-<time>.json: a deletion always leaves a record.
func (o *pruneOptions) writeReport(rep *prune.Report) (string, error) {
	path := o.report
	if path == "" && o.confirm {
		path = "ferry-prune-" + rep.Time.Format("20060102T150405Z") + ".json"
	}
	if path == "" {
		return "", nil
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	if err := fileio.WriteAtomic(path, append(data, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("writing the prune report: %w", err)
	}
	return path, nil
}

// pruneFailed says what a failed deletion left, with what to do.
func pruneFailed(err error, done int, reportPath string) error {
	record := ""
	if reportPath != "" {
		record = "; the report " + reportPath + " lists what was deleted"
	}
	if registry.IsDeleteUnsupported(err) {
		return fmt.Errorf("%w\nnothing was deleted%s\nhint: enable deletion in the registry (distribution: storage.delete.enabled: true, "+
			"or REGISTRY_STORAGE_DELETE_ENABLED=true; Quay and Harbor delete by default, check the robot account's permissions)", err, record)
	}
	return fmt.Errorf("%w\n%d manifests were deleted before the failure%s\nhint: run the same prune again to finish it", err, done, record)
}

// printPrune prints the deletions and what stays, then what to do next.
func printPrune(w io.Writer, rep *prune.Report, reportPath string) {
	verb := "would delete"
	if rep.Confirmed {
		verb = "deleted"
	}
	list := rep.Planned
	if rep.Confirmed {
		list = rep.Deleted
	}
	releases := "no release"
	if len(rep.Releases) > 0 {
		releases = "releases " + strings.Join(rep.Releases, ", ")
	}
	fmt.Fprintf(w, "%s: %s %d manifests (%s)\n", rep.Repository, verb, len(list), releases)
	tags := 0
	for _, d := range list {
		tags += len(d.Tags)
		name := "(no tag: a list's child)"
		if len(d.Tags) > 0 {
			name = strings.Join(d.Tags, ", ")
		}
		fmt.Fprintf(w, "  %s -> %s\n", name, d.Digest)
	}
	printLeft(w, rep.Left)
	fmt.Fprintf(w, "%d tags go; %d blobs, %s (%d bytes), become reclaimable\n",
		tags, len(rep.Reclaimable.Blobs), formatBytes(rep.Reclaimable.Bytes), rep.Reclaimable.Bytes)
	if reportPath != "" {
		fmt.Fprintf(w, "wrote %s\n", reportPath)
	}
	if !rep.Confirmed {
		fmt.Fprintln(w, "dry run: nothing was deleted; add --confirm to delete")
	}
	fmt.Fprintf(w, "hint: %s\nhint: %s\n", rep.GarbageCollection, rep.Inventory)
}

// printLeft counts the tags that stay by reason and names those that are
// not ferry's.
func printLeft(w io.Writer, left []prune.LeftTag) {
	counts := map[string]int{}
	var foreign []string
	for _, l := range left {
		counts[l.Reason]++
		if l.Reason == prune.LeftForeign {
			foreign = append(foreign, l.Tag)
		}
	}
	fmt.Fprintf(w, "stay: %d tags of kept releases, %d of releases that go whose manifest a kept item uses, %d signatures, %d catalogs\n",
		counts[prune.LeftKept], counts[prune.LeftShared], counts[prune.LeftSignature], counts[prune.LeftCatalog])
	if len(foreign) > 0 {
		fmt.Fprintf(w, "stay, not ferry's: %s\n", strings.Join(foreign, ", "))
	}
}
