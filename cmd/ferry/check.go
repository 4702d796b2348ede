package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/admission"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/sigstore"
	"github.com/ferryhq/ferry/mirror/trust"
)

// defaultSigstoreAck is the admin-ack a 4.20 cluster with mirror sets
// needs before it may update to 4.21, the first release whose nodes
// require Sigstore signatures for the release image.
const defaultSigstoreAck = "ack-4.20-sigstore-in-4.21"

// maxPolicyFileSize caps a --policy file: a policy is a few KB.
const maxPolicyFileSize = 1 << 20

type checkOptions struct {
	bundle        string
	volumes       []string
	kubeconfig    string
	policyFiles   cli.StringSlice
	allowUnsigned bool
	parallel      int
	quiet         bool
	json          bool
	registry      registryFlags
	trust         trustFlags
	proof         proofFlags
}

func checkCommand(env *environment) *cli.Command {
	o := &checkOptions{registry: registryFlags{prefix: "dest"}}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "the cluster to check (default: $KUBECONFIG, ~/.kube/config)", Destination: &o.kubeconfig, Category: "Cluster"},
		&cli.StringSliceFlag{Name: "policy", Usage: "also enforce the ClusterImagePolicy and ImagePolicy objects in `FILE`, as the nodes would (repeatable): " +
			"ones the cluster's admin created, say", Destination: &o.policyFiles, Category: "Signatures"},
		&cli.BoolFlag{Name: "allow-unsigned", Usage: "accept releases packed without signatures", Destination: &o.allowUnsigned, Category: "Signatures"},
		&cli.IntFlag{Name: "parallel", Value: admission.DefaultParallel, Usage: "images checked at once", Destination: &o.parallel},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &o.quiet},
		&cli.BoolFlag{Name: "json", Usage: "print the report as JSON", Destination: &o.json},
		o.trust.keyringFlag(),
	}
	flags = append(flags, o.proof.flags()...)
	flags = append(flags, o.registry.flags()...)
	return &cli.Command{
		Name:      "check",
		Usage:     "prove that the cluster's nodes will run a bundle's release through its mirrors (Sigstore signatures, admin-ack)",
		ArgsUsage: "BUNDLE [VOLUME...]",
		Description: `From OpenShift 4.21 every node refuses to start a container from an image in the
scope of the release's ClusterImagePolicy unless a Sigstore (cosign) signature by the
policy's key verifies. Through a mirror, the node reads the sha256-<hex>.sig tag from
the mirror repository the cluster's ImageDigestMirrorSet sends it to, and matches the
signed name against the source name. A 4.20 cluster with mirror sets therefore asks
for the admin-ack ack-4.20-sigstore-in-4.21 before it updates: "the mirrors hold the
signatures". This command answers that question instead of trusting it.

It proves the bundle as 'ferry apply' does, takes its newest release and the image
policies it ships (and --policy), reads the cluster's ClusterVersion, mirror sets
(ImageDigestMirrorSet, ImageTagMirrorSet, ImageContentSourcePolicy) and admin-ack
ConfigMaps, and then, for every image in a policy's scope and every mirror a node
would pull it from, runs the node's own check (containers/image's policy engine,
routed to that one mirror, never falling back to the source). It prints per mirror
whether the signatures are there and valid, and whether the admin-ack can be given,
with the exact 'oc patch' command.

Exits 0 when every mirror holds valid signatures (or nothing needs them), 3 when a
mirror lacks them or holds ones the node would refuse, 1 when a mirror or the
cluster could not be read, 2 on a usage error. Run it after 'ferry apply', before
giving the ack and before 'oc adm upgrade'.

Examples:
  ferry check bundle.tar --kubeconfig ~/kubeconfig
  ferry check bundle.tar --kubeconfig ~/kubeconfig --authfile mirror-auth.json --cert-dir /etc/pki/mirror
  ferry check bundle.tar --kubeconfig ~/kubeconfig --json | jq .adminAck`,
		Flags:       flags,
		Subcommands: []*cli.Command{checkOperatorsCommand(env)},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageError(errors.New("expected a BUNDLE; see `ferry check --help`"))
			}
			o.bundle, o.volumes = c.Args().First(), c.Args().Tail()
			return o.run(c.Context, env)
		},
	}
}

func (o *checkOptions) run(ctx context.Context, env *environment) error {
	if o.parallel < 1 {
		return usageError(errors.New("--parallel must be at least 1"))
	}
	if err := checkBundleArgs(o.bundle, o.volumes); err != nil {
		return err
	}
	extra, err := loadPolicyFiles(o.policyFiles.Value())
	if err != nil {
		return err
	}
	if err := o.trust.checkGivenKeyrings(env); err != nil {
		return err
	}
	applier, err := o.registry.net.applier(o.kubeconfig)
	if err != nil {
		return fileArgError(err)
	}
	proof, err := o.prove(ctx, env, applier)
	if err != nil {
		return err
	}
	target, err := targetOf(proof)
	if err != nil {
		return verificationError(err)
	}
	cluster, err := applier.ReadCluster(ctx)
	if err != nil {
		return err
	}
	rep, err := checkAdmission(ctx, admissionInput{
		Policies: append(releasePolicies(proof, target.Version), extra...),
		Target:   target,
		Cluster:  cluster,
		Mirrors:  mirrorSetsOf(cluster),
		Registry: o.registry.options(env),
		Parallel: o.parallel,
	})
	if err != nil {
		return err
	}
	if o.json {
		if err := jsonEncode(env.stdout, rep); err != nil {
			return err
		}
	} else {
		rep.print(env)
	}
	return rep.err()
}

// prove verifies the bundle as apply does, with the same keys, and
// returns what it proves.
func (o *checkOptions) prove(ctx context.Context, env *environment, applier *manifests.Applier) (*trust.Report, error) {
	r, err := bundle.Open(o.bundle, bundle.ReadOptions{Volumes: o.volumes})
	if err != nil {
		return nil, verificationError(err)
	}
	defer r.Close()
	keys := &applyOptions{trust: o.trust, allowUnsigned: o.allowUnsigned}
	keyring, err := keys.keyring(ctx, env, applier, r.Index())
	if err != nil {
		return nil, err
	}
	opts, err := o.proof.trustOptions(keyring, o.allowUnsigned)
	if err != nil {
		return nil, err
	}
	res, proof, err := verifyOpened(ctx, env, r, o.bundle, opts, progressFor(o.quiet, o.json))
	if err != nil {
		return nil, err
	}
	if !res.OK {
		res.print(env)
		return nil, verificationError(fmt.Errorf("bundle %s did not verify; nothing was checked", o.bundle))
	}
	for _, u := range res.Unverified {
		env.log.Warn("UNVERIFIED: " + u)
	}
	return proof, nil
}

// releasePolicies are the Sigstore image policies the target release
// ships in release-manifests/, as the proof read them out of its image.
func releasePolicies(proof *trust.Report, version string) []sigstore.Policy {
	if proof.Sigstore == nil {
		return nil
	}
	var out []sigstore.Policy
	for _, rel := range proof.Sigstore.Policies {
		if rel.Version != version {
			continue
		}
		for _, p := range rel.Policies { // each arch's release ships the same
			if !slices.ContainsFunc(out, p.Equal) {
				out = append(out, p)
			}
		}
	}
	return out
}

// loadPolicyFiles reads every ClusterImagePolicy and ImagePolicy of the
// --policy files.
func loadPolicyFiles(paths []string) ([]sigstore.Policy, error) {
	var out []sigstore.Policy
	for _, p := range paths {
		data, err := readSmallFile(p, maxPolicyFileSize)
		if err != nil {
			return nil, fileArgError(fmt.Errorf("--policy: %w", err))
		}
		policies, err := sigstore.ParsePolicies(p, data)
		if err != nil {
			return nil, usageError(fmt.Errorf("--policy: %w", err))
		}
		if len(policies) == 0 {
			return nil, usageError(fmt.Errorf("--policy %s: no ClusterImagePolicy or ImagePolicy in it", p))
		}
		out = append(out, policies...)
	}
	return out, nil
}

// targetRelease is the release a cluster updates to with the bundle: the
// newest proven version, each of its architectures, and the images the
// nodes will run for it.
type targetRelease struct {
	Version string `json:"version"`
	// Releases are the release images (one per architecture) and Images
	// those with every component.
	Releases []admission.Image `json:"releases"`
	Images   []admission.Image `json:"-"`
}

// targetOf picks the newest release proof proves, its release images by
// their digests, and its components by the tags apply gives them
// (<version>-<arch>-<component>).
func targetOf(proof *trust.Report) (*targetRelease, error) {
	if len(proof.Steps) == 0 {
		return nil, errors.New("the bundle holds no proven release to check")
	}
	t := &targetRelease{Version: proof.Steps[0].Version}
	for _, s := range proof.Steps[1:] {
		if release.CompareVersions(s.Version, t.Version) > 0 {
			t.Version = s.Version
		}
	}
	var prefixes []string
	for _, s := range proof.Steps {
		if s.Version != t.Version {
			continue
		}
		prefixes = append(prefixes, s.Version+"-"+s.Arch)
		for _, img := range proof.Images {
			if img.Digest == s.Digest {
				t.Releases = append(t.Releases, admission.Image{Source: img.Source, Digest: img.Digest})
				break
			}
		}
	}
	if len(t.Releases) == 0 {
		return nil, fmt.Errorf("release %s: its image is not among the proven images", t.Version)
	}
	t.Images = slices.Clone(t.Releases)
	for _, img := range proof.Images {
		if !slices.ContainsFunc(t.Releases, func(r admission.Image) bool { return r.Digest == img.Digest }) && tagged(img.Tags, prefixes) {
			t.Images = append(t.Images, admission.Image{Source: img.Source, Digest: img.Digest})
		}
	}
	return t, nil
}

// tagged reports whether a tag is a component tag of one of the
// releases: <version>-<arch>-<component>.
func tagged(tags, releases []string) bool {
	for _, tag := range tags {
		for _, r := range releases {
			if strings.HasPrefix(tag, r+"-") {
				return true
			}
		}
	}
	return false
}

// mirrorSetsOf turns the cluster's mirror rules into the routes nodes
// follow.
func mirrorSetsOf(cluster *manifests.ClusterState) []admission.MirrorSet {
	if cluster == nil {
		return nil
	}
	sets := make([]admission.MirrorSet, 0, len(cluster.Mirrors))
	for _, r := range cluster.Mirrors {
		sets = append(sets, admission.MirrorSet{Source: r.Source, Mirrors: r.Mirrors, TagOnly: r.TagOnly()})
	}
	return sets
}

// renderedMirrorSets are the routes of the mirror sets apply renders:
// each source repository to the one target repository. checkAdmission
// through them, after a push, proves that each .sig sits where nodes
// following those mirror sets will look for it.
func renderedMirrorSets(sources []string, target string) []admission.MirrorSet {
	sets := make([]admission.MirrorSet, 0, len(sources))
	for _, s := range sources {
		sets = append(sets, admission.MirrorSet{Source: s, Mirrors: []string{target}})
	}
	return sets
}

// admissionInput is what checkAdmission judges.
type admissionInput struct {
	// Policies are the image policies the nodes will enforce.
	Policies []sigstore.Policy
	Target   *targetRelease
	// Cluster is what was read of the cluster: its version and admin-ack
	// ConfigMaps; nil when no cluster was read.
	Cluster *manifests.ClusterState
	// Mirrors are the routes nodes will follow: the cluster's
	// (mirrorSetsOf), or the mirror sets apply renders.
	Mirrors  []admission.MirrorSet
	Registry registry.Options
	Parallel int
}

// admissionReport is what checkAdmission found; print and --json show
// the same facts.
type admissionReport struct {
	Target         *targetRelease `json:"target"`
	ClusterVersion string         `json:"clusterVersion,omitempty"`
	// Policies name the policies enforced; InScope counts the target's
	// images in their scope.
	Policies []string `json:"policies"`
	InScope  int      `json:"inScope"`
	// FromSource are the source repositories of in-scope images no mirror
	// set routes: nodes pull them from the source.
	FromSource []string           `json:"fromSource,omitempty"`
	Mirrors    []mirrorSummary    `json:"mirrors"`
	Results    []admission.Result `json:"results"`
	AdminAck   adminAck           `json:"adminAck"`
	// OK: every mirror a node will use holds valid signatures for every
	// in-scope image. Failed counts mirrors that could not be read.
	OK     bool `json:"ok"`
	Failed int  `json:"failed,omitempty"`
	// Problems say, one line each, what is wrong.
	Problems []string `json:"problems,omitempty"`
	firstErr error
}

// mirrorSummary is one mirror repository's answers.
type mirrorSummary struct {
	Mirror string `json:"mirror"`
	// Counts by admission status.
	Counts map[admission.Status]int `json:"counts"`
	OK     bool                     `json:"ok"`
}

// adminAck says whether the Sigstore admin-ack can be given.
type adminAck struct {
	Key string `json:"key"`
	// Gate is the admin-gates message for Key, when the cluster has it.
	Gate string `json:"gate,omitempty"`
	// Needed: the cluster will ask for it before this update; NotNeeded
	// says why not.
	Needed    bool   `json:"needed"`
	NotNeeded string `json:"notNeeded,omitempty"`
	Given     bool   `json:"given"`
	CanGive   bool   `json:"canGive"`
	Command   string `json:"command"`
	Reason    string `json:"reason"`
}

// checkAdmission runs the nodes' Sigstore check for the target release
// through every mirror in.Mirrors routes its in-scope images to, and
// decides the admin-ack. An error means the check could not run; a mirror
// that could not be read is in the report (Failed).
func checkAdmission(ctx context.Context, in admissionInput) (*admissionReport, error) {
	rep := &admissionReport{Target: in.Target, Policies: []string{}, Mirrors: []mirrorSummary{}, Results: []admission.Result{}}
	for i := range in.Policies {
		rep.Policies = append(rep.Policies, in.Policies[i].ID())
	}
	if in.Cluster != nil && in.Cluster.Version != nil {
		rep.ClusterVersion = in.Cluster.Version.Completed()
	}
	results, err := admission.Check(ctx, in.Policies, in.Mirrors, in.Target.Images, admission.Options{Registry: in.Registry, Parallel: in.Parallel})
	if err != nil {
		return nil, err
	}
	for _, r := range results {
		if r.Status != admission.OutOfScope {
			rep.Results = append(rep.Results, r)
		}
	}
	rep.judge()
	rep.AdminAck = decideAck(in.Cluster, rep)
	return rep, nil
}

// judge sums the results up per mirror and per image.
func (rep *admissionReport) judge() {
	mirrorAt := map[string]int{}
	byImage := map[admission.Image][]admission.Status{}
	var images []admission.Image
	for _, r := range rep.Results {
		if _, seen := byImage[r.Image]; !seen {
			images = append(images, r.Image)
		}
		byImage[r.Image] = append(byImage[r.Image], r.Status)
		if r.Status == admission.NoMirror {
			if !slices.Contains(rep.FromSource, r.Image.Source) {
				rep.FromSource = append(rep.FromSource, r.Image.Source)
			}
			continue
		}
		i, seen := mirrorAt[r.Mirror]
		if !seen {
			i = len(rep.Mirrors)
			mirrorAt[r.Mirror] = i
			rep.Mirrors = append(rep.Mirrors, mirrorSummary{Mirror: r.Mirror, Counts: map[admission.Status]int{}, OK: true})
		}
		m := &rep.Mirrors[i]
		m.Counts[r.Status]++
		switch r.Status {
		case admission.Refused, admission.Unprovable, admission.Failed:
			if m.OK && r.Status == admission.Failed {
				rep.Failed++
			}
			m.OK = false
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s via %s: %s: %s", r.Image, r.Mirror, r.Status, r.Reason))
		}
		if r.Status == admission.Failed && rep.firstErr == nil {
			rep.firstErr = r.Err
		}
	}
	for _, img := range images {
		// Nodes skip a mirror without the image; one must have it.
		if st := byImage[img]; !slices.ContainsFunc(st, func(s admission.Status) bool { return s != admission.Absent }) {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: no mirror holds it", img))
		}
	}
	rep.InScope = len(images)
	rep.OK = len(rep.Problems) == 0
}

// decideAck says whether the Sigstore admin-ack can be given: when every
// mirror the nodes will use holds valid signatures, or nodes pull from
// the source. The ack is needed when the cluster lists the gate in
// admin-gates, or is a 4.20 cluster, and updates into a later minor.
func decideAck(cluster *manifests.ClusterState, rep *admissionReport) adminAck {
	targetMinor := minorOf(rep.Target.Version)
	ack := adminAck{Key: defaultSigstoreAck}
	gated := false
	if cluster != nil {
		ack.Key, ack.Gate, gated = sigstoreGate(cluster.AdminGates, targetMinor)
		ack.Given = cluster.AdminAcks[ack.Key] == "true"
	}
	current := minorOf(rep.ClusterVersion)
	crossing := current == "" || targetMinor == "" || release.CompareVersions(current+".0", targetMinor+".0") < 0
	switch {
	case !crossing:
		ack.NotNeeded = "the cluster is at " + current + " already"
	case !gated && current != "4.20":
		ack.NotNeeded = "the cluster's admin-gates do not list it"
	default:
		ack.Needed = true
	}
	ack.Command = fmt.Sprintf(`oc -n %s patch configmap %s --type=merge --patch '{"data":{%q:"true"}}'`,
		manifests.AdminAcksNamespace, manifests.AdminAcksConfigMap, ack.Key)
	switch {
	case rep.InScope == 0:
		ack.CanGive = true
		ack.Reason = "no image of release " + rep.Target.Version + " is in the scope of an image policy: nodes will not ask for Sigstore signatures"
	case rep.Failed > 0:
		ack.Reason = fmt.Sprintf("%d mirror(s) could not be read: nothing can be said of them", rep.Failed)
	case !rep.OK:
		ack.Reason = fmt.Sprintf("nodes would refuse images of release %s: %d problem(s) above", rep.Target.Version, len(rep.Problems))
	case len(rep.Mirrors) == 0:
		ack.CanGive = true
		ack.Reason = "the cluster has no mirror set for the images in scope: nodes pull them from the source (" + strings.Join(rep.FromSource, ", ") + ")"
	default:
		ack.CanGive = true
		ack.Reason = fmt.Sprintf("every mirror nodes will pull the %d image(s) in scope from holds valid signatures", rep.InScope)
	}
	return ack
}

// sigstoreGate finds the Sigstore gate among the cluster's admin-gates:
// the key naming sigstore that leads into targetMinor, else any naming
// sigstore; found is false, and key defaultSigstoreAck, without one.
func sigstoreGate(gates map[string]string, targetMinor string) (key, message string, found bool) {
	var keys []string
	for k := range gates {
		if strings.Contains(strings.ToLower(k), "sigstore") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return defaultSigstoreAck, "", false
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasSuffix(k, "-in-"+targetMinor) {
			return k, gates[k], true
		}
	}
	return keys[0], gates[keys[0]], true
}

// minorOf is "4.21" of "4.21.3"; "" when v is not a version.
func minorOf(v string) string {
	major, rest, ok := strings.Cut(v, ".")
	if !ok || major == "" {
		return ""
	}
	minor, _, _ := strings.Cut(rest, ".")
	minor, _, _ = strings.Cut(minor, "-")
	if minor == "" || strings.Trim(major+minor, "0123456789") != "" {
		return ""
	}
	return major + "." + minor
}

// err is the command's outcome: exit 1 when a mirror could not be read,
// 3 when one lacks valid signatures.
func (rep *admissionReport) err() error {
	switch {
	case rep.Failed > 0:
		return withHint(fmt.Errorf("%d mirror(s) could not be read: %w", rep.Failed, rep.firstErr))
	case !rep.OK:
		return verificationError(fmt.Errorf("nodes would refuse images of release %s through the cluster's mirrors; do not give the admin-ack %s yet",
			rep.Target.Version, rep.AdminAck.Key))
	}
	return nil
}

// print writes the report for people. Names and reasons that came from
// the cluster or a registry are cleaned of control characters.
func (rep *admissionReport) print(env *environment) {
	out := env.stdout
	cluster := "unknown version"
	if rep.ClusterVersion != "" {
		cluster = safetext.Clean(rep.ClusterVersion)
	}
	fmt.Fprintf(out, "target release %s (%d image(s)); the cluster is at %s\n", rep.Target.Version, len(rep.Target.Images), cluster)
	if len(rep.Policies) == 0 {
		fmt.Fprintf(out, "no image policy: the release ships none, and --policy gave none\n")
	} else {
		fmt.Fprintf(out, "image policies: %s; %d image(s) in their scope\n", strings.Join(safetext.Lines(rep.Policies), ", "), rep.InScope)
	}
	if len(rep.FromSource) > 0 {
		fmt.Fprintf(out, "no mirror set routes %s: nodes pull from the source\n", strings.Join(safetext.Lines(rep.FromSource), ", "))
	}
	for _, m := range rep.Mirrors {
		verdict := "signatures present and valid"
		if !m.OK {
			verdict = "MISSING OR INVALID signatures"
		}
		fmt.Fprintf(out, "mirror %s: %s (%s)\n", safetext.Clean(m.Mirror), verdict, countsText(m.Counts))
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(out, "  %s\n", safetext.Clean(p))
	}
	rep.AdminAck.print(env)
}

func countsText(counts map[admission.Status]int) string {
	var parts []string
	for _, s := range []admission.Status{admission.Allowed, admission.Refused, admission.Unprovable, admission.Absent, admission.Failed} {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return strings.Join(parts, ", ")
}

func (a *adminAck) print(env *environment) {
	out := env.stdout
	key := safetext.Clean(a.Key)
	switch {
	case !a.Needed:
		fmt.Fprintf(out, "admin-ack %s: not needed for this update (%s); %s\n", key, safetext.Clean(a.NotNeeded), a.Reason)
	case a.Given && a.CanGive:
		fmt.Fprintf(out, "admin-ack %s: given already, rightly: %s\n", key, a.Reason)
	case a.Given:
		fmt.Fprintf(out, "admin-ack %s: GIVEN, but it should not be: %s\n", key, a.Reason)
	case a.CanGive:
		fmt.Fprintf(out, "admin-ack %s can be given: %s\n  %s\n", key, a.Reason, a.Command)
	default:
		fmt.Fprintf(out, "admin-ack %s must NOT be given yet: %s\n", key, a.Reason)
	}
}
