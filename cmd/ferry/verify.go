package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/signature"
)

type verifyOptions struct {
	bundle        string
	volumes       []string
	allowUnsigned bool
	quiet         bool
	json          bool
	trust         trustFlags
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
of every fault otherwise.

Examples:
  ferry verify bundle.tar --keyring redhat-release.asc
  ferry verify /media/usb/bundle.tar /media/usb2/bundle.001.tar --json`,
		Flags: []cli.Flag{
			o.trust.keyringFlag(),
			&cli.BoolFlag{Name: "allow-unsigned", Usage: "accept releases packed without signatures", Destination: &o.allowUnsigned},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress", Destination: &o.quiet},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON", Destination: &o.json},
		},
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
}

func (o *verifyOptions) run(ctx context.Context, env *environment) error {
	if err := checkBundleArgs(o.bundle, o.volumes); err != nil {
		return err
	}
	keyring, err := o.keyring()
	if err != nil {
		return err
	}
	res, err := verifyBundle(ctx, env, o.bundle, o.volumes, keyring, o.allowUnsigned, o.quiet)
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

// keyring is the --keyring, the RHEL default, or none when unsigned
// bundles are accepted and no key is at hand.
func (o *verifyOptions) keyring() (*signature.Keyring, error) {
	kr, err := loadKeyring(o.trust.keyrings.Value())
	if err != nil && o.allowUnsigned && len(o.trust.keyrings.Value()) == 0 {
		return nil, nil
	}
	return kr, err
}

// verifyBundle runs the integrity and trust checks and reports every fault;
// the error is for failing to run them at all.
func verifyBundle(ctx context.Context, env *environment, path string, volumes []string, keyring *signature.Keyring, allowUnsigned, quiet bool) (*verifyResult, error) {
	r, err := bundle.Open(path, bundle.ReadOptions{Volumes: volumes})
	if err != nil {
		return &verifyResult{Bundle: path, Faults: []string{err.Error()}}, nil
	}
	defer r.Close()
	return verifyOpened(ctx, env, r, path, keyring, allowUnsigned, quiet)
}

// verifyOpened is verifyBundle on a bundle already open.
func verifyOpened(ctx context.Context, env *environment, r *bundle.Reader, path string, keyring *signature.Keyring, allowUnsigned, quiet bool) (*verifyResult, error) {
	res := &verifyResult{Bundle: path, Faults: []string{}, ID: r.Index().ID}
	var total int64
	for _, f := range r.Index().Files {
		total += f.Size
	}
	prog := newProgress(env, quiet, "verify", total, 1)
	item := prog.item("bundle", total)
	var last int64
	rep, err := r.Verify(ctx, func(done, _ int64) {
		item.add(int(done - last))
		last = done
	})
	item.done(err)
	prog.finish()
	if err != nil {
		return nil, err
	}
	res.Files, res.Bytes = rep.Files, rep.Bytes
	for _, f := range rep.Faults {
		res.Faults = append(res.Faults, f.String())
	}
	if rep.Omitted > 0 {
		res.Faults = append(res.Faults, fmt.Sprintf("... and %d more faults", rep.Omitted))
	}
	trust := checkTrust(ctx, r, keyring, allowUnsigned)
	res.Faults = append(res.Faults, trust.Faults...)
	res.Unverified, res.Signatures = trust.Unverified, trust.Signatures
	res.OK = len(res.Faults) == 0
	return res, nil
}

func (res *verifyResult) print(env *environment) {
	for _, s := range res.Signatures {
		fmt.Fprintf(env.stdout, "signature ok: %s\n", s)
	}
	for _, u := range res.Unverified {
		fmt.Fprintf(env.stdout, "UNVERIFIED: %s\n", u)
	}
	for _, f := range res.Faults {
		fmt.Fprintf(env.stdout, "FAULT: %s\n", f)
	}
	if res.OK {
		fmt.Fprintf(env.stdout, "bundle %s verified: %d files, %s\n", res.Bundle, res.Files, formatBytes(res.Bytes))
	}
}
