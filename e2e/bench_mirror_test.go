package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

// mirrorTargetRatio is ferry mirror's target against fetch-and-push.
const mirrorTargetRatio = 1.3

// fetchAndPush copies every blob of rel from the source to the target, one
// GET and one upload each, then every manifest by digest (single images
// before lists). It returns the bytes of blobs moved.
func fetchAndPush(ctx context.Context, rel *testbed.Release, srcHost, dstHost, repo string) (int64, error) {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2 * registry.DefaultParallel}}
	defer hc.CloseIdleConnections()
	from := map[digest.Digest]string{}
	for _, img := range rel.Images {
		for _, d := range img.Blobs {
			from[d] = img.Repository
		}
	}
	var total int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(registry.DefaultParallel)
	for _, d := range slices.Sorted(maps.Keys(from)) {
		size := rel.Blobs[d]
		total += size
		g.Go(func() error {
			req, err := http.NewRequestWithContext(gctx, http.MethodGet, "http://"+srcHost+"/v2/"+from[d]+"/blobs/"+d.String(), nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", req.URL, resp.Status)
			}
			return uploadBlob(gctx, hc, dstHost, repo, d, resp.Body, size)
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	c := testbed.NewClient(dstHost)
	c.HTTP = hc
	images := slices.Clone(rel.Images)
	singles := singlesFirst(images, func(img testbed.ImageInfo) string { return img.MediaType })
	err := inWaves(ctx, registry.DefaultParallel, singles, len(images), func(ctx context.Context, i int) error {
		_, err := c.PushManifest(ctx, repo, images[i].Digest.String(), images[i].MediaType, images[i].Manifest)
		return err
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}
