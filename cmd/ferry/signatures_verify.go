package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/internal/regularfile"
	"github.com/ferryhq/ferry/mirror/signature"
)

type signaturesVerifyOptions struct {
	digest string
	json   bool
	trust  trustFlags
}

func signaturesVerifyCommand(env *environment) *cli.Command {
	opts := &signaturesVerifyOptions{}
	return &cli.Command{
		Name:      "verify",
		Usage:     "check signature files offline against a digest and a keyring",
		ArgsUsage: "FILE...",
		Description: `Checks each FILE by the cluster-version-operator's rules and prints whether it
verifies, the signing key, the identity and the creator. Exits 0 only when every
file verifies, 3 when any does not, 1 when a FILE is missing or cannot be read.

Example:
  ferry signatures verify --digest sha256:0da6...6363 --keyring redhat-release.asc mirror/signatures/sha256=0da6...6363/signature-1`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "digest", Usage: "the release digest `sha256:<hex>` the signatures must sign", Destination: &opts.digest},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per file instead of text", Destination: &opts.json},
			opts.trust.keyringFlag(),
			opts.trust.betaKeyFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageError(fmt.Errorf("expected at least one signature FILE; see `ferry signatures verify --help`"))
			}
			if opts.digest == "" {
				return usageError(fmt.Errorf("--digest sha256:<hex> is required: the release digest the signatures must sign"))
			}
			return opts.run(c.Context, env, c.Args().Slice())
		},
	}
}

// fileVerdict is one line of `ferry signatures verify` output.
type fileVerdict struct {
	File        string `json:"file"`
	Verified    bool   `json:"verified"`
	KeyID       string `json:"keyID,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Identity    string `json:"identity,omitempty"`
	Creator     string `json:"creator,omitempty"`
	Error       string `json:"error,omitempty"`
}

func (o *signaturesVerifyOptions) run(_ context.Context, env *environment, files []string) error {
	want, err := digest.Parse(o.digest)
	if err != nil || want.Algorithm() != digest.SHA256 {
		return usageError(fmt.Errorf("--digest %q: want sha256:<64 hex>", o.digest))
	}
	for _, file := range files { // a FILE that is not there was not refused, it is missing
		f, err := regularfile.Open(file, "a signature file")
		if err != nil {
			return fileArgError(err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("read %s: %w", file, err)
		}
	}
	keyring, err := o.trust.releaseKeyring(env)
	if err != nil {
		return err
	}
	failed := 0
	enc := json.NewEncoder(env.stdout)
	for _, file := range files {
		v := verifyFile(file, keyring, want)
		if !v.Verified {
			failed++
		}
		if o.json {
			if err := enc.Encode(v); err != nil {
				return err
			}
			continue
		}
		if v.Verified {
			fmt.Fprintf(env.stdout, "%s: verified\n  key:      %s (%s)\n  identity: %s\n  creator:  %s\n", v.File, v.KeyID, v.Fingerprint, v.Identity, v.Creator)
		} else {
			fmt.Fprintf(env.stdout, "%s: NOT verified: %s\n", v.File, v.Error)
		}
	}
	if failed > 0 {
		return verificationError(fmt.Errorf("%d of %d signature files did not verify", failed, len(files)))
	}
	return nil
}

func verifyFile(file string, kr *signature.Keyring, want digest.Digest) fileVerdict {
	v := fileVerdict{File: file}
	data, err := readCapped(file, signature.MaxSignatureSize)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	got, err := signature.Verify(data, kr, want)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Verified, v.KeyID, v.Fingerprint, v.Identity, v.Creator = true, got.KeyID, got.Fingerprint, got.Identity, got.Creator
	return v
}

// readCapped reads a small file, refusing one larger than limit bytes.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := regularfile.Open(path, "a signature file")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, larger than a signature can be (%d)", path, st.Size(), limit)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}
