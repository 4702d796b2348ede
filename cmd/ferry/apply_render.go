package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
func (o *applyOptions) render(r *bundle.Reader, proof *trust.Report, sum *applySummary) ([]manifests.File, error) {
	var configMaps []manifests.File
	for _, name := range proof.ConfigMaps {
		data, err := r.ReadFile(name, manifests.MaxSignatureConfigMapSize)
		if err != nil {
			return nil, err
		}
		configMaps = append(configMaps, manifests.File{Name: filepath.Base(name), Data: data})
	}
	return o.writeRendered(r.Index().ID, configMaps, proof.Sources, sum)
}

// writeRendered renders the mirror sets named after name behind the
// ConfigMaps, writes everything into the output directory (or, with
// --dry-run, only lists it) and returns the objects to apply.
func (o *applyOptions) writeRendered(name string, configMaps []manifests.File, sources []string, sum *applySummary) ([]manifests.File, error) {
	rendered, err := apply.Render(name, configMaps, sources, o.to, o.icsp)
	if err != nil {
		return nil, err
	}
	dir := o.outDir(name)
	all := append(append([]manifests.File(nil), rendered.Objects...), rendered.Extra...)
	if o.dryRun {
		for _, f := range all {
			sum.Rendered = append(sum.Rendered, "(dry run) "+filepath.Join(dir, f.Name))
		}
		return rendered.Objects, nil
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
	return rendered.Objects, nil
}

func (o *applyOptions) applyToCluster(ctx context.Context, env *environment, applier *manifests.Applier, files []manifests.File, sum *applySummary) error {
	objects := make([][]byte, len(files))
	for i, f := range files {
		objects[i] = f.Data
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
