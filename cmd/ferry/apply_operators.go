package main

import (
	"context"
	"fmt"
	"io"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/trust"
)

// operatorsReport is apply's update check of the cluster's installed
// operators against the catalogs it carried.
type operatorsReport struct {
	From      string            `json:"from"`
	To        string            `json:"to"`
	Operators []operatorVerdict `json:"operators"`
}

// blocking are the operators that keep the cluster from the target with
// no way out in the carried catalogs.
func (r *operatorsReport) blocking() []operatorVerdict {
	var out []operatorVerdict
	for _, v := range r.Operators {
		if !v.OK {
			out = append(out, v)
		}
	}
	return out
}

// checkOperators judges, with a cluster and proven catalogs, every
// installed operator for the update to the newest release the bundle
// carries, as `ferry check operators` does, against the carried catalogs
// read back from the bundle. An operator that blocks with no way out makes
// apply exit 3 after everything else is done: the update steps it prints
// would not go through.
func (o *applyOptions) checkOperators(ctx context.Context, env *environment, applier *manifests.Applier, r *bundle.Reader, proof *trust.Report, sum *applySummary) error {
	if applier == nil || len(proof.Catalogs) == 0 || len(proof.Steps) == 0 {
		return nil
	}
	target := proof.Steps[len(proof.Steps)-1].Version
	cv, err := applier.ReadClusterVersion(ctx)
	if err != nil || cv == nil || cv.Completed() == "" {
		env.log.Warn("cannot read the cluster's version; installed operators are not checked", "err", err)
		return nil
	}
	installed, err := applier.ReadInstalledOperators(ctx)
	if err != nil {
		env.log.Warn("cannot read the installed operators; they are not checked", "err", err)
		return nil
	}
	var cfgs []*declcfg.DeclarativeConfig
	var refs []string
	for _, c := range proof.Catalogs {
		cfg, err := readCarriedCatalog(ctx, r, c.Catalog)
		if err != nil {
			return verificationError(fmt.Errorf("operator catalog %s: %w", c.Ref, err))
		}
		cfgs, refs = append(cfgs, cfg), append(refs, c.Ref)
	}
	sum.Operators = &operatorsReport{From: cv.Completed(), To: target, Operators: judgeOperators(installed, cfgs, refs, cv.Completed(), target)}
	if blocking := sum.Operators.blocking(); len(blocking) > 0 {
		return verificationError(fmt.Errorf("%d installed operator(s) keep the cluster from %s and the bundle's catalogs hold no way out: "+
			"carry a version that allows %s (see 'ferry check operators')", len(blocking), target, target))
	}
	return nil
}

// readCarriedCatalog reads a carried catalog's filtered FBC from its
// catalog layer in the bundle: the layer holds the whole configs directory
// under an opaque whiteout, so it alone is the catalog the image serves.
func readCarriedCatalog(ctx context.Context, r *bundle.Reader, c bundle.Catalog) (*declcfg.DeclarativeConfig, error) {
	open := func(context.Context) (io.ReadCloser, error) {
		sr, _, err := r.Blob(c.FBCLayer)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(sr), nil
	}
	return catalog.ReadFBC(ctx, []catalog.LayerOpener{open}, c.ConfigsDir)
}

// print says, for people, what the update check found.
func (r *operatorsReport) print(env *environment) {
	if r == nil {
		return
	}
	fmt.Fprintf(env.stdout, "installed operators: %d checked for the update %s -> %s\n", len(r.Operators), safetext.Clean(r.From), safetext.Clean(r.To))
	for _, v := range r.Operators {
		switch {
		case !v.OK:
			fmt.Fprintf(env.stdout, "  BLOCKS %s/%s (%s): %s\n", safetext.Clean(v.Namespace), safetext.Clean(v.Package), safetext.Clean(v.CSV), safetext.Clean(v.Reason))
		case v.Blocks:
			fmt.Fprintf(env.stdout, "  update %s/%s first, to %s (in catalog %s)\n", safetext.Clean(v.Namespace), safetext.Clean(v.Package),
				safetext.Clean(v.UpgradeTo), safetext.Clean(v.Catalog))
		}
	}
}

func (o *applyOptions) disableDefaultSourcesFlag() cli.Flag {
	return &cli.BoolFlag{Name: "disable-default-sources", Usage: "also render (and apply) the OperatorHub object that turns off the cluster's default " +
		"catalog sources, which cannot be reached without the internet", Destination: &o.disableDefaultSources, Category: "Operators"}
}
