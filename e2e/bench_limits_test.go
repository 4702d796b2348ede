//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

const (
	// benchLimitEnv names the JSON file of a limitJob for the test binary
	// run again as TestBenchmarkLimitChild.
	benchLimitEnv = "FERRY_BENCH_LIMIT"
	// limitCopyBuffer is the buffer each of the limit's copies uses.
	limitCopyBuffer = 256 << 10
	// maxLimitErrorBody is how much of a refusal the limit keeps to say why.
	maxLimitErrorBody = 4 << 10
)

// Kinds of limitJob: the plainest way of doing what a ferry command does.
const (
	limitPack   = "pack"   // every blob and manifest GET into one file, fsync at the end
	limitApply  = "apply"  // every blob of a bundle POST + one PUT, then the manifests
	limitMirror = "mirror" // every blob GET from the source and POST + one PUT to the target
)

// limitJob is one run of a limit, in a process of its own so that its
// CPU and memory are measured as ferry's are, apart from the registries'.
type limitJob struct {
	Kind string
	// Source is the base URL read from (pack; mirror: a host).
	Source string
	// Target is the base URL pushed to (apply; mirror: a host).
	Target string
	Repo   string
	Bundle string // apply: read from
	Out    string // pack: the one file written
	// Images and Blobs are the release's (pack, mirror).
	Images   []testbed.ImageInfo
	Blobs    map[digest.Digest]int64
	Parallel int
	// Result is where the child writes the bytes it moved, as JSON.
	Result string
}

// runLimit runs job in the test binary started again, measured like ferry.
func runLimit(t *testing.T, job limitJob) (cmdStats, int64) {
	t.Helper()
	dir := t.TempDir()
	job.Result = filepath.Join(dir, "result.json")
	if job.Parallel == 0 {
		job.Parallel = registry.DefaultParallel
	}
	data, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	jobFile := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jobFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBenchmarkLimitChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchLimitEnv+"="+jobFile)
	stats := measure(t, cmd, nil)
	var moved int64
	data, err = os.ReadFile(job.Result)
	if err == nil {
		err = json.Unmarshal(data, &moved)
	}
	if err != nil {
		t.Fatalf("limit %s: no result: %v", job.Kind, err)
	}
	return stats, moved
}

// TestBenchmarkLimitChild is no test of its own: TestBenchmark runs the
// test binary again with it to run one limit (benchLimitEnv).
func TestBenchmarkLimitChild(t *testing.T) {
	path := os.Getenv(benchLimitEnv)
	if path == "" {
		t.Skip("run by TestBenchmark")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var job limitJob
	if err := json.Unmarshal(data, &job); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{
		Proxy: nil, MaxIdleConnsPerHost: 2 * job.Parallel,
		// The WAN mode's proxy has a certificate of its own making.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a test registry
	}}
	defer hc.CloseIdleConnections()
	var moved int64
	switch job.Kind {
	case limitPack:
		moved, err = packLimit(t.Context(), hc, job)
	case limitApply:
		moved, err = pushUnverified(t.Context(), hc, job.Bundle, job.Target, job.Repo, job.Parallel)
	case limitMirror:
		moved, err = fetchAndPush(t.Context(), &testbed.Release{Images: job.Images, Blobs: job.Blobs}, job.Source, job.Target, job.Repo)
	default:
		err = fmt.Errorf("unknown limit %q", job.Kind)
	}
	if err != nil {
		t.Fatalf("limit %s: %v", job.Kind, err)
	}
	if data, err = json.Marshal(moved); err == nil {
		err = os.WriteFile(job.Result, data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// limitObject is one GET of the pack limit, at its place in the file.
type limitObject struct {
	path   string // /v2/<repo>/blobs/<digest> or /manifests/<digest>
	accept string
	offset int64
}

// packLimit GETs every blob (once) and manifest of the release into one
// file, each at its own offset, Parallel at once, and fsyncs the file at
// the end. Nothing is checked.
func packLimit(ctx context.Context, hc *http.Client, job limitJob) (int64, error) {
	from := map[digest.Digest]string{}
	for _, im := range job.Images {
		for _, d := range im.Blobs {
			from[d] = im.Repository
		}
	}
	var objs []limitObject
	var end int64
	for _, d := range slices.Sorted(maps.Keys(from)) {
		objs = append(objs, limitObject{path: "/v2/" + from[d] + "/blobs/" + d.String(), offset: end})
		end += job.Blobs[d]
	}
	for _, im := range job.Images {
		objs = append(objs, limitObject{path: "/v2/" + im.Repository + "/manifests/" + im.Digest.String(), accept: im.MediaType, offset: end})
		end += im.Size
	}
	f, err := os.Create(job.Out)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(job.Parallel)
	for _, o := range objs {
		g.Go(func() error { return getInto(gctx, hc, job.Source+o.path, o.accept, io.NewOffsetWriter(f, o.offset)) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return end, f.Close()
}

// getInto copies the body of a GET of u into w.
func getInto(ctx context.Context, hc *http.Client, u, accept string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	_, err = io.CopyBuffer(w, resp.Body, make([]byte, limitCopyBuffer))
	return err
}

// pushUnverified copies a bundle into repo at base (a URL) the plainest
// way: every config and layer read at its offset in the tar and uploaded
// with POST and one PUT (parallel at once), then every manifest by digest,
// single images before lists, then the tags (parallel at once too). Nothing is hashed on this
// side. It returns the bytes of blobs and manifests sent.
func pushUnverified(ctx context.Context, hc *http.Client, bundlePath, base, repo string, parallel int) (int64, error) {
	r, err := bundle.Open(bundlePath, bundle.ReadOptions{})
	if err != nil {
		return 0, err
	}
	defer r.Close()

	// Each manifest once (tags merged), and each blob once.
	var images []bundle.Image
	at := map[digest.Digest]int{}
	var blobs []digest.Digest
	seen := map[digest.Digest]bool{}
	for _, img := range r.Index().Images {
		if i, ok := at[img.Digest]; ok {
			images[i].Tags = append(slices.Clone(images[i].Tags), img.Tags...)
			continue
		}
		at[img.Digest] = len(images)
		images = append(images, img)
		for _, d := range img.Blobs {
			if !seen[d] {
				seen[d] = true
				blobs = append(blobs, d)
			}
		}
	}
	singles := singlesFirst(images, func(img bundle.Image) string { return img.MediaType })

	sizes := make([]int64, len(blobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i, d := range blobs {
		g.Go(func() error {
			sr, size, err := r.Blob(d)
			if err != nil {
				return err
			}
			sizes[i] = size
			return uploadBlobTo(gctx, hc, base, repo, d, sr, size)
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	var total int64
	for _, n := range sizes {
		total += n
	}
	manifests := make([][]byte, len(images))
	for i, img := range images {
		sr, size, err := r.Blob(img.Digest)
		if err != nil {
			return 0, err
		}
		if manifests[i], err = io.ReadAll(sr); err != nil {
			return 0, err
		}
		total += size
	}
	err = inWaves(ctx, parallel, singles, len(images), func(ctx context.Context, i int) error {
		return putManifest(ctx, hc, base, repo, images[i].Digest.String(), images[i].MediaType, manifests[i])
	})
	if err != nil {
		return 0, err
	}
	type tagged struct{ image, tag int }
	var tags []tagged
	for i, img := range images {
		for t := range img.Tags {
			tags = append(tags, tagged{i, t})
		}
	}
	err = inWaves(ctx, parallel, len(tags), len(tags), func(ctx context.Context, n int) error {
		img := images[tags[n].image]
		return putManifest(ctx, hc, base, repo, img.Tags[tags[n].tag], img.MediaType, manifests[tags[n].image])
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// putManifest PUTs a manifest to base/v2/repo/manifests/reference.
func putManifest(ctx context.Context, hc *http.Client, base, repo, reference, mediaType string, data []byte) error {
	u := base + "/v2/" + repo + "/manifests/" + reference
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxLimitErrorBody))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT %s: %s: %s", u, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// uploadBlob is uploadBlobTo a plain-HTTP registry at host.
func uploadBlob(ctx context.Context, hc *http.Client, host, repo string, d digest.Digest, body io.Reader, size int64) error {
	return uploadBlobTo(ctx, hc, "http://"+host, repo, d, body, size)
}

// uploadBlobTo is the shortest upload the distribution API allows: POST
// for a session, then one PUT ?digest= with the whole body.
func uploadBlobTo(ctx context.Context, hc *http.Client, base, repo string, d digest.Digest, body io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %s", req.URL, resp.Status)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = hc.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxLimitErrorBody))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT blob %s: %s: %s", d, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
