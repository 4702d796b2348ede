package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/inventory"
	"github.com/ferryhq/ferry/mirror/pack"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

type packOptions struct {
	releases      []string
	arch          string
	archSet       bool // --arch given: pull specs must match it
	output        string
	volumeSize    string
	parallel      int
	allowUnsigned bool
	dryRun        bool
	cacheDir      string
	quiet         bool
	json          bool
	force         bool
	since         string
	noSelf        bool
	configFile    string
	printConfig   bool
	// configReleases are the releases of a -f file (when no RELEASE
	// arguments replace them).
	configReleases []configRelease
	graph          graphSelection
	registry       registryFlags
	trust          trustFlags
	sign           signFlags
	sigstore       sigstoreFlag
	operators      operatorFlags
	extras         extrasFlags
}

func packCommand(env *environment) *cli.Command {
	o := &packOptions{registry: registryFlags{prefix: "src"}}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "bundle.tar", Usage: "bundle `FILE` to write (volumes become FILE.001.tar, ...)", Destination: &o.output, Category: "Output"},
		&cli.StringFlag{Name: "arch", Value: "x86_64", Usage: "architecture of releases given by version: x86_64 (amd64), aarch64 (arm64), s390x, ppc64le, multi", Destination: &o.arch},
		&cli.StringFlag{Name: "volume-size", Usage: "split the bundle into volumes of at most `SIZE` (e.g. 4GiB, 700MB)", Destination: &o.volumeSize, Category: "Output"},
		&cli.BoolFlag{Name: "force", Usage: "overwrite an existing bundle", Destination: &o.force, Category: "Output"},
		&cli.StringFlag{Name: "cache-dir", Usage: "keep verified blobs in `DIR` so that a rerun skips what it already fetched (costs a second copy on disk)", Destination: &o.cacheDir, Category: "Output"},
		&cli.IntFlag{Name: "parallel", Value: registry.DefaultParallel, Usage: "blobs fetched at once", Destination: &o.parallel},
		&cli.BoolFlag{Name: "allow-unsigned", Usage: "pack releases whose signatures do not verify (recorded in the bundle; apply will insist on --allow-unsigned too)", Destination: &o.allowUnsigned, Category: "Signatures"},
		&cli.BoolFlag{Name: "dry-run", Usage: "list what would be packed, with sizes; fetches no layer", Destination: &o.dryRun},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress, only errors and the summary", Destination: &o.quiet},
		&cli.BoolFlag{Name: "json", Usage: "print the summary as JSON", Destination: &o.json},
		&cli.StringFlag{Name: "since", Usage: "leave out every blob the mirror holds according to this inventory `FILE` (from 'ferry inventory'); " +
			"the bundle then lists them as prerequisites", Destination: &o.since, Category: "Output"},
		&cli.BoolFlag{Name: "no-self", Usage: "do not carry ferry's own binary in the bundle (by default it travels as `ferry` at the top of the first volume)", Destination: &o.noSelf, Category: "Output"},
		&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read the pack from a ferry.yaml `FILE` (apiVersion ferry/v1alpha1, kind Bundle); flags override it", Destination: &o.configFile},
		&cli.BoolFlag{Name: "print-config", Usage: "print the effective configuration as a ferry.yaml and exit (a command line becomes a file)", Destination: &o.printConfig},
		o.trust.keyringFlag(),
		o.trust.betaKeyFlag(),
		o.trust.storeFlag(),
		o.sigstore.flag("refuse the pack"),
	}
	flags = append(flags, o.sign.flags()...)
	flags = append(flags, o.graph.flags()...)
	flags = append(flags, o.operators.flags()...)
	flags = append(flags, o.extras.flags()...)
	flags = append(flags, o.registry.flags()...)
	return &cli.Command{
		Name:      "pack",
		Usage:     "write one verified bundle holding releases, every image they reference and their signatures",
		ArgsUsage: "RELEASE...",
		Description: `Runs on a host with internet access. For each RELEASE (a version with --arch, or a
pull spec by tag or digest) ferry resolves the release digest, fetches and verifies its
GPG signatures, walks the release image, every component in its image-references and
every Sigstore sha256-<hex>.sig tag beside them, and streams every blob once into a tar
bundle, checking each digest as it goes. The bundle's index is written last: a pack cut
short leaves nothing that 'ferry verify' accepts.

Instead of RELEASE arguments, --channel picks releases from the update graph: every
release on the update path --from (the cluster's current version) --to the target, or
every release of the channel between --min and --max. Each release's digest is the
graph's payload, cross-checked against the registry's <version>-<arch> tag; blobs the
releases share are stored once, and the index records the path so that 'ferry apply'
prints the update steps in order.

With --since (an inventory written by 'ferry inventory' on the bastion) the bundle
leaves out every config and layer the mirror already holds (in the repository each
image goes to: the target, or the path under it of an additional or graph-data image)
and lists them as prerequisites: 'ferry apply' checks they are all there before it
pushes anything; a tag of an additional image that names another image than the
inventory saw is reported. Manifests, and the release image layers the chain of trust is read from,
are always carried. Such a bundle applies wherever its prerequisites are present.

With --sign-key the packer signs the bundle: a detached OpenPGP signature of the index
(ferry-index.json.asc, after the index) covers every file, so 'ferry verify' and
'ferry apply' with --bundle-keyring prove everything the release chain does not (the
carried binary, the update path, the options); the carried binary gets its own
signature, ferry.asc, for 'gpg --verify ferry.asc ferry' on the bastion. The key's
passphrase comes from --sign-key-passphrase-file or $FERRY_SIGN_KEY_PASSPHRASE.

Examples:
  ferry pack 4.15.0 --keyring redhat-release.asc --authfile pull-secret.json -o ocp-4.15.0.tar
  ferry pack 4.15.0 4.15.3 --volume-size 4GiB -o updates.tar
  ferry pack quay.io/openshift-release-dev/ocp-release@sha256:0da6...6363 --dry-run
  ferry pack --channel stable-4.15 --from 4.15.0 --to 4.15.20 -o path.tar
  ferry pack --channel stable-4.15 --min 4.15.10 --max 4.15.20 --since inventory.json -o incremental.tar
  ferry pack 4.15.0 --volume-size 4GiB --print-config > ferry.yaml && ferry pack -f ferry.yaml
  ferry pack 4.15.0 --sign-key packer.key --sign-key-passphrase-file ~/.ferry-pass -o signed.tar`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			o.releases, o.archSet = c.Args().Slice(), c.IsSet("arch")
			if o.configFile != "" {
				cfg, err := loadPackConfig(o.configFile)
				if err != nil {
					return fileArgError(err)
				}
				o.applyConfig(c, cfg)
			}
			if o.printConfig {
				return o.writeConfig(env)
			}
			if len(o.releases) == 0 && len(o.configReleases) == 0 && !o.graph.active() && !o.operators.active() && !o.extras.active() {
				return usageError(errors.New("expected at least one RELEASE (a version or a pull spec), --channel, --catalog, --image, --graph-image, or -f ferry.yaml; see `ferry pack --help`"))
			}
			return o.run(c.Context, env)
		},
	}
}

func (o *packOptions) run(ctx context.Context, env *environment) error {
	start := time.Now()
	volumeSize, err := o.checkArgs()
	if err != nil {
		return err
	}
	if err := o.checkOutput(); err != nil {
		return err
	}
	signer, err := o.sign.load()
	if err != nil {
		return err
	}
	if !o.allowUnsigned { // which packs on when the keyring cannot be read
		if err := o.trust.checkGivenKeyrings(env); err != nil {
			return err
		}
	}
	var inv *inventory.Inventory
	if o.since != "" {
		if inv, err = readInventory(o.since); err != nil {
			return err
		}
	}
	regOpts := o.registry.options(env)
	regOpts.Parallel = o.parallel
	client := registry.New(regOpts)
	plan, signed, pick, err := o.planReleases(ctx, env, client)
	if err != nil {
		return err
	}
	defer plan.Close()
	blobs, prereqs, mismatches := pack.LeaveOut(plan, inv)
	warnMovedTags(env, pack.MovedTags(plan, inv))
	for _, m := range mismatches {
		env.log.Warn("the inventory gives a blob another size; carrying it", "blob", m.Digest, "size", m.Size, "inventory", m.InventorySize)
	}
	if err := o.checkPlan(env, plan, blobs); err != nil { // with --dry-run, warnings only
		return err
	}
	if err := o.operators.checkInstalled(env, plan); err != nil {
		return err
	}
	if o.dryRun {
		return printPlan(env, plan, blobs, prereqs, o.json)
	}
	in := packInputs{plan: plan, prereqs: prereqs, inventory: inv,
		signed: signed, signer: signer, volumeSize: volumeSize, retry: regOpts.Retry}
	if pick != nil {
		in.updatePath = pick.path
	}
	summary, err := o.write(ctx, env, in)
	if err != nil {
		return err
	}
	summary.WallTime = time.Since(start)
	return summary.print(env, o.json)
}

// selectReleases returns the releases to pack: the RELEASE arguments, or
// those the update graph picks (then cross-checked against the registry,
// and returned as pick too).
// planReleases is the source side of pack and mirror: choose the releases,
// resolve them and verify their signatures before anything else, then walk
// them. The caller closes the plan.
func (o *packOptions) planReleases(ctx context.Context, env *environment, client *registry.Client) (*mirror.Plan, map[digest.Digest][]signature.Accepted, *graphPick, error) {
	refs, pick, err := o.selectReleases(ctx, env, client)
	if err != nil {
		return nil, nil, nil, err
	}
	signed := map[digest.Digest][]signature.Accepted{}
	if len(refs) > 0 {
		if signed, err = o.resolveAndVerify(ctx, env, client, refs); err != nil {
			return nil, nil, nil, err
		}
	}
	mode, err := o.sigstore.parse()
	if err != nil {
		return nil, nil, nil, err
	}
	catalogs, err := o.operators.selections()
	if err != nil {
		return nil, nil, nil, err
	}
	planner := &mirror.Planner{Registry: client, Parallel: o.parallel, SigstoreMode: mode, Progress: o.progress(env),
		Catalogs: catalogs, CatalogFilter: catalog.FilterOptions{SkipDependencies: o.operators.skipDependencies}}
	if err := o.extras.configure(ctx, env, &o.registry.net, o.arch, planner); err != nil {
		return nil, nil, nil, err
	}
	if len(catalogs) > 0 {
		if planner.ImageSignatures, err = o.operators.imageSignatures(env, &o.registry.net, &o.trust); err != nil {
			return nil, nil, nil, err
		}
	}
	plan, err := planner.Plan(ctx, refs)
	var blocked *mirror.BlockedError
	if errors.As(err, &blocked) {
		return nil, nil, nil, usageError(err)
	}
	var invalid *signature.InvalidImageSignaturesError
	if errors.As(err, &invalid) {
		return nil, nil, nil, verificationError(err)
	}
	var refused *sigstore.RefusedImagesError
	if errors.As(err, &refused) {
		return nil, nil, nil, verificationError(fmt.Errorf("%w\npack with --sigstore best-effort to carry the release anyway (each gap recorded), "+
			"or get the missing signatures into the source registry", err))
	}
	if err != nil {
		return nil, nil, nil, err
	}
	logSigstore(env, plan)
	logCatalogs(env, plan)
	logExtras(env, plan)
	if pick != nil {
		if err := pick.checkArch(plan); err != nil {
			return nil, nil, nil, errors.Join(err, plan.Close())
		}
	}
	return plan, signed, pick, nil
}

func (o *packOptions) selectReleases(ctx context.Context, env *environment, client *registry.Client) ([]release.Ref, *graphPick, error) {
	if !o.graph.active() {
		refs, err := parseRefs(o.releases, o.arch, o.archSet)
		if err != nil {
			return nil, nil, err
		}
		fromFile, err := o.configRefs()
		return append(refs, fromFile...), nil, err
	}
	pick, err := o.graph.pick(ctx, env, &o.registry.net, o.arch)
	if err != nil {
		return nil, nil, err
	}
	if err := pick.crossCheck(ctx, env, client); err != nil {
		return nil, nil, err
	}
	return pick.refs, pick, nil
}

// parseRefs reads RELEASE arguments. --arch expands bare versions; a pull
// spec is checked against it only when the user gave it.
func parseRefs(args []string, arch string, archSet bool) ([]release.Ref, error) {
	refs := make([]release.Ref, 0, len(args))
	for _, a := range args {
		ref, err := parseRef(a, arch, archSet)
		if err != nil {
			return nil, usageError(err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

func parseRef(s, arch string, archSet bool) (release.Ref, error) {
	if archSet || release.IsVersion(s) {
		return release.ParseRef(s, arch)
	}
	return release.ParseRef(s, "")
}

// resolveAndVerify pins every release to its digest and fetches its
// signatures before anything else is read, so an unsigned release fails
// fast and the packed digest is the verified one.
func (o *packOptions) resolveAndVerify(ctx context.Context, env *environment, client *registry.Client, refs []release.Ref) (map[digest.Digest][]signature.Accepted, error) {
	keyring, keyErr := o.trust.releaseKeyring(env)
	if keyErr != nil && !o.allowUnsigned {
		return nil, keyErr
	}
	step := beginStep(o.progress(env), "resolving "+plural(len(refs), "release"))
	for i, ref := range refs {
		m, err := client.Resolve(ctx, ref.String())
		if err != nil {
			step.Done("", err)
			return nil, fmt.Errorf("resolve release %s: %w", describeRef(ref), err)
		}
		refs[i].Digest = m.Digest
	}
	step.Done(resolvedFigure(refs), nil)
	signed := map[digest.Digest][]signature.Accepted{}
	if keyErr != nil {
		for _, ref := range refs {
			env.log.Warn("packing without signature verification", "release", ref.String(), "reason", keyErr)
		}
		return signed, nil
	}
	step = beginStep(o.progress(env), "fetching and verifying signatures")
	for _, ref := range refs {
		accepted, err := fetchVerifiedSignatures(ctx, env, &o.registry.net, o.trust.stores.Value(), keyring, ref.Digest)
		if err != nil {
			if !o.allowUnsigned {
				step.Done("", err)
				return nil, fmt.Errorf("release %s: %w (use --allow-unsigned to pack it anyway)", describeRef(ref), err)
			}
			env.log.Warn("release is UNSIGNED; packing it because of --allow-unsigned", "release", ref.String(), "error", err)
			continue
		}
		signed[ref.Digest] = accepted
	}
	step.Done(signedFigure(signed, len(refs)), nil)
	return signed, nil
}

// describeRef names a release for messages: its pull spec, after its
// version when the pull spec does not say it (a release from the graph).
func describeRef(ref release.Ref) string {
	if ref.Version != "" && ref.Tag == "" {
		return ref.Version + " (" + ref.String() + ")"
	}
	return ref.String()
}

// printPlan is --dry-run's output.
func printPlan(env *environment, plan *mirror.Plan, blobs []*mirror.Blob, prereqs []bundle.Prerequisite, asJSON bool) error {
	carried, leftOut := pack.BlobBytes(blobs), pack.PrerequisiteBytes(prereqs)
	if asJSON {
		type blob struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		}
		out := struct {
			Releases      []string `json:"releases"`
			Catalogs      []string `json:"catalogs,omitempty"`
			Images        int      `json:"images"`
			Blobs         []blob   `json:"blobs"`
			Bytes         int64    `json:"bytes"`
			Prerequisites []blob   `json:"prerequisites,omitempty"`
			LeftOutBytes  int64    `json:"prerequisiteBytes,omitempty"`
		}{Images: len(plan.Images), Bytes: carried, LeftOutBytes: leftOut}
		for _, r := range plan.Releases {
			out.Releases = append(out.Releases, r.Tag()+" "+r.PullSpec())
		}
		for _, c := range plan.Catalogs {
			out.Catalogs = append(out.Catalogs, c.Selection.Catalog+" -> "+c.Tag)
		}
		for _, b := range blobs {
			out.Blobs = append(out.Blobs, blob{b.Digest.String(), b.Size})
		}
		for _, p := range prereqs {
			out.Prerequisites = append(out.Prerequisites, blob{p.Digest.String(), p.Size})
		}
		return json.NewEncoder(env.stdout).Encode(out)
	}
	for _, r := range plan.Releases {
		fmt.Fprintf(env.stdout, "release %s  %s  (%d components)\n", r.Tag(), r.PullSpec(), len(r.Components))
	}
	for _, c := range plan.Catalogs {
		fmt.Fprintf(env.stdout, "catalog %s  %s@%s  (%d packages, %d images) -> tag %s\n", c.Selection.Catalog,
			c.Source.Repository, c.Rebuilt.Digest, len(c.Report.Packages), len(c.Images), c.Tag)
	}
	for _, img := range plan.Images {
		fmt.Fprintf(env.stdout, "  %-9s %s@%s %v\n", img.Role, img.Repository, img.Digest, img.Tags)
	}
	fmt.Fprintf(env.stdout, "would pack %d images, %d unique blobs, %s\n", len(plan.Images), len(blobs), formatBytes(carried))
	if len(prereqs) > 0 {
		fmt.Fprintf(env.stdout, "would leave out %d blobs (%s) the mirror holds\n", len(prereqs), formatBytes(leftOut))
	}
	return nil
}
