package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/internal/fileio"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/signature"
)

type signaturesOptions struct {
	release  string
	arch     string
	archSet  bool
	digest   string
	outDir   string
	registry registryFlags
	trust    trustFlags
}

func signaturesCommand(env *environment) *cli.Command {
	opts := &signaturesOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "arch", Value: "x86_64", Usage: "architecture of a release given by version: x86_64 (amd64), aarch64 (arm64), s390x, ppc64le, multi", Destination: &opts.arch},
		&cli.StringFlag{Name: "digest", Usage: "release digest `sha256:<hex>`; skips the registry lookup, and then RELEASE may be left out", Destination: &opts.digest},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "mirror", Usage: "output `DIR`: writes DIR/config/ and DIR/signatures/", Destination: &opts.outDir},
		opts.trust.keyringFlag(),
		opts.trust.betaKeyFlag(),
		opts.trust.storeFlag(),
	}
	flags = append(flags, opts.registry.flags()...)
	return &cli.Command{
		Name:      "signatures",
		Usage:     "fetch, verify and render a release's GPG signatures as the ConfigMap the cluster trusts",
		ArgsUsage: "[RELEASE]",
		Description: `Does the documented "image signature config map" procedure in one command that
cannot write an unverified signature. RELEASE is a pull spec
(quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64, or ...@sha256:<hex>) or a
version with --arch. The release digest comes from the registry, or from --digest,
which needs no RELEASE at all: the ConfigMap and the store paths are named by the
digest alone. The signatures come from each --signature-store in turn and must verify
under the keyring by the cluster-version-operator's rules. Writes
  DIR/config/signature-sha256-<16 hex>.yaml   (oc apply -f it on the cluster)
  DIR/signatures/sha256=<hex>/signature-<N>   (the raw signatures, a file:// store)

What is checked, with or without RELEASE: each signature is made by a key of the
keyring (not expired, not revoked), its payload is an "atomic container signature"
whose docker-manifest-digest equals the digest, and at least one signature passes.
What is not: the payload's docker-reference (printed as "identity"), which the
cluster does not compare either; and, with --digest, that the digest is an image in
any registry (no registry is contacted). RELEASE then only names the release in the
output, and must agree with --digest when it carries a digest itself.

Examples:
  ferry signatures 4.15.0 --keyring redhat-release.asc
  ferry signatures quay.io/openshift-release-dev/ocp-release@sha256:0da6...6363 -o mirror
  ferry signatures --digest sha256:0da6...6363 -o mirror
  ferry signatures 4.15.0 --arch arm64 --digest sha256:... --signature-store file:///media/sigs`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 || (c.NArg() == 0 && opts.digest == "") {
				return usageError(errors.New("expected one RELEASE (a version or a pull spec), or --digest sha256:<hex>; see `ferry signatures --help`"))
			}
			if c.NArg() == 0 && c.IsSet("arch") {
				return usageError(errors.New("--arch names the architecture of a RELEASE given by version; with --digest alone there is none"))
			}
			opts.release, opts.archSet = c.Args().First(), c.IsSet("arch")
			return opts.run(c.Context, env)
		},
		Subcommands: []*cli.Command{signaturesVerifyCommand(env)},
	}
}

func (o *signaturesOptions) run(ctx context.Context, env *environment) error {
	ref, err := o.releaseRef()
	if err != nil {
		return err
	}
	given, err := o.flagDigest(ref)
	if err != nil {
		return err
	}
	if err := checkOutputDir("-o", o.outDir); err != nil {
		return err
	}
	keyring, err := o.trust.releaseKeyring(env)
	if err != nil {
		return err
	}
	want, err := o.releaseDigest(ctx, env, ref, given)
	if err != nil {
		return err
	}
	verified, err := fetchVerifiedSignatures(ctx, env, &o.registry.net, o.trust.stores.Value(), keyring, want)
	if err != nil {
		return err
	}
	written, err := writeSignatureFiles(o.outDir, want, verified)
	if err != nil {
		return err
	}
	if o.release != "" {
		fmt.Fprintf(env.stdout, "release %s\n", ref)
	}
	fmt.Fprintf(env.stdout, "digest  %s\n", want)
	for i, v := range verified {
		fmt.Fprintf(env.stdout, "signature-%d verified: key %s, identity %s, creator %q\n", i+1, v.Verified.KeyID, v.Verified.Identity, v.Verified.Creator)
	}
	for _, p := range written {
		fmt.Fprintf(env.stdout, "wrote %s\n", p)
	}
	return nil
}

// releaseRef is the RELEASE argument parsed, or the zero Ref when only
// --digest names the release.
func (o *signaturesOptions) releaseRef() (release.Ref, error) {
	if o.release == "" {
		return release.Ref{}, nil
	}
	ref, err := parseRef(o.release, o.arch, o.archSet)
	if err != nil {
		return release.Ref{}, usageError(err)
	}
	return ref, nil
}

// flagDigest is --digest parsed ("" when not given); it must agree with
// the digest of a RELEASE pull spec that has one.
func (o *signaturesOptions) flagDigest(ref release.Ref) (digest.Digest, error) {
	if o.digest == "" {
		return "", nil
	}
	d, err := digest.Parse(o.digest)
	if err != nil || d.Algorithm() != digest.SHA256 {
		return "", usageError(fmt.Errorf("--digest %q: want sha256:<64 hex>", o.digest))
	}
	if ref.Digest != "" && ref.Digest != d {
		return "", usageError(fmt.Errorf("--digest %s differs from the pull spec's digest %s", d, ref.Digest))
	}
	return d, nil
}

// releaseDigest is the digest to sign-check: the one given (--digest),
// the pull spec's own digest, or the registry's answer for the tag.
func (o *signaturesOptions) releaseDigest(ctx context.Context, env *environment, ref release.Ref, given digest.Digest) (digest.Digest, error) {
	if given != "" {
		return given, nil
	}
	if ref.Digest != "" {
		return ref.Digest, nil
	}
	m, err := registry.New(o.registry.options(env)).Resolve(ctx, ref.String())
	if err != nil {
		return "", fmt.Errorf("resolve release digest: %w", err)
	}
	return m.Digest, nil
}

// fetchVerifiedSignatures fetches every signature of d within the bounds
// of net and keeps the ones that verify; it fails unless at least one does.
func fetchVerifiedSignatures(ctx context.Context, env *environment, net *timeoutFlags, stores []string, kr *signature.Keyring, d digest.Digest) ([]signature.Accepted, error) {
	if len(stores) == 0 {
		stores = signature.DefaultStores
	}
	fetcher := net.signatureFetcher(env, stores)
	fetched, err := fetcher.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	accepted, rejected := signature.VerifyAll(fetched.Signatures, kr, d)
	for _, r := range rejected {
		env.log.Warn("signature rejected", "url", r.URL, "reason", r.Err)
	}
	if len(accepted) == 0 {
		var reasons []string
		for _, r := range rejected {
			reasons = append(reasons, fmt.Sprintf("%s: %v", r.URL, r.Err))
		}
		return nil, verificationError(fmt.Errorf("no signature of %s verifies:\n  %s", d, strings.Join(reasons, "\n  ")))
	}
	return accepted, nil
}

// writeSignatureFiles writes the raw signatures and their ConfigMap under
// dir, replacing an earlier set for the same digest. Files are staged in a
// temporary directory beside them so that a failure leaves nothing behind.
func writeSignatureFiles(dir string, d digest.Digest, accepted []signature.Accepted) (written []string, err error) {
	sigs := make([][]byte, len(accepted))
	for i, a := range accepted {
		sigs[i] = a.Data
	}
	cm, err := manifests.SignatureConfigMap(d, sigs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	stage, err := os.MkdirTemp(dir, ".ferry-signatures-")
	if err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	defer os.RemoveAll(stage)
	sigDirName := string(d.Algorithm()) + "=" + d.Encoded()
	for i, s := range sigs {
		if err := writeFile(filepath.Join(stage, sigDirName, fmt.Sprintf("signature-%d", i+1)), s); err != nil {
			return nil, err
		}
	}
	cmName := manifests.SignatureConfigMapFile(d)
	if err := writeFile(filepath.Join(stage, cmName), cm); err != nil {
		return nil, err
	}
	sigDir := filepath.Join(dir, "signatures", sigDirName)
	cmPath := filepath.Join(dir, "config", cmName)
	for _, sub := range []string{filepath.Dir(sigDir), filepath.Dir(cmPath)} {
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return nil, fmt.Errorf("create output directory: %w", err)
		}
	}
	if err := os.RemoveAll(sigDir); err != nil {
		return nil, fmt.Errorf("replace %s: %w", sigDir, err)
	}
	if err := os.Rename(filepath.Join(stage, sigDirName), sigDir); err != nil {
		return nil, fmt.Errorf("write %s: %w", sigDir, err)
	}
	if err := os.Rename(filepath.Join(stage, cmName), cmPath); err != nil {
		return nil, fmt.Errorf("write %s: %w", cmPath, err)
	}
	for i := range sigs {
		written = append(written, filepath.Join(sigDir, fmt.Sprintf("signature-%d", i+1)))
	}
	return append(written, cmPath), nil
}

// writeFile writes data to path (0644), creating its directory.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	return fileio.WriteAtomic(path, data, 0o644)
}
