package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/apply"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/trust"
)

// pushProven pushes the proven images from src into o.to (and the paths
// under it their targets name) and fills the summary; the library does the
// work, this maps its errors and figures.
func (o *applyOptions) pushProven(ctx context.Context, env *environment, client *registry.Client, src apply.Source,
	images []trust.Image, prereqs []bundle.Prerequisite, sum *applySummary) error {
	res, err := apply.PushAll(ctx, src, images, client.Destination, o.to, apply.Options{
		Parallel: o.parallel, DryRun: o.dryRun, Prerequisites: prereqs,
		Retry: o.registry.options(env).Retry, Progress: o.progress(env),
	})
	if res != nil {
		sum.BlobsPushed, sum.BlobsSkipped, sum.BytesPushed = res.BlobsPushed, res.BlobsSkipped, res.BytesPushed
		sum.Manifests, sum.Tags, sum.Prerequisites = res.Manifests, res.Tags, res.Prerequisites
		sum.WouldPush, sum.WouldPushSize = res.WouldPush, res.WouldPushBytes
	}
	var missing *apply.MissingPrerequisitesError
	if errors.As(err, &missing) {
		return verificationError(fmt.Errorf("%s lacks %d of the bundle's %d prerequisites (blobs it left out because the mirror held them): %s; "+
			"nothing was pushed: apply a bundle that carries them first, or pack one without --since",
			missing.Target, len(missing.Missing), missing.Total, missingSummary(missing.Missing)))
	}
	return err
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
