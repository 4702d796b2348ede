package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/fileio"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/apply"
	"github.com/ferryhq/ferry/mirror/trust"
)

// render writes the manifests the cluster needs into the output directory
// and returns those to apply, in order. Only what proof holds is rendered:
// the proven ConfigMaps, and mirror sets for the repositories of proven
// images.
func (o *applyOptions) render(env *environment, r *bundle.Reader, proof *trust.Report, sum *applySummary) (*apply.Rendered, error) {
	var configMaps []manifests.File
	for _, name := range proof.ConfigMaps {
		data, err := r.ReadFile(name, manifests.MaxSignatureConfigMapSize)
		if err != nil {
			return nil, err
		}
		configMaps = append(configMaps, manifests.File{Name: filepath.Base(name), Data: data})
	}
	return o.writeRendered(env, r.Index().ID, configMaps, proof, sum)
}

// writeRendered renders the mirror sets named after name behind the
// ConfigMaps, and the objects that serve the proven catalogs, writes
// everything into the output directory (or, with --dry-run, only lists
// it) and returns what to apply.
func (o *applyOptions) writeRendered(env *environment, name string, configMaps []manifests.File, proof *trust.Report, sum *applySummary) (_ *apply.Rendered, err error) {
	step := beginStep(o.progress(env), "rendering manifests into "+o.outDir(name))
	defer func() { step.Done(plural(len(sum.Rendered), "file"), err) }()
	rendered, err := apply.Render(apply.RenderOptions{Name: name, ConfigMaps: configMaps, Sources: proof.Sources, Routes: proof.Routes, TagRoutes: proof.TagRoutes, Target: o.to, ICSP: o.icsp,
		Catalogs: proof.Catalogs, TargetVersion: targetVersion(proof), DisableDefaultSources: o.disableDefaultSources,
		GraphData: proof.GraphData})
	if err != nil {
		return nil, err
	}
	if proof.GraphData != nil {
		steps, err := manifests.UpdateServiceSteps(apply.UpdateServiceName, manifests.UpdateServiceNamespace, "")
		if err != nil {
			return nil, err
		}
		sum.UpdateService = steps
	}
	dir := o.outDir(name)
	all := slices.Concat(rendered.Objects, rendered.WhereServed, rendered.Extra)
	if o.dryRun {
		for _, f := range all {
			sum.Rendered = append(sum.Rendered, "(dry run) "+filepath.Join(dir, f.Name))
		}
		return rendered, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	for _, f := range all {
		p := filepath.Join(dir, f.Name)
		if err := fileio.WriteAtomic(p, f.Data, 0o644); err != nil {
			return nil, err
		}
		sum.Rendered = append(sum.Rendered, p)
	}
	return rendered, nil
}

// targetVersion is the OpenShift version the cluster will run after the
// bundle's last step; "" when the bundle carries no release.
func targetVersion(proof *trust.Report) string {
	if len(proof.Steps) == 0 {
		return ""
	}
	return proof.Steps[len(proof.Steps)-1].Version
}

// applyToCluster applies the rendered objects, and those applied only
// where served when the cluster serves their kind (else they stay written
// for later, and the log says so).
func (o *applyOptions) applyToCluster(ctx context.Context, env *environment, applier *manifests.Applier, rendered *apply.Rendered, sum *applySummary) (err error) {
	var objects [][]byte
	for _, f := range rendered.Objects {
		objects = append(objects, f.Data)
	}
	step := beginStep(o.progress(env), "applying to the cluster")
	defer func() { step.Done(appliedFigure(sum.Applied), err) }()
	for _, f := range rendered.WhereServed {
		served, err := applier.Serves(ctx, f.Data)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if !served {
			env.log.Info("the cluster does not take this object yet (OLM v1 runs on OpenShift 4.18 and later; an UpdateService needs its operator installed); written, not applied", "file", f.Name)
			continue
		}
		objects = append(objects, f.Data)
	}
	results, err := applier.Apply(ctx, objects)
	for _, r := range results {
		sum.Applied = append(sum.Applied, r.String())
	}
	if err != nil {
		return err
	}
	changed := 0
	for _, r := range results {
		if r.Action != manifests.ActionUnchanged {
			changed++
		}
	}
	if changed == 0 {
		env.log.Info("the cluster already had every object; nothing changed", "objects", len(results))
	}
	return nil
}
