package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"
	"go.podman.io/image/v5/docker/reference"

	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/apply"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/trust"
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
		s.trust.keyringFlag(),
		s.trust.storeFlag(),
	}
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
  ferry mirror quay.io/openshift-release-dev/ocp-release@sha256:0da6...6363 --to registry.example:5000/ocp4/openshift4 --no-cluster`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			s.releases, s.archSet = c.Args().Slice(), c.IsSet("arch")
			if len(s.releases) == 0 {
				return usageError(errors.New("expected at least one RELEASE (a version or a pull spec); see `ferry mirror --help`"))
			}
			if t.to == "" {
				return usageError(errors.New("--to REGISTRY/REPO is required: the mirror repository to copy into; see `ferry mirror --help`"))
			}
			return o.run(c.Context, env)
		},
	}
}

func (o *mirrorOptions) run(ctx context.Context, env *environment) error {
	start := time.Now()
	s, t := &o.source, &o.target
	if t.parallel < 1 {
		return usageError(errors.New("--parallel must be at least 1"))
	}
	if err := checkRepositoryArg(t.to); err != nil {
		return usageError(fmt.Errorf("--to %q: %w", t.to, err))
	}
	if err := s.graph.check(len(s.releases)); err != nil {
		return usageError(err)
	}
	s.parallel = t.parallel
	t.registry.authFile, t.registry.certDir, t.registry.net = s.registry.authFile, s.registry.certDir, s.registry.net
	applier, err := t.clusterApplier(env)
	if err != nil {
		return err
	}
	srcClient := registry.New(s.registry.options(env))
	refs, pick, err := s.selectReleases(ctx, env, srcClient)
	if err != nil {
		return err
	}
	signed, err := s.resolveAndVerify(ctx, env, srcClient, refs)
	if err != nil {
		return err
	}
	plan, err := (&mirror.Planner{Registry: srcClient, Parallel: t.parallel}).Plan(ctx, refs)
	if err != nil {
		return err
	}
	defer plan.Close()
	if pick != nil {
		if err := pick.checkArch(plan); err != nil {
			return err
		}
	}
	proven, err := provenPlan(plan, signed, pick)
	if err != nil {
		return err
	}
	sum := &applySummary{Bundle: "(none: straight from the source)", Target: t.to, Unverified: proven.Unverified, DryRun: t.dryRun}
	for _, u := range proven.Unverified {
		env.log.Warn("UNVERIFIED: " + u)
	}
	client := registry.New(t.registry.options(env))
	if err := t.pushProven(ctx, env, client, apply.NewPlanSource(plan), proven.Images, nil, sum); err != nil {
		return err
	}
	name := "mirror-" + strings.ReplaceAll(plan.Releases[0].Tag(), ".", "-")
	files, err := t.writeRendered(name, proven.configMaps, proven.Sources, sum)
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
	sum.NextSteps = apply.NextSteps(proven.Steps, t.to)
	if pick != nil {
		sum.UpdatePath = pick.path
	}
	sum.WallTime = time.Since(start)
	return sum.print(env, t.json)
}

// provenMirror is what ferry mirror may push: the plan, every part of which
// the planner derived from verified release signatures.
type provenMirror struct {
	trust.Report
	configMaps []manifests.File
}

// provenPlan turns a plan into the images, sources, ConfigMaps and steps to
// deliver. The planner read image-references from the signed release image
// through digest-checked streams, so every image and tag in it is derived
// from the release chain; a release without accepted signatures (only with
// --allow-unsigned) is listed as unverified.
func provenPlan(plan *mirror.Plan, signed map[digest.Digest][]signature.Accepted, pick *graphPick) (*provenMirror, error) {
	p := &provenMirror{}
	sizes := make(map[digest.Digest]int64, len(plan.Blobs))
	for _, b := range plan.Blobs {
		sizes[b.Digest] = b.Size
	}
	for _, img := range plan.Images {
		ti := trust.Image{Source: img.Repository, Digest: img.Digest, MediaType: img.MediaType, Size: int64(len(img.Manifest)),
			Tags: slices.Clone(img.Tags), Children: img.Children, Blobs: img.Blobs, Proof: trust.ReleaseChain}
		for _, d := range img.Blobs {
			ti.BlobSizes = append(ti.BlobSizes, sizes[d])
		}
		p.Images = append(p.Images, ti)
		p.Sources = append(p.Sources, img.Repository)
	}
	for _, r := range plan.Releases {
		accepted := signed[r.Digest]
		if len(accepted) == 0 {
			p.Unverified = append(p.Unverified, "release "+r.Tag()+" ("+r.Digest.String()+") has no verified signature")
			continue
		}
		sigs := make([][]byte, len(accepted))
		for i, a := range accepted {
			sigs[i] = a.Data
			// The cluster pulls the release by the name its signature
			// gives (quay.io/...), whichever registry it was copied from.
			if named, err := reference.ParseNormalizedNamed(a.Verified.Identity); err == nil {
				p.Sources = append(p.Sources, reference.TrimNamed(named).String())
			}
		}
		cm, err := manifests.SignatureConfigMap(r.Digest, sigs)
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", r.Tag(), err)
		}
		p.configMaps = append(p.configMaps, manifests.File{Name: manifests.SignatureConfigMapFile(r.Digest), Data: cm})
	}
	slices.Sort(p.Sources)
	p.Sources = slices.Compact(p.Sources)
	p.Steps = mirrorSteps(plan.Releases, pick)
	return p, nil
}

// mirrorSteps are the upgrades in order: along the update path when the
// releases came from one, else oldest first.
func mirrorSteps(releases []*mirror.Release, pick *graphPick) []trust.Step {
	ordered := slices.Clone(releases)
	slices.SortStableFunc(ordered, func(a, b *mirror.Release) int { return release.CompareVersions(a.Version, b.Version) })
	if pick != nil && len(pick.path) > 1 {
		ordered = ordered[1:] // the first version of a path is where the cluster is
	}
	var steps []trust.Step
	for _, r := range ordered {
		steps = append(steps, trust.Step{Version: r.Version, Arch: r.Arch, Digest: r.Digest})
	}
	return steps
}
