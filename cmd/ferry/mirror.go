package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/apply"
	"github.com/ferryhq/ferry/mirror/graph"
	"github.com/ferryhq/ferry/mirror/registry"
)

// mirrorOptions are pack's release selection and signature checks on the
// source side and apply's target, rendering and cluster on the other: the
// same proof, with no bundle in between.
type mirrorOptions struct {
	source packOptions
	target applyOptions
}

func mirrorCommand(env *environment) *cli.Command {
	o := &mirrorOptions{source: packOptions{registry: registryFlags{prefix: "src"}}, target: applyOptions{registry: registryFlags{prefix: "dest"}}}
	s, t := &o.source, &o.target
	flags := []cli.Flag{
		&cli.StringFlag{Name: "to", Usage: "target `REGISTRY/REPO` in the mirror registry, e.g. registry.example:5000/ocp4/openshift4", Destination: &t.to},
		&cli.StringFlag{Name: "arch", Value: "x86_64", Usage: "architecture of releases given by version: x86_64 (amd64), aarch64 (arm64), s390x, ppc64le, multi", Destination: &s.arch},
		&cli.IntFlag{Name: "parallel", Value: registry.DefaultParallel, Usage: "blobs copied at once", Destination: &t.parallel},
		&cli.BoolFlag{Name: "allow-unsigned", Usage: "mirror releases whose signatures do not verify (each is listed as UNVERIFIED)", Destination: &s.allowUnsigned, Category: "Signatures"},
		&cli.BoolFlag{Name: "dry-run", Usage: "resolve, verify and plan; print what would be copied; touch nothing", Destination: &t.dryRun},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &t.quiet},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON", Destination: &t.json},
		&cli.StringFlag{Name: "kubeconfig", Usage: "cluster to apply the ConfigMaps and mirror sets to (default: $KUBECONFIG, ~/.kube/config)", Destination: &t.kubeconfig, Category: "Cluster"},
		&cli.BoolFlag{Name: "no-cluster", Usage: "only render the manifests; do not contact a cluster", Destination: &t.noCluster, Category: "Cluster"},
		&cli.StringFlag{Name: "output-dir", Usage: "where to write the manifests (default ferry-manifests/mirror-<first release>)", Destination: &t.outputDir, Category: "Cluster"},
		&cli.BoolFlag{Name: "icsp", Usage: "also render the legacy ImageContentSourcePolicy (clusters before 4.13)", Destination: &t.icsp, Category: "Cluster"},
		t.disableDefaultSourcesFlag(),
		&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "take the releases (or the channel), keyrings, signature stores, parallel and " +
			"time bounds from a ferry.yaml `FILE` (the one ferry pack reads); flags override it", Destination: &s.configFile},
		s.trust.keyringFlag(),
		s.trust.betaKeyFlag(),
		s.trust.storeFlag(),
		s.sigstore.flag("refuse to copy"),
	}
	flags = append(flags, s.operators.flags()...)
	flags = append(flags, s.extras.flags()...)
	flags = append(flags, s.registry.flags()...)
	// One auth file and certificate directory serve both sides (an
	// auth.json holds every registry); TLS is chosen per side.
	for _, f := range t.registry.flags() {
		if strings.HasSuffix(f.Names()[0], "tls-verify") {
			flags = append(flags, f)
		}
	}
	return &cli.Command{
		Name:      "mirror",
		Usage:     "copy releases straight from their registry into the mirror registry, proven the same way, no bundle",
		ArgsUsage: "RELEASE...",
		Description: `For a site that reaches both the source registry and its mirror (partially
disconnected): resolves each RELEASE (a version with --arch, or a pull spec), verifies
its GPG signatures before anything else, walks the release image, every component in its
image-references and the Sigstore sha256-<hex>.sig tags beside them, then copies every
blob the mirror lacks from the source into the mirror, checking each digest as it
streams, pushes the manifests byte for byte only after their blobs are in, and writes
the tags last. It renders and applies the same ConfigMaps and mirror sets as 'ferry
apply' and prints the 'oc adm upgrade' steps. Memory is bounded by the copy buffers, not
the image sizes; a rerun copies nothing twice.

Examples:
  ferry mirror 4.15.0 --to registry.example:5000/ocp4/openshift4 --authfile auth.json --keyring redhat-release.asc
  ferry mirror quay.io/openshift-release-dev/ocp-release@sha256:0da6...6363 --to registry.example:5000/ocp4/openshift4 --no-cluster
  ferry mirror -f ferry.yaml --to registry.example:5000/ocp4/openshift4`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			s.releases, s.archSet = c.Args().Slice(), c.IsSet("arch")
			if t.to == "" { // ferry.yaml names no target: judged before it is read
				return usageError(errors.New("--to REGISTRY/REPO is required: the mirror repository to copy into; see `ferry mirror --help`"))
			}
			if s.configFile != "" {
				if err := o.readConfig(c); err != nil {
					return err
				}
			}
			if len(s.releases) == 0 && len(s.configReleases) == 0 && !s.graph.active() && !s.operators.active() && !s.extras.active() {
				return usageError(errors.New("expected at least one RELEASE (a version or a pull spec), --catalog, --image, or -f ferry.yaml; see `ferry mirror --help`"))
			}
			return o.run(c.Context, env)
		},
	}
}

func (o *mirrorOptions) run(ctx context.Context, env *environment) error {
	start := time.Now()
	s, t := &o.source, &o.target
	if err := checkRepositoryArg(t.to); err != nil {
		return usageError(fmt.Errorf("--to %q: %w", t.to, err))
	}
	s.parallel, s.quiet, s.json = t.parallel, t.quiet, t.json
	if err := s.checkSourceArgs(); err != nil {
		return err
	}
	if err := t.preflightOutput(); err != nil {
		return err
	}
	if !s.allowUnsigned {
		if err := s.trust.checkGivenKeyrings(env); err != nil {
			return err
		}
	}
	t.registry.authFile, t.registry.certDir, t.registry.net = s.registry.authFile, s.registry.certDir, s.registry.net
	applier, err := t.clusterApplier(env)
	if err != nil {
		return err
	}
	srcOpts := s.registry.options(env)
	srcOpts.Parallel = s.parallel
	srcClient := registry.New(srcOpts)
	plan, signed, pick, err := s.planReleases(ctx, env, srcClient)
	if err != nil {
		return err
	}
	defer plan.Close()
	var path []string
	if pick != nil {
		path = pick.path
	}
	proven, err := apply.FromPlan(plan, signed, path)
	if err != nil {
		return err
	}
	sum := &applySummary{Bundle: "(none: straight from the source)", Target: t.to, Unverified: proven.Unverified, DryRun: t.dryRun,
		Sigstore: summarizeSigstore(proven.Sigstore)}
	for _, u := range proven.Unverified {
		env.log.Warn("UNVERIFIED: " + u)
	}
	destOpts := t.registry.options(env)
	destOpts.Parallel = t.parallel
	client := registry.New(destOpts)
	if err := t.pushProven(ctx, env, client, apply.NewPlanSource(plan), proven.Images, nil, sum); err != nil {
		return err
	}
	name := mirrorName(plan)
	files, err := t.writeRendered(env, name, proven.ConfigMaps, &proven.Report, sum)
	if err != nil {
		return err
	}
	if applier != nil && !t.dryRun {
		if err := t.applyToCluster(ctx, env, applier, files, sum); err != nil {
			sum.ClusterError = err.Error()
			sum.WallTime = time.Since(start)
			_ = sum.print(env, t.json)
			return fmt.Errorf("images are copied and manifests written to %s, but applying them failed: %w", t.outDir(name), err)
		}
	}
	var nodesErr error
	if !t.dryRun {
		nodesErr = t.checkNodes(ctx, env, applier, &proven.Report, sum)
	}
	sum.NextSteps = apply.NextSteps(proven.Steps, t.to)
	if pick != nil {
		sum.UpdatePath = pick.path
	}
	sum.WallTime = time.Since(start)
	if err := sum.print(env, t.json); err != nil {
		return err
	}
	return nodesErr
}

// mirrorName names the rendered objects after the first release, or the
// first catalog of a mirror that copies no release.
func mirrorName(plan *mirror.Plan) string {
	if len(plan.Releases) > 0 {
		return "mirror-" + strings.ReplaceAll(plan.Releases[0].Tag(), ".", "-")
	}
	if len(plan.Catalogs) > 0 {
		return "mirror-" + strings.ReplaceAll(plan.Catalogs[0].Tag, ".", "-")
	}
	return "mirror-images"
}

// readConfig takes what a mirror needs from a ferry.yaml: the releases or
// the channel, keyrings, signature stores, parallel and time bounds; the
// bundle's own keys (output, volumes, since, signing) mean nothing here.
func (o *mirrorOptions) readConfig(c *cli.Context) error {
	cfg, err := loadPackConfig(o.source.configFile)
	if err != nil {
		return fileArgError(err)
	}
	o.source.applyConfig(c, cfg)
	if !c.IsSet("parallel") && cfg.Parallel > 0 {
		o.target.parallel = cfg.Parallel
	}
	if o.source.graph.active() && o.source.graph.graphURL == "" {
		o.source.graph.graphURL = graph.DefaultURL
	}
	return nil
}
