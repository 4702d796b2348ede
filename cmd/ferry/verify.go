package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/sigstore"
	"github.com/ferryhq/ferry/mirror/trust"
)

type verifyOptions struct {
	bundle        string
	volumes       []string
	allowUnsigned bool
	quiet         bool
	json          bool
	trust         trustFlags
	proof         proofFlags
}

func verifyCommand(env *environment) *cli.Command {
	o := &verifyOptions{}
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a bundle offline: every byte, every digest, every signature",
		ArgsUsage: "BUNDLE [VOLUME...]",
		Description: `Reads the whole bundle without any network access and checks: every file's size
and sha256 against the index, every blob's digest, every manifest parses and references
only blobs present, nothing unexpected in the tar, the signatures verify under the
keyring, the ConfigMaps hold exactly those signatures, and each release image's
image-references names exactly the components carried. Volumes are found beside BUNDLE
by name, or given after it in any order. Exits 0 when everything holds, 3 with a report
of every fault otherwise, 1 when BUNDLE is not there or cannot be read.

Examples:
  ferry verify bundle.tar --keyring redhat-release.asc
  ferry verify /media/usb/bundle.tar /media/usb2/bundle.001.tar --json`,
		Flags: append([]cli.Flag{
			o.trust.keyringFlag(),
			o.trust.betaKeyFlag(),
			&cli.BoolFlag{Name: "allow-unsigned", Usage: "accept releases packed without signatures", Destination: &o.allowUnsigned, Category: "Signatures"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &o.quiet},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON", Destination: &o.json},
		}, o.proof.flags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageError(errors.New("expected a BUNDLE; see `ferry verify --help`"))
			}
			o.bundle, o.volumes = c.Args().First(), c.Args().Tail()
			return o.run(c.Context, env)
		},
	}
}

// verifyResult is verify's report.
type verifyResult struct {
	Bundle     string   `json:"bundle"`
	ID         string   `json:"id,omitempty"`
	OK         bool     `json:"ok"`
	Files      int      `json:"files"`
	Bytes      int64    `json:"bytes"`
	Faults     []string `json:"faults"`
	Unverified []string `json:"unverified,omitempty"`
	Signatures []string `json:"signatures,omitempty"`
	// BundleSigner is who signed the bundle, when --bundle-keyring
	// verified its signature.
	BundleSigner *signature.Signer `json:"bundleSigner,omitempty"`
	// Images counts the manifests proven, by proof.
	Images map[trust.Proof]int `json:"images,omitempty"`
	// Sigstore is what was proven of the signatures the releases' image
	// policies demand (4.21+ payloads).
	Sigstore *sigstoreSummary `json:"sigstore,omitempty"`
	// Hints say what the user can do about the faults.
	Hints []string `json:"hints,omitempty"`
}

func (o *verifyOptions) run(ctx context.Context, env *environment) error {
	if err := checkBundleArgs(o.bundle, o.volumes); err != nil {
		return err
	}
	keyring, err := o.keyring(env)
	if err != nil {
		return err
	}
	opts, err := o.proof.trustOptions(keyring, o.allowUnsigned)
	if err != nil {
		return err
	}
	res, err := verifyBundle(ctx, env, o.bundle, o.volumes, opts, progressFor(o.quiet, o.json))
	if err != nil {
		return err
	}
	if o.json {
		if err := json.NewEncoder(env.stdout).Encode(res); err != nil {
			return err
		}
	} else {
		res.print(env)
	}
	if !res.OK {
		return verificationError(fmt.Errorf("bundle %s did not verify: %d fault(s)", o.bundle, len(res.Faults)))
	}
	return nil
}

// keyring is the --keyring or the default, or none when unsigned bundles
// are accepted and the default cannot be read.
func (o *verifyOptions) keyring(env *environment) (*signature.Keyring, error) {
	kr, err := o.trust.releaseKeyring(env)
	if err != nil && o.allowUnsigned && len(o.trust.keyrings.Value()) == 0 {
		return nil, nil
	}
	return kr, err
}

// verifyBundle runs the integrity and trust checks and reports every fault;
// the error is for failing to run them at all.
func verifyBundle(ctx context.Context, env *environment, path string, volumes []string, opts trust.Options, mode progressMode) (*verifyResult, error) {
	r, err := bundle.Open(path, bundle.ReadOptions{Volumes: volumes})
	if err != nil {
		return &verifyResult{Bundle: path, Faults: []string{err.Error()}}, nil
	}
	defer r.Close()
	res, _, err := verifyOpened(ctx, env, r, path, opts, mode)
	return res, err
}

// verifyOpened is verifyBundle on a bundle already open; it also returns
// what the trust check proved, for apply.
func verifyOpened(ctx context.Context, env *environment, r *bundle.Reader, path string, opts trust.Options, mode progressMode) (*verifyResult, *trust.Report, error) {
	res := &verifyResult{Bundle: path, Faults: []string{}, ID: r.Index().ID}
	progress, endProgress := verifyProgress(newPhaseProgress(env, mode, 1))
	rep, err := r.Verify(ctx, progress)
	endProgress(err)
	if err != nil {
		return nil, nil, err
	}
	res.Files, res.Bytes = rep.Files, rep.Bytes
	for _, f := range rep.Faults {
		res.Faults = append(res.Faults, f.String())
	}
	if rep.Omitted > 0 {
		res.Faults = append(res.Faults, fmt.Sprintf("... and %d more faults", rep.Omitted))
	}
	step := beginStep(newPhaseProgress(env, mode, 1), "proving the chain of trust")
	proof := trust.Check(ctx, r, opts)
	step.Done(proofFigure(proof), nil)
	res.Faults = append(res.Faults, proof.Faults...)
	if proof.Omitted > 0 {
		res.Faults = append(res.Faults, fmt.Sprintf("... and %d more proof faults", proof.Omitted))
	}
	res.Unverified, res.Signatures, res.BundleSigner = proof.Unverified, proof.Signatures, proof.BundleSigner
	if proof.RefusedUnsigned > 0 {
		res.Hints = append(res.Hints, "--allow-unsigned accepts releases packed without signatures (each is listed as UNVERIFIED)")
	}
	if proof.RefusedUnproven > 0 {
		res.Hints = append(res.Hints, "if the packer signed the bundle, pass its key with --bundle-keyring; --allow-unproven accepts unproven content (each item is listed as UNVERIFIED)")
	}
	res.Sigstore = summarizeSigstore(proof.Sigstore)
	if res.Sigstore != nil && len(res.Sigstore.Gaps) > 0 && res.Sigstore.Mode == string(sigstore.Required) {
		res.Hints = append(res.Hints, "--sigstore best-effort pushes the release anyway (the nodes will refuse to run the images named); "+
			"better, pack again once the source registry holds their signatures")
	}
	res.Images = map[trust.Proof]int{}
	for _, img := range proof.Images {
		res.Images[img.Proof]++
	}
	res.OK = len(res.Faults) == 0
	return res, proof, nil
}

// print writes the report for people; every string that came from the
// bundle is cleaned of terminal control characters.
func (res *verifyResult) print(env *environment) {
	if res.BundleSigner != nil {
		fmt.Fprintf(env.stdout, "bundle signature ok: %s\n", safetext.Clean(res.BundleSigner.String()))
	}
	for _, s := range res.Signatures {
		fmt.Fprintf(env.stdout, "signature ok: %s\n", safetext.Clean(s))
	}
	res.Sigstore.print(env)
	for _, u := range res.Unverified {
		fmt.Fprintf(env.stdout, "UNVERIFIED: %s\n", safetext.Clean(u))
	}
	for _, f := range res.Faults {
		fmt.Fprintf(env.stdout, "FAULT: %s\n", safetext.Clean(f))
	}
	for _, h := range res.Hints {
		fmt.Fprintf(env.stdout, "hint: %s\n", h)
	}
	if res.OK {
		fmt.Fprintf(env.stdout, "bundle %s verified: %d files, %s; %s\n", safetext.Clean(res.Bundle), res.Files, formatBytes(res.Bytes), res.proofSummary())
	}
}

// proofSummary says how many images each proof covers.
func (res *verifyResult) proofSummary() string {
	var parts []string
	for _, p := range []struct {
		proof trust.Proof
		label string
	}{{trust.ReleaseChain, "proven by the release chain"}, {trust.BundleSignature, "by the bundle signature"}, {trust.Unproven, "accepted UNPROVEN"}} {
		if n := res.Images[p.proof]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d images %s", n, p.label))
		}
	}
	if len(parts) == 0 {
		return "no images"
	}
	return strings.Join(parts, ", ")
}
