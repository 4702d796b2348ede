package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/registry"
)

type checkOperatorsOptions struct {
	kubeconfig string
	installed  string
	catalogs   cli.StringSlice
	to         string
	json       bool
	registry   registryFlags
}

func checkOperatorsCommand(env *environment) *cli.Command {
	o := &checkOperatorsOptions{registry: registryFlags{prefix: "src"}}
	return &cli.Command{
		Name:  "operators",
		Usage: "would an installed OLM operator block the update to --to, and does a catalog hold the way out",
		Description: `OLM sets Upgradeable=False on the cluster (ClusterOperator operator-lifecycle-manager,
reason IncompatibleOperatorsInstalled) when an installed operator's olm.maxOpenShiftVersion
is below the cluster's next minor version; the cluster cannot update past it until a
compatible version of that operator is installed. This command reads the cluster's
Subscriptions and installed ClusterServiceVersions and, for each, says as OLM judges it
whether it blocks the update to --to, and if it does, whether one of the --catalog images
holds a version OLM reaches from the installed one on its channel that allows the target:
the one to mirror and install first.

An empty, malformed or repeated olm.maxOpenShiftVersion blocks, as OLM fails closed;
z-stream updates are never blocked.

Exits 0 when no operator blocks without a way out, 3 when one does, 1 when the cluster
or a catalog could not be read, 2 on a usage error.

With --installed FILE (written on the bastion by 'ferry inventory --operators') the same
check runs on the connected side without a cluster, before anything is packed.

Examples:
  ferry check operators --kubeconfig ~/kubeconfig --to 4.17 \
      --catalog registry.redhat.io/redhat/redhat-operator-index:v4.17 --authfile pull-secret.json
  ferry check operators --to 4.17.3 --catalog mirror.example:5000/olm/redhat-operator-index:v4.17 --json
  ferry check operators --installed installed-operators.json --to 4.17 --catalog registry.redhat.io/redhat/redhat-operator-index:v4.17`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "kubeconfig", Usage: "the cluster to check (default: $KUBECONFIG, ~/.kube/config)", Destination: &o.kubeconfig, Category: "Cluster"},
			&cli.StringFlag{Name: "installed", Usage: "judge the operators in `FILE` (from 'ferry inventory --operators' on the bastion) instead of reading a cluster",
				Destination: &o.installed, Category: "Cluster"},
			&cli.StringFlag{Name: "to", Usage: "the OpenShift `VERSION` to update to (4.17 or 4.17.3)", Destination: &o.to},
			&cli.StringSliceFlag{Name: "catalog", Usage: "operator catalog `IMAGE` that holds the operators' next versions (repeatable)", Destination: &o.catalogs},
			&cli.BoolFlag{Name: "json", Usage: "print the verdicts as JSON", Destination: &o.json},
		}, o.registry.flags()...),
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 0, "no arguments (the target goes in --to, catalogs in --catalog)"); err != nil {
				return err
			}
			return o.run(c.Context, env)
		},
	}
}

// operatorVerdict is one installed operator and what the check found.
type operatorVerdict struct {
	manifests.InstalledOperator
	catalog.Verdict
	// Catalog is the --catalog the way out was found in.
	Catalog string `json:"catalog,omitempty"`
}

func (o *checkOperatorsOptions) run(ctx context.Context, env *environment) error {
	if o.to == "" {
		return usageError(errors.New("--to is required: the OpenShift version to update to, e.g. --to 4.17"))
	}
	for _, ref := range o.catalogs.Value() {
		if err := checkImageRef(ref); err != nil {
			return usageError(fmt.Errorf("--catalog %w", err))
		}
	}
	current, installed, err := o.readInstalled(ctx)
	if err != nil {
		return err
	}
	catalogs, err := o.readCatalogs(ctx, env)
	if err != nil {
		return err
	}
	verdicts := judgeOperators(installed, catalogs, o.catalogs.Value(), current, o.to)
	if err := o.print(env, current, verdicts); err != nil {
		return err
	}
	for _, v := range verdicts {
		if !v.OK {
			return verificationError(fmt.Errorf("installed operators block the update from %s to %s; mirror and install the versions named above first", current, o.to))
		}
	}
	return nil
}

// readInstalled is the cluster's version and installed operators, from
// --installed or from the cluster.
func (o *checkOperatorsOptions) readInstalled(ctx context.Context) (string, []manifests.InstalledOperator, error) {
	if o.installed != "" {
		if o.kubeconfig != "" {
			return "", nil, usageError(errors.New("--installed and --kubeconfig exclude each other: judge a file, or a cluster"))
		}
		file, err := readInstalledOperators(o.installed)
		if err != nil {
			return "", nil, err
		}
		return file.ClusterVersion, file.Operators, nil
	}
	applier, err := o.registry.net.applier(o.kubeconfig)
	if err != nil {
		return "", nil, fileArgError(err)
	}
	cv, err := applier.ReadClusterVersion(ctx)
	if err != nil {
		return "", nil, err
	}
	if cv == nil || cv.Completed() == "" {
		return "", nil, fmt.Errorf("the cluster at %s has no completed ClusterVersion to start the update from", applier.Host())
	}
	installed, err := applier.ReadInstalledOperators(ctx)
	return cv.Completed(), installed, err
}

func (o *checkOperatorsOptions) readCatalogs(ctx context.Context, env *environment) ([]*declcfg.DeclarativeConfig, error) {
	client := registry.New(o.registry.options(env))
	var out []*declcfg.DeclarativeConfig
	for _, ref := range o.catalogs.Value() {
		cat, err := catalog.Read(ctx, client, ref)
		if err != nil {
			return nil, withHint(fmt.Errorf("read catalog %s: %w", ref, err))
		}
		out = append(out, cat.FBC)
	}
	return out, nil
}

// judgeOperators judges each installed operator: one that blocks against
// the catalogs holding its package, the first that offers a way out.
func judgeOperators(installed []manifests.InstalledOperator, cfgs []*declcfg.DeclarativeConfig, refs []string, current, target string) []operatorVerdict {
	out := make([]operatorVerdict, 0, len(installed))
	for _, op := range installed {
		in := catalog.Installed{Package: op.Package, Channel: op.Channel, CSV: op.CSV, Version: op.Version, Properties: op.Properties}
		v := operatorVerdict{InstalledOperator: op}
		blocks, why := catalog.InstalledBlocks(in, current, target)
		v.Verdict = catalog.Verdict{Blocks: blocks, OK: !blocks, Reason: why}
		if blocks {
			v.Reason = fmt.Sprintf("%s; none of the %d --catalog images holds package %s", why, len(cfgs), op.Package)
			for i, cfg := range cfgs {
				if !hasPackage(cfg, op.Package) {
					continue
				}
				v.Verdict, v.Catalog = catalog.JudgeInstalled(cfg, in, current, target), refs[i]
				if v.OK {
					break
				}
			}
		}
		out = append(out, v)
	}
	return out
}

func hasPackage(cfg *declcfg.DeclarativeConfig, name string) bool {
	for _, p := range cfg.Packages {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (o *checkOperatorsOptions) print(env *environment, current string, verdicts []operatorVerdict) error {
	if o.json {
		return jsonEncode(env.stdout, struct {
			From      string            `json:"from"`
			To        string            `json:"to"`
			Operators []operatorVerdict `json:"operators"`
		}{current, o.to, verdicts})
	}
	fmt.Fprintf(env.stdout, "update %s -> %s: %d installed operators\n", safetext.Clean(current), safetext.Clean(o.to), len(verdicts))
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPACKAGE\tINSTALLED\tCHANNEL\tVERDICT")
	for _, v := range verdicts {
		verdict := "ok"
		switch {
		case v.Blocks && v.OK:
			verdict = "update first to " + safetext.Clean(v.UpgradeTo)
		case v.Blocks:
			verdict = "BLOCKS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safetext.Clean(v.Namespace), safetext.Clean(v.Package), safetext.Clean(v.CSV), safetext.Clean(v.Channel), verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range verdicts {
		if v.Blocks {
			fmt.Fprintf(env.stdout, "%s/%s: %s\n", safetext.Clean(v.Namespace), safetext.Clean(v.Package), safetext.Clean(v.Reason))
		}
	}
	return nil
}
