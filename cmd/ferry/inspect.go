package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/mirror/signature"
)

type inspectOptions struct {
	bundle  string
	volumes []string
	json    bool
	config  bool
	proof   proofFlags
}

func inspectCommand(env *environment) *cli.Command {
	o := &inspectOptions{}
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show what a bundle holds, from its index (fast; use verify to check it)",
		ArgsUsage: "BUNDLE [VOLUME...]",
		Description: `Prints the releases with their digests and signatures, the operator catalogs with, per
package, what was kept and why, the images, the unique blobs and bytes, the volumes, the ferry version and options that made the bundle, and who
signed it. With --bundle-keyring it also checks the bundle signature (the index only;
'ferry verify' checks everything) and exits 3 when it does not verify.

Examples:
  ferry inspect bundle.tar
  ferry inspect bundle.tar --json | jq '.releases[].digest'
  ferry inspect bundle.tar --config > ferry.yaml`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the bundle index as JSON", Destination: &o.json},
			&cli.BoolFlag{Name: "config", Usage: "print the ferry.yaml the bundle was made with (ferry pack -f makes it again)", Destination: &o.config},
			o.proof.bundleKeyringFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageError(fmt.Errorf("expected a BUNDLE; see `ferry inspect --help`"))
			}
			o.bundle, o.volumes = c.Args().First(), c.Args().Tail()
			return o.run(c.Context, env)
		},
	}
}

func (o *inspectOptions) run(_ context.Context, env *environment) error {
	if err := checkBundleArgs(o.bundle, o.volumes); err != nil {
		return err
	}
	bkr, err := o.proof.bundleKeyring()
	if err != nil {
		return err
	}
	r, err := bundle.Open(o.bundle, bundle.ReadOptions{Volumes: o.volumes})
	if err != nil {
		return verificationError(err)
	}
	defer r.Close()
	idx := r.Index()
	signer, err := checkIndexSignature(r, bkr)
	if err != nil {
		return verificationError(err)
	}
	if o.config {
		return printRecordedConfig(env, idx)
	}
	if o.json {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(idx)
	}
	printIndex(env, idx)
	printSignature(env, r, signer)
	return nil
}

// checkIndexSignature verifies the bundle's signature under bkr; with no
// keyring it checks nothing and returns nil.
func checkIndexSignature(r *bundle.Reader, bkr *signature.Keyring) (*signature.Signer, error) {
	if bkr == nil {
		return nil, nil
	}
	index, sig := r.IndexSignature()
	if sig == nil {
		return nil, fmt.Errorf("bundle %s is not signed, but --bundle-keyring was given", r.Index().ID)
	}
	signer, err := signature.VerifyDetached(bkr, bytes.NewReader(index), sig)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: signature %s: %w", r.Index().ID, bundle.IndexSignatureName, err)
	}
	return signer, nil
}

// printSignature says whether and by whom the bundle is signed: verified
// when signer is set, else as the index records it (unchecked).
func printSignature(env *environment, r *bundle.Reader, signer *signature.Signer) {
	_, sig := r.IndexSignature()
	var rec packRecord
	_ = json.Unmarshal(r.Index().Options, &rec)
	switch {
	case signer != nil:
		fmt.Fprintf(env.stdout, "signature: verified, %s\n", safetext.Clean(signer.String()))
	case sig == nil:
		fmt.Fprintln(env.stdout, "signature: none (ferry pack --sign-key signs a bundle)")
	case rec.SignedBy != nil:
		fmt.Fprintf(env.stdout, "signature: by key %s %s, made %s (not checked: pass --bundle-keyring)\n",
			safetext.Clean(rec.SignedBy.Fingerprint), safetext.Clean(rec.SignedBy.UserID), r.Index().Created.Format(time.RFC3339))
	default:
		fmt.Fprintln(env.stdout, "signature: present, signer not recorded (not checked: pass --bundle-keyring)")
	}
}

func printIndex(env *environment, idx *bundle.Index) {
	out := env.stdout
	clean := safetext.Clean // every string here came from the bundle
	fmt.Fprintf(out, "bundle %s (format %d), made %s by %s %s (%s)\n", idx.ID, idx.FormatVersion,
		idx.Created.Format("2006-01-02 15:04:05 MST"), clean(idx.Tool.Name), clean(idx.Tool.Version), clean(idx.Tool.Commit))
	if len(idx.Options) > 0 {
		var compact bytes.Buffer
		if json.Compact(&compact, idx.Options) == nil {
			fmt.Fprintf(out, "made with: %s\n", clean(compact.String()))
		}
	}
	for _, r := range idx.Releases {
		fmt.Fprintf(out, "release %s\n  source:     %s\n  digest:     %s\n  components: %d\n", clean(r.Tag), clean(r.Source), r.Digest, len(r.Components))
		if r.Unsigned {
			fmt.Fprintf(out, "  signatures: NONE (packed with --allow-unsigned)\n")
		}
		for _, s := range r.Signatures {
			fmt.Fprintf(out, "  signature:  %s (key %s, %s)\n", s.File, clean(s.KeyFingerprint), clean(s.Identity))
		}
	}
	roles := map[string]int{}
	for _, img := range idx.Images {
		roles[img.Role]++
	}
	var parts []string
	for _, role := range []string{bundle.RoleRelease, bundle.RoleComponent, bundle.RoleCatalog, bundle.RoleOperator,
		bundle.RoleAdditional, bundle.RoleGraphData, bundle.RoleChild, bundle.RoleSigstore} {
		if roles[role] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", roles[role], role))
		}
	}
	fmt.Fprintf(out, "images: %d (%s)\n", len(idx.Images), strings.Join(parts, ", "))
	manifestFiles := map[string]bool{}
	for _, img := range idx.Images {
		manifestFiles[bundle.BlobName(img.Digest)] = true
	}
	var blobs, manifestsCount int
	var blobBytes int64
	for _, f := range idx.Files {
		switch {
		case manifestFiles[f.Name]:
			manifestsCount++
		case strings.HasPrefix(f.Name, bundle.LayoutDir+"/blobs/"):
			blobs++
			blobBytes += f.Size
		}
	}
	fmt.Fprintf(out, "unique blobs: %d configs and layers, %s; %d manifests\n", blobs, formatBytes(blobBytes), manifestsCount)
	if len(idx.Prerequisites) > 0 {
		fmt.Fprintf(out, "prerequisites: %d blobs the target must already hold\n", len(idx.Prerequisites))
	}
	printSigstoreRecord(out, idx.Sigstore)
	for _, c := range idx.Catalogs {
		printCatalogRecord(out, c)
	}
	printExtrasRecord(out, idx)
	for i, v := range idx.Volumes {
		size := ""
		if v.Size > 0 {
			size = " " + formatBytes(v.Size)
		}
		fmt.Fprintf(out, "volume %d: %s%s\n", i, clean(v.Name), size)
	}
}

// printRecordedConfig prints the ferry.yaml recorded in the index.
func printRecordedConfig(env *environment, idx *bundle.Index) error {
	var rec packRecord
	if err := json.Unmarshal(idx.Options, &rec); err != nil || rec.Config == nil {
		return fmt.Errorf("bundle %s records no configuration (made by ferry %s)", idx.ID, idx.Tool.Version)
	}
	data, err := rec.Config.yaml()
	if err != nil {
		return err
	}
	_, err = env.stdout.Write(data)
	return err
}

// printCatalogRecord shows a carried catalog and, per package, what the
// filter kept and why.
func printCatalogRecord(out io.Writer, c bundle.Catalog) {
	clean := safetext.Clean
	fmt.Fprintf(out, "catalog %s\n  source digest: %s\n  rebuilt:       %s (tag %s)\n  filter:        %s\n  images:        %d\n",
		clean(c.Ref), c.SourceDigest, c.Digest, clean(c.Tag), clean(c.Filter), len(c.Images))
	if s := c.ImageSignatures; s != nil {
		fmt.Fprintf(out, "  image signatures (lookaside, when packed): %d signed, %d unsigned, %d in no registry with a store\n", s.Signed, s.Unsigned, s.NoStore)
	}
	for _, p := range c.Packages {
		why := "selected"
		if !p.Selected {
			why = "added as a dependency"
		}
		fmt.Fprintf(out, "  package %s (%s), default channel %s", clean(p.Name), why, clean(p.DefaultChannel))
		if p.DefaultChannelRewrittenFrom != "" {
			fmt.Fprintf(out, " (the catalog's %s is not kept)", clean(p.DefaultChannelRewrittenFrom))
		}
		fmt.Fprintln(out)
		for _, ch := range p.Channels {
			fmt.Fprintf(out, "    channel %s: head %s, %d bundles", clean(ch.Name), clean(ch.Head), len(ch.Bundles))
			if ch.VersionRange != "" {
				fmt.Fprintf(out, ", range %s", clean(ch.VersionRange))
			}
			fmt.Fprintln(out)
			if len(ch.KeptForConnectivity) > 0 {
				fmt.Fprintf(out, "      kept to keep the channel connected: %s\n", clean(strings.Join(ch.KeptForConnectivity, ", ")))
			}
			if len(ch.NoUpgradePath) > 0 {
				fmt.Fprintf(out, "      no upgrade path to the head from: %s\n", clean(strings.Join(ch.NoUpgradePath, ", ")))
			}
		}
		for _, d := range p.DependenciesAdded {
			fmt.Fprintf(out, "    dependency added: %s\n", clean(d))
		}
		for _, d := range p.DependenciesUnresolved {
			fmt.Fprintf(out, "    dependency NOT met: %s\n", clean(d))
		}
	}
}

// printExtrasRecord shows the additional images, the blocked ones, the
// KubeVirt containers and the graph-data image.
func printExtrasRecord(out io.Writer, idx *bundle.Index) {
	clean := safetext.Clean
	for _, a := range idx.Additional {
		fmt.Fprintf(out, "additional image %s\n  digest: %s\n  to:     <target>/%s", clean(a.Ref), a.Digest, clean(a.Target))
		if a.TargetTag != "" {
			fmt.Fprintf(out, ":%s", clean(a.TargetTag))
		}
		if a.AlreadyCarried != "" {
			fmt.Fprintf(out, " (already carried as %s)", clean(a.AlreadyCarried))
		}
		if a.MovedFrom != "" {
			fmt.Fprintf(out, "\n  tag moved: the mirror's inventory had %s under it", a.MovedFrom)
		}
		if a.SourceDigest != "" {
			fmt.Fprintf(out, "\n  narrowed to %s from %s: a new digest, which pulls by the source digest do not find", clean(strings.Join(a.Platforms, ", ")), a.SourceDigest)
		}
		fmt.Fprintln(out)
	}
	for _, b := range idx.Blocked {
		fmt.Fprintf(out, "blocked image %s (pattern %s)\n", clean(b.Ref), clean(b.Pattern))
	}
	for _, k := range idx.KubeVirt {
		fmt.Fprintf(out, "RHCOS KubeVirt container of %s (%s): %s@%s, tag %s\n", clean(k.Release), clean(k.Arch), clean(k.Source), k.Digest, clean(k.Tag))
	}
	if g := idx.GraphData; g != nil {
		fmt.Fprintf(out, "graph-data image %s (graph data %s, %d releases named, base %s) to <target>/%s:%s\n",
			g.Digest, clean(g.Version), len(g.Releases), clean(g.Base), clean(g.Target), clean(g.Tag))
	}
}
