package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/trust"
)

// render writes the manifests the cluster needs into the output directory:
// the signature ConfigMaps, the mirror sets (and the legacy ICSP with
// --icsp) and the install-config snippet. It returns them in apply order.
// Only what proof holds is rendered: the proven ConfigMaps, and mirror sets
// for the repositories of proven images.
func (o *applyOptions) render(r *bundle.Reader, proof *trust.Report, sum *applySummary) ([]manifests.File, error) {
	idx := r.Index()
	var files []manifests.File
	for _, name := range proof.ConfigMaps {
		data, err := readBundleFile(r, name, manifests.MaxSignatureConfigMapSize)
		if err != nil {
			return nil, err
		}
		files = append(files, manifests.File{Name: filepath.Base(name), Data: data})
	}
	mirrors, err := manifests.MirrorSets(idx.ID, proof.Sources, o.to)
	if err != nil {
		return nil, err
	}
	files = append(files, mirrors.Files()...)
	extra := []manifests.File{{Name: "install-config-snippet.yaml", Data: mirrors.InstallConfig}}
	if o.icsp {
		extra = append(extra, manifests.File{Name: "icsp-" + mirrors.Name + ".yaml", Data: mirrors.ImageContentSourcePolicy})
	}
	if o.dryRun {
		for _, f := range append(files, extra...) {
			sum.Rendered = append(sum.Rendered, "(dry run) "+filepath.Join(o.outDir(idx), f.Name))
		}
		return files, nil
	}
	dir := o.outDir(idx)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	for _, f := range append(files, extra...) {
		p := filepath.Join(dir, f.Name)
		if err := replaceFile(p, f.Data); err != nil {
			return nil, err
		}
		sum.Rendered = append(sum.Rendered, p)
	}
	return files, nil
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

// replaceFile writes data to path through a temporary file and a rename,
// so a reader never sees half a manifest.
func replaceFile(path string, data []byte) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := writeFile(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
