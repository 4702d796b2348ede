package main

import (
	"context"
	"errors"
	"fmt"

	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/fileio"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/apply"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/signature"
)

type applyOptions struct {
	bundle     string
	volumes    []string
	to         string
	kubeconfig string
	outputDir  string
	noCluster  bool
	dryRun     bool
	icsp       bool
	// disableDefaultSources renders the OperatorHub object that turns
	// the cluster's default catalog sources off.
	disableDefaultSources bool
	allowUnsigned         bool
	parallel              int
	quiet                 bool
	json                  bool
	registry              registryFlags
	trust                 trustFlags
	proof                 proofFlags
}

func applyCommand(env *environment) *cli.Command {
	o := &applyOptions{registry: registryFlags{prefix: "dest"}}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "to", Usage: "target `REGISTRY/REPO` in the mirror registry, e.g. registry.example:5000/ocp4/openshift4", Destination: &o.to},
		&cli.StringFlag{Name: "kubeconfig", Usage: "cluster to apply the ConfigMaps and mirror sets to (default: $KUBECONFIG, ~/.kube/config)", Destination: &o.kubeconfig, Category: "Cluster"},
		&cli.BoolFlag{Name: "no-cluster", Usage: "only render the manifests; do not contact a cluster", Destination: &o.noCluster, Category: "Cluster"},
		&cli.StringFlag{Name: "output-dir", Usage: "where to write the manifests (default ferry-manifests/<bundle id>)", Destination: &o.outputDir, Category: "Cluster"},
		&cli.BoolFlag{Name: "icsp", Usage: "also render the legacy ImageContentSourcePolicy (clusters before 4.13)", Destination: &o.icsp, Category: "Cluster"},
		o.disableDefaultSourcesFlag(),
		&cli.BoolFlag{Name: "allow-unsigned", Usage: "accept releases packed without signatures", Destination: &o.allowUnsigned, Category: "Signatures"},
		&cli.IntFlag{Name: "parallel", Value: registry.DefaultParallel, Usage: "blobs pushed at once", Destination: &o.parallel},
		&cli.BoolFlag{Name: "dry-run", Usage: "print what would be pushed and applied; touch nothing", Destination: &o.dryRun},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &o.quiet},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON", Destination: &o.json},
		o.trust.keyringFlag(),
		o.trust.betaKeyFlag(),
	}
	flags = append(flags, o.proof.flags()...)
	flags = append(flags, o.registry.flags()...)
	return &cli.Command{
		Name:      "apply",
		Usage:     "prove a bundle, push it into the mirror registry and apply its manifests to the cluster",
		ArgsUsage: "BUNDLE [VOLUME...]",
		Description: `Runs on the bastion. First it proves everything: the bundle's integrity (as 'ferry
verify'), then for each release the chain of trust: signatures under the keyring
(--keyring, else the cluster's release-verification ConfigMap, else Red Hat's release
key 2: the RHEL key file, else ferry's built-in copy) -> the release digest -> the image-references inside the release image -> every
component digest. Nothing is pushed until all of it holds.

Then it pushes every blob straight from the tar (no extraction; blobs the target has
are skipped), every manifest byte for byte, and the tags <version>-<arch> and
<version>-<arch>-<component>; renders the signature ConfigMaps, ImageDigestMirrorSet
(and, for images named by tag, ImageTagMirrorSet) into --output-dir; applies them with server-side apply; and
prints the 'oc adm upgrade' command to run next. An interrupted apply, rerun,
continues where it stopped.

Examples:
  ferry apply bundle.tar --to registry.example:5000/ocp4/openshift4 --kubeconfig ~/kubeconfig
  ferry apply bundle.tar --to registry.example:5000/ocp4/openshift4 --no-cluster --output-dir manifests/
  ferry apply bundle.tar --to registry.example:5000/ocp4/openshift4 --dry-run`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageError(errors.New("expected a BUNDLE; see `ferry apply --help`"))
			}
			if o.to == "" {
				return usageError(errors.New("--to REGISTRY/REPO is required: the mirror repository to push into; see `ferry apply --help`"))
			}
			o.bundle, o.volumes = c.Args().First(), c.Args().Tail()
			return o.run(c.Context, env)
		},
	}
}

// applySummary is what apply prints at the end.
type applySummary struct {
	Bundle        string   `json:"bundle"`
	Target        string   `json:"target"`
	BlobsPushed   int      `json:"blobsPushed"`
	BlobsSkipped  int      `json:"blobsSkipped"`
	BytesPushed   int64    `json:"bytesPushed"`
	Manifests     int      `json:"manifests"`
	Tags          int      `json:"tags"`
	Prerequisites int      `json:"prerequisites,omitempty"` // blobs left out, found in the target
	UpdatePath    []string `json:"updatePath,omitempty"`
	Unverified    []string `json:"unverified,omitempty"`
	// Sigstore is what apply proved of the Sigstore signatures the
	// releases' image policies demand, before it pushed.
	Sigstore *sigstoreSummary `json:"sigstore,omitempty"`
	// Nodes is the nodes\' own Sigstore check of what was pushed, through
	// the rendered mirror sets, and the admin-ack it allows.
	Nodes *admissionReport `json:"nodes,omitempty"`
	// Operators is the update check of the cluster's installed operators
	// against the carried catalogs.
	Operators *operatorsReport `json:"operators,omitempty"`
	// UpdateService says what is left to do for the update service.
	UpdateService string        `json:"updateService,omitempty"`
	Rendered      []string      `json:"rendered"`
	Applied       []string      `json:"applied,omitempty"`
	NextSteps     []string      `json:"nextSteps"`
	WallTime      time.Duration `json:"wallTimeNanos"`
	ClusterError  string        `json:"clusterError,omitempty"`
	DryRun        bool          `json:"dryRun,omitempty"`
	WouldPush     int           `json:"wouldPushBlobs,omitempty"`
	WouldPushSize int64         `json:"wouldPushBytes,omitempty"`
}

func (o *applyOptions) run(ctx context.Context, env *environment) error {
	start := time.Now()
	if o.parallel < 1 {
		return usageError(errors.New("--parallel must be at least 1"))
	}
	if err := checkRepositoryArg(o.to); err != nil {
		return usageError(fmt.Errorf("--to %q: %w", o.to, err))
	}
	if err := o.preflight(env); err != nil {
		return err
	}
	r, err := bundle.Open(o.bundle, bundle.ReadOptions{Volumes: o.volumes})
	if err != nil {
		return verificationError(err)
	}
	defer r.Close()
	applier, err := o.clusterApplier(env)
	if err != nil {
		return err
	}
	keyring, err := o.keyring(ctx, env, applier, r.Index())
	if err != nil {
		return err
	}
	opts, err := o.proof.trustOptions(keyring, o.allowUnsigned)
	if err != nil {
		return err
	}
	regOpts := o.registry.options(env)
	regOpts.Parallel = o.parallel
	client := registry.New(regOpts)
	if err := o.checkTarget(ctx, client); err != nil {
		return err
	}
	res, proof, err := verifyOpened(ctx, env, r, o.bundle, opts, progressFor(o.quiet, o.json))
	if err != nil {
		return err
	}
	if !res.OK {
		res.print(env)
		return verificationError(fmt.Errorf("bundle %s did not verify; nothing was pushed", o.bundle))
	}
	for _, u := range res.Unverified {
		env.log.Warn("UNVERIFIED: " + u)
	}
	sum := &applySummary{Bundle: o.bundle, Target: o.to, Unverified: res.Unverified, DryRun: o.dryRun, Sigstore: res.Sigstore}
	if err := o.pushProven(ctx, env, client, apply.BundleSource{Reader: r}, proof.Images, r.Index().Prerequisites, sum); err != nil {
		return err
	}
	files, err := o.render(env, r, proof, sum)
	if err != nil {
		return err
	}
	if applier != nil && !o.dryRun {
		if err := o.applyToCluster(ctx, env, applier, files, sum); err != nil {
			sum.ClusterError = err.Error()
			sum.WallTime = time.Since(start)
			_ = sum.print(env, o.json)
			return fmt.Errorf("images are pushed and manifests written to %s, but applying them failed: %w", o.outDir(r.Index().ID), err)
		}
	}
	var nodesErr, operatorsErr error
	if !o.dryRun {
		nodesErr = o.checkNodes(ctx, env, applier, proof, sum)
		operatorsErr = o.checkOperators(ctx, env, applier, r, proof, sum)
	}
	sum.NextSteps, sum.UpdatePath = apply.NextSteps(proof.Steps, o.to), r.Index().UpdatePath
	sum.WallTime = time.Since(start)
	if err := sum.print(env, o.json); err != nil {
		return err
	}
	return errors.Join(nodesErr, operatorsErr)
}

// checkTarget makes sure, before the verification pass (minutes for a large
// bundle), that the target registry is reachable, trusted and lets these
// credentials push; it writes nothing.
func (o *applyOptions) checkTarget(ctx context.Context, client *registry.Client) (err error) {
	dest, err := client.Destination(ctx, o.to)
	if err != nil {
		return fmt.Errorf("open %s: %w", o.to, err)
	}
	defer fileio.CloseInto(&err, dest, o.to)
	return dest.CheckAccess(ctx)
}

// clusterApplier is the cluster to apply to: nil with --no-cluster, or when
// none is configured (then apply only renders).
func (o *applyOptions) clusterApplier(env *environment) (*manifests.Applier, error) {
	if o.noCluster {
		return nil, nil
	}
	a, err := o.registry.net.applier(o.kubeconfig)
	if err != nil && o.kubeconfig != "" {
		return nil, fileArgError(err)
	}
	if err != nil {
		env.log.Info("no cluster configured; rendering manifests only", "reason", err)
		return nil, nil
	}
	return a, nil
}

// keyring picks the keys signatures must verify under: --keyring, else the
// cluster's own release-verification ConfigMap, else the default.
func (o *applyOptions) keyring(ctx context.Context, env *environment, applier *manifests.Applier, idx *bundle.Index) (*signature.Keyring, error) {
	if len(o.trust.keyrings.Value()) > 0 {
		return o.trust.releaseKeyring(env)
	}
	if applier != nil {
		kr, err := clusterKeyring(ctx, applier)
		if err == nil {
			return o.trust.use(env, kr, clusterKeySource)
		}
		env.log.Info("cannot use the cluster's release-verification keys", "reason", err)
	}
	kr, err := o.trust.defaultKeyring(env)
	if err != nil && o.allowUnsigned && allUnsigned(idx) {
		return nil, nil
	}
	return kr, err
}

func clusterKeyring(ctx context.Context, applier *manifests.Applier) (*signature.Keyring, error) {
	keyrings, err := applier.ReadVerificationKeyrings(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(keyrings))
	for name := range keyrings {
		names = append(names, name)
	}
	sort.Strings(names)
	var all []*signature.Keyring
	for _, name := range names {
		kr, err := signature.ParseKeyring("release-verification/"+name, keyrings[name])
		if err != nil {
			return nil, err
		}
		all = append(all, kr)
	}
	if len(all) == 0 {
		return nil, errors.New("release-verification holds no verifier-public-key-* entry")
	}
	return all[0].Merge(all[1:]...), nil
}

func allUnsigned(idx *bundle.Index) bool {
	for _, r := range idx.Releases {
		if !r.Unsigned {
			return false
		}
	}
	return true
}

// checkRepositoryArg accepts host[:port]/path without tag or digest.
func checkRepositoryArg(s string) error {
	host, path, ok := strings.Cut(s, "/")
	if !ok || host == "" || path == "" || strings.ContainsAny(s, "@") || strings.Contains(path, ":") {
		return errors.New("want REGISTRY/REPO, e.g. registry.example:5000/ocp4/openshift4 (no tag or digest)")
	}
	return nil
}

// outDir is --output-dir, or ferry-manifests/<name> (the bundle id).
func (o *applyOptions) outDir(name string) string {
	if o.outputDir != "" {
		return o.outputDir
	}
	return "ferry-manifests/" + name
}
