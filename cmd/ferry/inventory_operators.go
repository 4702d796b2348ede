package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferryhq/ferry/internal/regularfile"
	"github.com/ferryhq/ferry/manifests"
)

// runOperators writes the cluster's installed OLM operators.
func (o *inventoryOptions) runOperators(ctx context.Context, env *environment) error {
	if o.to != "" || o.fromBundle != "" || len(o.volumes) > 0 {
		return usageError(errors.New("--operators reads the cluster: it takes neither --to, --from-bundle nor VOLUME arguments"))
	}
	if err := o.checkOutput(); err != nil {
		return err
	}
	applier, err := o.registry.net.applier(o.kubeconfig)
	if err != nil {
		return fileArgError(err)
	}
	cv, err := applier.ReadClusterVersion(ctx)
	if err != nil {
		return err
	}
	if cv == nil || cv.Completed() == "" {
		return fmt.Errorf("the cluster at %s has no completed ClusterVersion", applier.Host())
	}
	ops, err := applier.ReadInstalledOperators(ctx)
	if err != nil {
		return err
	}
	file := &manifests.InstalledOperators{Cluster: applier.Host(), ClusterVersion: cv.Completed(), Created: time.Now().UTC(), Operators: ops}
	data, err := file.Marshal()
	if err != nil {
		return err
	}
	if toStdout, err := o.write(env, data); toStdout || err != nil {
		return err
	}
	if o.json {
		return jsonEncode(env.stdout, struct {
			Inventory      string `json:"inventory"`
			ClusterVersion string `json:"clusterVersion"`
			Operators      int    `json:"operators"`
		}{o.output, file.ClusterVersion, len(ops)})
	}
	fmt.Fprintf(env.stdout, "%s at %s: %d installed operators\nwrote %s (%s)\n", applier.Host(), file.ClusterVersion, len(ops), o.output, formatBytes(int64(len(data))))
	return nil
}

// readInstalledOperators reads --installed, refusing a named pipe or a
// device without blocking on it.
func readInstalledOperators(path string) (*manifests.InstalledOperators, error) {
	f, err := regularfile.Open(path, "an installed operators file")
	if err != nil {
		return nil, fileArgError(fmt.Errorf("--installed: %w", err))
	}
	defer f.Close()
	file, err := manifests.ParseInstalledOperators(f)
	if err != nil {
		return nil, usageError(fmt.Errorf("--installed %s: %w", path, err))
	}
	return file, nil
}
