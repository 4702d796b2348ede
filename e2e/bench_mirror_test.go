package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

// mirrorTargetRatio is ferry mirror's target against fetch-and-push.
const mirrorTargetRatio = 1.3

// benchMirror times ferry mirror from the source registry into a fresh
// mirror against D, the plainest copy of the same bytes: every blob GET
// from the source and PUT to the target, registry.DefaultParallel at
// once, nothing verified, then the manifests.
func benchMirror(t *testing.T, dir string, src *testbed.DockerRegistry, rel *testbed.Release, keyFile, storeURL string) *benchSection {
	t.Helper()
	dsts := []*testbed.DockerRegistry{testbed.StartDockerRegistry(t), testbed.StartDockerRegistry(t)}
	var sum struct {
		BlobsPushed int   `json:"blobsPushed"`
		BytesPushed int64 `json:"bytesPushed"`
		Manifests   int   `json:"manifests"`
		Tags        int   `json:"tags"`
	}
	fm := timeFerry(t, &sum, "mirror", rel.DigestSpec(), "--to", dsts[0].Host+"/"+targetRepo, "--src-tls-verify=false", "--dest-tls-verify=false",
		"--keyring", keyFile, "--signature-store", storeURL, "--no-cluster", "--quiet", "--json", "--output-dir", filepath.Join(dir, "mirror-manifests"))
	settle()
	start := time.Now()
	moved, err := fetchAndPush(t.Context(), rel, src.Host, dsts[1].Host, targetRepo)
	if err != nil {
		t.Fatal(err)
	}
	raw := time.Since(start)
	settle()
	return &benchSection{rows: []contender{
		{name: "ferry mirror", wall: fm.wall, cpu: fm.cpu, bytes: sum.BytesPushed, maxRSS: fm.maxRSS, written: fm.written,
			note: fmt.Sprintf("signatures verified, plan walked, then %d blobs (%s) copied digest-checked, %d manifests, %d tags", sum.BlobsPushed, mib(sum.BytesPushed), sum.Manifests, sum.Tags)},
		{name: "D: fetch and push", wall: raw, bytes: moved, written: -1,
			note: fmt.Sprintf("in this process: GET + POST + one PUT per blob, %d at once, nothing hashed client-side, then the manifests", registry.DefaultParallel)},
	}}
}

// printMirrorSummary prints mirror's ratio against its target.
func printMirrorSummary(w io.Writer, s *benchSection) {
	fm := s.rows[0]
	ratio := timeRatio(fm.wall, s.row("D:").wall)
	verdict := "NOT met"
	if ratio <= mirrorTargetRatio {
		verdict = "met"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "mirror\t%s\t%s\t%s\tmirror / D: fetch and push\t%.2fx\t<= %.2fx\t%s\n", fm.wall.Round(time.Millisecond),
		throughput(fm.bytes, fm.wall), mib(fm.maxRSS), ratio, mirrorTargetRatio, verdict)
	_ = tw.Flush()
}

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
	singlesFirst(images, func(img testbed.ImageInfo) string { return img.MediaType })
	for _, img := range images {
		if _, err := c.PushManifest(ctx, repo, img.Digest.String(), img.MediaType, img.Manifest); err != nil {
			return 0, err
		}
	}
	return total, nil
}
