package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/signature"
)

// operatorFlags select the operator catalogs pack and mirror carry: the
// simple case by flags (--catalog, --package), anything else by ferry.yaml's
// operators: list.
type operatorFlags struct {
	catalogs         cli.StringSlice
	packages         cli.StringSlice
	skipDependencies bool
	installed        string
	// signatureStores are --image-signature-store HOST=URL, added to the
	// vendors' lookaside stores.
	signatureStores cli.StringSlice
	// fromConfig are the operators: of a -f file, used when no --catalog
	// replaces them.
	fromConfig []catalog.Selection
}

func (f *operatorFlags) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "catalog", Usage: "carry the operator catalog `IMAGE` (repeatable), filtered to --package; " +
			"with no --package, the head of every channel of every package", Destination: &f.catalogs, Category: "Operators"},
		&cli.StringSliceFlag{Name: "package", Usage: "keep package `NAME` of every --catalog (repeatable): the head of each of its channels; " +
			"version ranges and channels go in ferry.yaml's operators:", Destination: &f.packages, Category: "Operators"},
		&cli.BoolFlag{Name: "skip-dependencies", Usage: "do not add the bundles that kept bundles require (olm.package.required, olm.gvk.required); " +
			"OLM cannot install a bundle whose requirements no catalog meets", Destination: &f.skipDependencies, Category: "Operators"},
		&cli.StringSliceFlag{Name: "image-signature-store", Usage: "check the signatures of the images catalogs name in the lookaside store `HOST=URL` " +
			"(repeatable; Red Hat's registries' stores are known), under the release keyring", Destination: &f.signatureStores, Category: "Operators"},
		&cli.StringFlag{Name: "installed", Usage: "refuse to pack when an operator in `FILE` (from 'ferry inventory --operators' on the bastion) " +
			"would block the update to the newest release packed and the catalogs hold no way out", Destination: &f.installed, Category: "Operators"},
	}
}

// selections are the catalogs to carry, validated.
func (f *operatorFlags) selections() ([]catalog.Selection, error) {
	if len(f.catalogs.Value()) == 0 {
		if len(f.packages.Value()) > 0 {
			return nil, usageError(errors.New("--package needs a --catalog to select from"))
		}
		return f.fromConfig, nil
	}
	var out []catalog.Selection
	for _, ref := range f.catalogs.Value() {
		sel := catalog.Selection{Catalog: ref}
		for _, p := range f.packages.Value() {
			sel.Packages = append(sel.Packages, catalog.PackageSelection{Name: p})
		}
		if err := sel.Validate(); err != nil {
			return nil, usageError(fmt.Errorf("--catalog %s: %w", ref, err))
		}
		out = append(out, sel)
	}
	return out, nil
}

func (f *operatorFlags) active() bool {
	return len(f.catalogs.Value()) > 0 || len(f.fromConfig) > 0
}

// checkInstalled is --installed: the operators the bastion's cluster runs,
// judged against the filtered catalogs for the update to the newest
// release packed. An operator that blocks with no way out in the catalogs
// refuses the pack (exit 3): the packer learns before the media leaves
// that a package or version is missing.
func (f *operatorFlags) checkInstalled(env *environment, plan *mirror.Plan) error {
	if f.installed == "" {
		return nil
	}
	file, err := readInstalledOperators(f.installed)
	if err != nil {
		return err
	}
	target := newestRelease(plan)
	if target == "" {
		return usageError(errors.New("--installed judges the update to the newest release packed, and this pack carries none"))
	}
	var cfgs []*declcfg.DeclarativeConfig
	var refs []string
	for _, c := range plan.Catalogs {
		cfgs, refs = append(cfgs, c.Filtered), append(refs, c.Selection.Catalog)
	}
	verdicts := judgeOperators(file.Operators, cfgs, refs, file.ClusterVersion, target)
	var blocking []string
	for _, v := range verdicts {
		switch {
		case !v.OK:
			blocking = append(blocking, fmt.Sprintf("%s/%s (%s): %s", v.Namespace, v.Package, v.CSV, v.Reason))
		case v.Blocks:
			env.log.Info("installed operator must be updated before the cluster", "package", v.Package, "installed", v.CSV, "to", v.UpgradeTo)
		}
	}
	if len(blocking) > 0 {
		return verificationError(fmt.Errorf("installed operators (%s, cluster at %s) would block the update to %s, and the selected catalogs hold no way out:\n  %s\n"+
			"select those packages (and versions that allow %s) in the catalogs, or pack without --installed",
			f.installed, safetext.Clean(file.ClusterVersion), target, safetext.Clean(strings.Join(blocking, "\n  ")), target))
	}
	env.log.Info("no installed operator blocks the update", "operators", len(verdicts), "from", file.ClusterVersion, "to", target)
	return nil
}

// newestRelease is the highest version a plan carries.
func newestRelease(plan *mirror.Plan) string {
	versions := make([]string, 0, len(plan.Releases))
	for _, r := range plan.Releases {
		versions = append(versions, r.Version)
	}
	if len(versions) == 0 {
		return ""
	}
	return slices.MaxFunc(versions, release.CompareVersions)
}

// logCatalogs says what each catalog kept.
func logCatalogs(env *environment, plan *mirror.Plan) {
	for _, c := range plan.Catalogs {
		bundles := 0
		for _, p := range c.Report.Packages {
			bundles += len(p.Bundles)
		}
		env.log.Info("operator catalog filtered", "catalog", c.Selection.Catalog, "packages", len(c.Report.Packages),
			"bundles", bundles, "images", len(c.Images), "tag", c.Tag)
		if s := c.ImageSignatures; s != nil {
			env.log.Info("operator images' signatures (lookaside stores)", "catalog", c.Selection.Catalog, "signed", s.Signed,
				"unsigned", s.Unsigned, "noStore", s.NoStore)
			for _, ref := range s.UnsignedImages {
				env.log.Warn("no signature in the vendor's lookaside store", "image", ref)
			}
		}
		for _, im := range c.Images {
			if im.Tag != "" {
				env.log.Warn("a catalog names an image by tag; it is carried by the digest the tag names now, and the cluster pulls it by tag",
					"image", im.Ref, "digest", im.Digest)
			}
		}
	}
}

// imageSignatures is the lookaside check of catalog images: Red Hat's
// stores and --image-signature-store, under the release keyring (Red Hat
// signs its images with its release key). Without a keyring it is off,
// and the log says so.
func (f *operatorFlags) imageSignatures(env *environment, net *timeoutFlags, trust *trustFlags) (*mirror.ImageSignatures, error) {
	stores := signature.DefaultLookasideStores()
	for _, s := range f.signatureStores.Value() {
		host, url, ok := strings.Cut(s, "=")
		if !ok || host == "" || url == "" {
			return nil, usageError(fmt.Errorf("--image-signature-store %q: want HOST=URL", s))
		}
		stores[host] = url
	}
	keyring, err := trust.releaseKeyring(env)
	if err != nil {
		env.log.Warn("operator images' signatures are not checked: no release keyring", "reason", err)
		return nil, nil
	}
	return &mirror.ImageSignatures{Stores: stores, Fetcher: net.signatureFetcher(env, nil), Keyring: keyring}, nil
}
