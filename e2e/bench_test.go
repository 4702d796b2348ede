//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

const (
	// defaultBenchSize is the release's layer data unless FERRY_BENCH_SIZE
	// (bytes) says otherwise.
	defaultBenchSize = 600 << 20
	// targetRatio is the bound: ferry within 1.25x of moving the
	// same bytes with nothing else done.
	targetRatio = 1.25
	// hwmInterval is how often a running command's peak RSS is sampled.
	hwmInterval = 10 * time.Millisecond
)

// TestBenchmark is make bench: one run of ferry pack and ferry apply on a
// synthetic release in a docker-registry process, each beside baselines
// that move the same bytes (a raw cat, skopeo, a push with no
// verification). It prints a report and asserts nothing about time: it
// fails only if a command fails. Every contender starts with a warm page
// cache and no dirty pages (sync between runs).
func TestBenchmark(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("a benchmark: set FERRY_BENCH=1 (make bench)")
	}
	size := benchSize(t)
	dir := t.TempDir()

	start := time.Now()
	src := testbed.StartDockerRegistry(t)
	opts := testbed.LargeRelease(size)
	// A 4.22-like payload: an image policy covering every repository,
	// every manifest signed, so the pack proves each signature.
	opts.OCI, opts.SigstorePolicy = true, testbed.SigstorePolicy422
	rel := testbed.BuildRelease(t, src.Host, opts)
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	store.SignRelease(t, key, rel)
	keyFile := filepath.Join(dir, "release-key.asc")
	if err := os.WriteFile(keyFile, key.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)

	bundlePath := filepath.Join(dir, "bundle.tar")
	pack := benchPack(t, dir, src, rel, bundlePath, keyFile, store.URL)
	apply := benchApply(t, dir, bundlePath, keyFile)
	mirrored := benchMirror(t, dir, src, rel, keyFile, store.URL)
	sigstoreCost := benchSigstore(t, dir, rel, keyFile, store.URL)

	incOpts := testbed.LargeRelease(size / 2)
	incOpts.OCI = true
	inc := packIncremental(t, newReleasePair(t, incOpts))

	w := bufio.NewWriter(os.Stdout)
	printFacts(t, w, rel, size, built, statBundle(t, bundlePath))
	printSection(w, "PACK: registry -> one bundle file", pack)
	printSection(w, "APPLY: bundle -> mirror registry", apply)
	printSection(w, "MIRROR: source registry -> mirror registry, no bundle", mirrored)
	printSummary(w, pack, apply)
	printMirrorSummary(w, mirrored)
	printSigstoreCost(w, sigstoreCost)
	ratio := float64(inc.size) / float64(max(inc.newBytes, 1))
	verdict := "met"
	if ratio > 1.01 {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "\n--- INCREMENTAL: release 2 (%s of layers, sharing most with release 1) packed --since the mirror's inventory\n", mib(size/2))
	fmt.Fprintf(w, "bundle %d bytes / new unique blob bytes %d = %.4fx   target <= 1.01x   %s\n", inc.size, inc.newBytes, ratio, verdict)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// benchSize is FERRY_BENCH_SIZE, else defaultBenchSize.
func benchSize(t *testing.T) int64 {
	t.Helper()
	s := os.Getenv("FERRY_BENCH_SIZE")
	if s == "" {
		return defaultBenchSize
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("FERRY_BENCH_SIZE=%q: want a number of bytes", s)
	}
	return n
}

// contender is one way of moving the release's bytes, measured once.
type contender struct {
	name    string
	wall    time.Duration
	bytes   int64         // what it moved, for throughput
	cpu     time.Duration // user + system; 0: not measured
	maxRSS  int64         // bytes; 0: not measured
	written int64         // bytes; -1: not measured
	note    string
}

// benchSection is one part of the report; rows[0] is ferry.
type benchSection struct {
	rows  []contender
	notes []string
	// partial says what the skopeo baseline copied, when not everything.
	partial string
}

func (s *benchSection) row(prefix string) contender {
	for _, c := range s.rows {
		if strings.HasPrefix(c.name, prefix) {
			return c
		}
	}
	return contender{}
}

func benchPack(t *testing.T, dir string, src *testbed.DockerRegistry, rel *testbed.Release, bundlePath, keyFile, storeURL string) *benchSection {
	t.Helper()
	files, fileBytes := releaseFiles(t, src, rel)
	// Warm the page cache, untimed: every contender reads from memory.
	timeCmd(t, openDevNull(t), "cat", files...)
	settle()

	// Baseline 1: the registry's files of the release, into one file.
	catOut := filepath.Join(dir, "cat.out")
	cat := catToFile(t, catOut, files)
	if err := os.Remove(catOut); err != nil {
		t.Fatal(err)
	}
	settle()

	var sum struct {
		Images int `json:"images"`
		Blobs  int `json:"uniqueBlobs"`
	}
	fp := timeFerry(t, &sum, "pack", rel.PullSpec, "-o", bundlePath, "--no-self", "--src-tls-verify=false",
		"--keyring", keyFile, "--signature-store", storeURL, "--quiet", "--json")
	settle()
	b := statBundle(t, bundlePath)

	// Baseline 2: skopeo copy --all of every image into one OCI layout.
	layout := filepath.Join(dir, "skopeo-oci")
	var jobs []skopeoJob
	for _, im := range rel.Images {
		tag := layoutTag(rel, im)
		jobs = append(jobs, skopeoJob{
			label: fmt.Sprintf("%s %s (%s)", im.Role, tag, mediaKind(im.MediaType)), digest: im.Digest,
			args: []string{"copy", "--all", "--src-tls-verify=false",
				"docker://" + rel.Host + "/" + im.Repository + "@" + im.Digest.String(), "oci:" + layout + ":" + tag},
		})
	}
	sk := skopeoAll(t, jobs)
	covered := b.coveredBytes(sk.copied)
	layoutBytes := dirSize(t, layout)
	if err := os.RemoveAll(layout); err != nil {
		t.Fatal(err)
	}
	settle()

	s := &benchSection{partial: sk.partial(covered, b.blobBytes), rows: []contender{
		{name: "ferry pack", wall: fp.wall, cpu: fp.cpu, bytes: b.blobBytes, maxRSS: fp.maxRSS, written: fp.written,
			note: fmt.Sprintf("bundle %s (%s allocated); %d images, %d unique blobs", mib(b.size), mib(b.allocated), sum.Images, sum.Blobs)},
		{name: "raw cat of blob files", wall: cat.wall, cpu: cat.cpu, bytes: fileBytes, maxRSS: cat.maxRSS, written: cat.written,
			note: fmt.Sprintf("cat of %d files (%s) > one file", len(files), mib(fileBytes))},
		{name: "skopeo copy --all -> oci:", wall: sk.wall, bytes: covered, written: -1,
			note: fmt.Sprintf("%d runs, copied %s; layout %s", len(jobs), sk.coverage(covered, b.blobBytes), mib(layoutBytes))},
	}}
	if fileBytes != b.blobBytes || len(files) != b.blobs {
		s.notes = append(s.notes, fmt.Sprintf("note: the registry's files (%d, %s) and the bundle's blobs (%d, %s) differ",
			len(files), mib(fileBytes), b.blobs, mib(b.blobBytes)))
	}
	s.notes = append(s.notes, "CPU is user+system time; written is ru_oublock (bytes the process dirtied in files); neither is measured for skopeo")
	for _, f := range sk.failures {
		s.notes = append(s.notes, "skopeo failed: "+f)
	}
	return s
}

func benchApply(t *testing.T, dir, bundlePath, keyFile string) *benchSection {
	t.Helper()
	b := statBundle(t, bundlePath)
	dsts := []*testbed.DockerRegistry{testbed.StartDockerRegistry(t), testbed.StartDockerRegistry(t), testbed.StartDockerRegistry(t)}

	// Baseline A: a raw read of the tar.
	rawRead := timeCmd(t, openDevNull(t), "cat", bundlePath)
	settle()

	var sum struct {
		BlobsPushed int   `json:"blobsPushed"`
		BytesPushed int64 `json:"bytesPushed"`
		Manifests   int   `json:"manifests"`
		Tags        int   `json:"tags"`
	}
	fa := timeFerry(t, &sum, "apply", bundlePath, "--to", dsts[0].Host+"/"+targetRepo, "--dest-tls-verify=false",
		"--keyring", keyFile, "--no-cluster", "--quiet", "--json", "--output-dir", filepath.Join(dir, "manifests"))
	settle()

	// Baseline B: untar, then skopeo copy --all of every tagged OCI-typed
	// image of the layout. Docker-typed entries are left out: skopeo 1.9.3
	// does not find them in an OCI index (tried once, untimed, below).
	untarDir := filepath.Join(dir, "untar")
	if err := os.Mkdir(untarDir, 0o755); err != nil {
		t.Fatal(err)
	}
	untar := timeCmd(t, nil, "tar", "-xf", bundlePath, "-C", untarDir)
	layout := filepath.Join(untarDir, bundle.LayoutDir)
	var oci, docker []skopeoJob
	entries := layoutEntries(t, layout)
	for _, e := range entries {
		tag := e.Annotations[ocispec.AnnotationRefName]
		job := skopeoJob{label: tag, digest: e.Digest, args: []string{"copy", "--all", "--dest-tls-verify=false",
			"oci:" + layout + ":" + tag, "docker://" + dsts[1].Host + "/" + targetRepo + ":" + tag}}
		if mediaKind(e.MediaType) == "Docker" {
			docker = append(docker, job)
		} else {
			oci = append(oci, job)
		}
	}
	sk := skopeoAll(t, oci)
	sk.total = len(entries)
	covered := b.coveredBytes(sk.copied)
	var notes []string
	if len(docker) > 0 {
		said := "nothing: it copied it"
		if probe := skopeoAll(t, docker[:1]); len(probe.failures) > 0 {
			said = probe.failures[0]
		}
		notes = append(notes, fmt.Sprintf("B left out %d Docker-typed entries of the OCI index; skopeo, tried once untimed, said: %s", len(docker), said))
	}
	if err := os.RemoveAll(untarDir); err != nil {
		t.Fatal(err)
	}
	settle()

	// Baseline C: every blob and manifest pushed straight from the tar,
	// with ferry's parallelism, no verification.
	start := time.Now()
	pushed, err := pushUnverified(t.Context(), bundlePath, dsts[2].Host, targetRepo)
	if err != nil {
		t.Fatal(err)
	}
	raw := time.Since(start)
	settle()

	s := &benchSection{partial: sk.partial(covered, b.blobBytes), rows: []contender{
		{name: "ferry apply", wall: fa.wall, cpu: fa.cpu, bytes: b.blobBytes, maxRSS: fa.maxRSS, written: fa.written,
			note: fmt.Sprintf("verify, then %d blobs (%s), %d manifests, %d tags pushed", sum.BlobsPushed, mib(sum.BytesPushed), sum.Manifests, sum.Tags)},
		{name: "A: raw read of the tar", wall: rawRead.wall, cpu: rawRead.cpu, bytes: b.size, maxRSS: rawRead.maxRSS, written: rawRead.written,
			note: "cat bundle.tar > /dev/null, " + mib(b.size)},
		{name: "B: untar + skopeo copy", wall: untar.wall + sk.wall, bytes: covered, written: -1,
			note: fmt.Sprintf("tar -xf %s (CPU %s, peak RSS %s, wrote %s) + skopeo %s; copied %s (MiB/s of these)",
				untar.wall.Round(time.Millisecond), untar.cpu.Round(time.Millisecond), mib(untar.maxRSS), mib(untar.written),
				sk.wall.Round(time.Millisecond), sk.coverage(covered, b.blobBytes))},
		{name: "C: push, no verification", wall: raw, bytes: pushed, written: -1,
			note: fmt.Sprintf("in this process: POST + one PUT per blob, %d at once, nothing hashed client-side", registry.DefaultParallel)},
	}}
	s.notes = append(notes, sk.failures...)
	return s
}

// releaseFiles are the registry's files of the release: every config and
// layer, and every manifest (the registry stores those as blobs too).
func releaseFiles(t *testing.T, src *testbed.DockerRegistry, rel *testbed.Release) ([]string, int64) {
	t.Helper()
	digests := slices.Sorted(maps.Keys(rel.Blobs))
	for _, im := range rel.Images {
		digests = append(digests, im.Digest)
	}
	var files []string
	var n int64
	seen := map[digest.Digest]bool{}
	for _, d := range digests {
		if seen[d] {
			continue
		}
		seen[d] = true
		fi, err := os.Stat(src.BlobPath(d))
		if err != nil {
			t.Fatalf("blob file of %s: %v", d, err)
		}
		files = append(files, src.BlobPath(d))
		n += fi.Size()
	}
	return files, n
}

// bundleStats describe a bundle: its blobs (mirror/oci/blobs entries:
// manifests, configs, layers), its index's images, its size on disk.
type bundleStats struct {
	blobs           int
	blobBytes       int64
	images          int
	size, allocated int64

	index *bundle.Index
	sizes map[string]int64 // by file name
}

// coveredBytes is the size of the images with these digests: their
// manifests, children and blobs, each once.
func (s bundleStats) coveredBytes(images []digest.Digest) int64 {
	byDigest := map[digest.Digest]bundle.Image{}
	for _, img := range s.index.Images {
		byDigest[img.Digest] = img
	}
	seen := map[digest.Digest]bool{}
	var n int64
	var add func(d digest.Digest)
	add = func(d digest.Digest) {
		if seen[d] {
			return
		}
		seen[d] = true
		n += s.sizes[bundle.BlobName(d)]
		img := byDigest[d]
		for _, c := range img.Children {
			add(c)
		}
		for _, b := range img.Blobs {
			add(b)
		}
	}
	for _, d := range images {
		add(d)
	}
	return n
}

func statBundle(t *testing.T, path string) bundleStats {
	t.Helper()
	r, err := bundle.Open(path, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := bundleStats{index: r.Index(), sizes: map[string]int64{}}
	for _, f := range r.Index().Files {
		s.sizes[f.Name] = f.Size
		if strings.HasPrefix(f.Name, bundle.LayoutDir+"/blobs/") {
			s.blobs++
			s.blobBytes += f.Size
		}
	}
	s.images = len(r.Index().Images)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s.size, s.allocated = fi.Size(), fi.Sys().(*syscall.Stat_t).Blocks*512
	return s
}

// cmdStats is a finished command: how long it took and what it cost.
type cmdStats struct {
	wall    time.Duration
	cpu     time.Duration // user + system
	maxRSS  int64         // bytes: the process's own peak (see timeCmd)
	written int64         // bytes (ru_oublock, 512-byte blocks)
}

// timeCmd runs name with stdout going to stdout (nil: discarded) and
// fails the test, with the command's stderr, if it fails.
//
// Peak RSS: Go starts children with vfork, and Linux folds the parent's
// peak RSS into the child's ru_maxrss when it execs, so ru_maxrss is never
// below this test process's own peak. The child's own peak is the VmHWM of
// its address space, sampled while it runs; ru_maxrss is taken when it is
// above this process's peak, as it is then the child's.
func timeCmd(t *testing.T, stdout io.Writer, name string, args ...string) cmdStats {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	start := time.Now()
	err := cmd.Start()
	var peak, ours int64
	if err == nil {
		ours = vmHWM("self") // after the exec: all it may have folded in
		done, sampled := make(chan struct{}), make(chan int64, 1)
		go func() { sampled <- sampleHWM(cmd.Process.Pid, done) }()
		err = cmd.Wait()
		close(done)
		peak = <-sampled
	}
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if rss := ru.Maxrss << 10; rss > ours {
		peak = max(peak, rss)
	}
	return cmdStats{
		wall: wall, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		maxRSS: peak, written: ru.Oublock * 512,
	}
}

// timeFerry runs the ferry binary and decodes its --json summary into sum.
func timeFerry(t *testing.T, sum any, args ...string) cmdStats {
	t.Helper()
	var stdout bytes.Buffer
	r := timeCmd(t, &stdout, ferryBin, args...)
	if err := json.Unmarshal(stdout.Bytes(), sum); err != nil {
		t.Fatalf("ferry %s --json: %v\n%s", args[0], err, stdout.Bytes())
	}
	return r
}

// sampleHWM returns the highest VmHWM of process pid seen until done.
func sampleHWM(pid int, done <-chan struct{}) int64 {
	tick := time.NewTicker(hwmInterval)
	defer tick.Stop()
	var peak int64
	for {
		peak = max(peak, vmHWM(strconv.Itoa(pid)))
		select {
		case <-done:
			return peak
		case <-tick.C:
		}
	}
}

// vmHWM is the peak RSS of /proc/<pid>'s address space, in bytes; 0 if
// unknown (the process is gone).
func vmHWM(pid string) int64 {
	v := strings.TrimSuffix(procField("/proc/"+pid+"/status", "VmHWM"), " kB")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}

// settle writes dirty pages back, so that no run pays for the last one's.
func settle() {
	syscall.Sync()
	if coldCache() {
		// Needs root; where refused, the run is simply warm (the report says which).
		_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
	}
}

// coldCache is FERRY_BENCH_CACHE=cold: the page cache is dropped before
// every contender, so each reads from disk as on a real host.
func coldCache() bool { return os.Getenv("FERRY_BENCH_CACHE") == "cold" }

func openDevNull(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// catToFile concatenates files into out with cat, timed.
func catToFile(t *testing.T, out string, files []string) cmdStats {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return timeCmd(t, f, "cat", files...)
}

// skopeoJob is one skopeo run of the image digest; label names it in
// failures.
type skopeoJob struct {
	label  string
	digest digest.Digest
	args   []string
}

// skopeoRun is a series of skopeo runs: their total time, the images
// copied (of total, which the caller may change), and the failures.
type skopeoRun struct {
	wall     time.Duration
	copied   []digest.Digest
	total    int
	failures []string
}

// skopeoAll runs the jobs one after the other through the test bed
// (isolated configuration), recording failures instead of failing.
func skopeoAll(t *testing.T, jobs []skopeoJob) skopeoRun {
	t.Helper()
	res := skopeoRun{total: len(jobs)}
	for _, j := range jobs {
		start := time.Now()
		_, stderr, err := testbed.RunSkopeo(t, j.args...)
		res.wall += time.Since(start)
		if err == nil {
			res.copied = append(res.copied, j.digest)
			continue
		}
		msg, _, _ := strings.Cut(strings.TrimSpace(string(stderr)), "\n")
		if _, m, ok := strings.Cut(msg, ` msg="`); ok { // logrus: time=... level=fatal msg="..."
			msg = strings.ReplaceAll(strings.TrimSuffix(m, `"`), `\"`, `"`)
		}
		if msg == "" {
			msg = err.Error()
		}
		res.failures = append(res.failures, j.label+": "+msg)
	}
	return res
}

func (r skopeoRun) coverage(covered, all int64) string {
	return fmt.Sprintf("%d/%d images, %s of %s", len(r.copied), r.total, mib(covered), mib(all))
}

// partial is coverage, or "" when every image was copied.
func (r skopeoRun) partial(covered, all int64) string {
	if len(r.copied) == r.total {
		return ""
	}
	return r.coverage(covered, all)
}

// layoutEntries reads the tagged entries of an OCI layout's index.json.
func layoutEntries(t *testing.T, layout string) []ocispec.Descriptor {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(layout, ocispec.ImageIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	var out []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] != "" {
			out = append(out, m)
		}
	}
	return out
}

// pushUnverified copies a bundle into repo on host the plainest way: every
// config and layer read at its offset in the tar and uploaded in one PUT
// (registry.DefaultParallel at once), then every manifest by digest,
// single images before lists, then the tags. Nothing is hashed on this
// side. It returns the bytes of blobs and manifests sent.
func pushUnverified(ctx context.Context, bundlePath, host, repo string) (int64, error) {
	r, err := bundle.Open(bundlePath, bundle.ReadOptions{})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: registry.DefaultParallel}}
	defer hc.CloseIdleConnections()

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
	singlesFirst(images, func(img bundle.Image) string { return img.MediaType })

	sizes := make([]int64, len(blobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(registry.DefaultParallel)
	for i, d := range blobs {
		g.Go(func() error {
			sr, size, err := r.Blob(d)
			if err != nil {
				return err
			}
			sizes[i] = size
			return uploadBlob(gctx, hc, host, repo, d, sr, size)
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	var total int64
	for _, n := range sizes {
		total += n
	}

	c := testbed.NewClient(host)
	c.HTTP = hc
	manifests := make([][]byte, len(images))
	for i, img := range images {
		sr, size, err := r.Blob(img.Digest)
		if err != nil {
			return 0, err
		}
		if manifests[i], err = io.ReadAll(sr); err != nil {
			return 0, err
		}
		if _, err := c.PushManifest(ctx, repo, img.Digest.String(), img.MediaType, manifests[i]); err != nil {
			return 0, err
		}
		total += size
	}
	for i, img := range images {
		for _, tag := range img.Tags {
			if _, err := c.PushManifest(ctx, repo, tag, img.MediaType, manifests[i]); err != nil {
				return 0, err
			}
		}
	}
	return total, nil
}

// singlesFirst orders manifests so that single images come before the
// lists that name them, as a registry requires.
func singlesFirst[T any](images []T, mediaType func(T) string) {
	isList := func(img T) bool {
		mt := mediaType(img)
		return mt == ocispec.MediaTypeImageIndex || mt == testbed.MediaTypeDockerManifestList
	}
	slices.SortStableFunc(images, func(a, b T) int {
		switch la, lb := isList(a), isList(b); {
		case la == lb:
			return 0
		case lb:
			return -1
		default:
			return 1
		}
	})
}

// uploadBlob is the shortest upload the distribution API allows: POST for
// a session, then one PUT ?digest= with the whole body.
func uploadBlob(ctx context.Context, hc *http.Client, host, repo string, d digest.Digest, body io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+"/v2/"+repo+"/blobs/uploads/", nil)
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
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT blob %s: %s: %s", d, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// layoutTag names an image in skopeo's OCI layout as ferry tags it.
func layoutTag(rel *testbed.Release, im testbed.ImageInfo) string {
	switch {
	case im.Tag != "":
		return im.Tag
	case im.Component != "":
		return rel.Version + "-" + rel.Arch + "-" + im.Component
	default:
		return im.Digest.Encoded()[:16]
	}
}

func mediaKind(mt string) string {
	if strings.Contains(mt, "docker") {
		return "Docker"
	}
	return "OCI"
}

// dirSize is the sum of the sizes of the regular files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return n
}

// procField returns the value of the first line of a /proc file whose key
// (before the colon) is key; "?" if there is none.
func procField(file, key string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func throughput(n int64, d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(n)/(1<<20)/max(d.Seconds(), 1e-9))
}

func timeRatio(a, b time.Duration) float64 { return a.Seconds() / max(b.Seconds(), 1e-9) }

func printFacts(t *testing.T, w io.Writer, rel *testbed.Release, size int64, built time.Duration, b bundleStats) {
	t.Helper()
	skopeo := strings.TrimSpace(string(testbed.Skopeo(t, "--version")))
	ferry, _, _ := strings.Cut(runFerry(t, nil, "version").stdout, "\n")
	roles := map[string]int{}
	for _, im := range rel.Images {
		roles[im.Role]++
	}
	memKiB, _ := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64)
	fmt.Fprintf(w, "\n=== ferry benchmark (one run, wall clock; other work on the machine makes it noisy)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "machine\tnproc %d (%s), %.1f GiB RAM, %s/%s, load average %s\n", runtime.NumCPU(),
		procField("/proc/cpuinfo", "model name"), float64(memKiB)/(1<<20), runtime.GOOS, runtime.GOARCH, loadAverage())
	fmt.Fprintf(tw, "tools\t%s; %s; this test built with %s\n", ferry, skopeo, runtime.Version())
	fmt.Fprintf(tw, "release\t%s, %s-typed, FERRY_BENCH_SIZE=%d (%s), built and pushed in %s\n", rel.Tag,
		mediaKind(rel.MediaType), size, mib(size), built.Round(time.Millisecond))
	fmt.Fprintf(tw, "images\t%d: %d release, %d components, %d sigstore (ferry's index: %d)\n", len(rel.Images),
		roles[testbed.RoleRelease], roles[testbed.RoleComponent], roles[testbed.RoleSigstore], b.images)
	fmt.Fprintf(tw, "unique blobs\t%d configs and layers (%s) + %d manifests = %d, %s; throughput is of these\n",
		len(rel.Blobs), mib(rel.Bytes), b.blobs-len(rel.Blobs), b.blobs, mib(b.blobBytes))
	if coldCache() {
		fmt.Fprintf(tw, "page cache\tdropped before every run (FERRY_BENCH_CACHE=cold); sync between runs (untimed)\n")
	} else {
		fmt.Fprintf(tw, "page cache\twarm for every run; sync between runs (untimed)\n")
	}
	_ = tw.Flush()
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

func printSection(w io.Writer, title string, s *benchSection) {
	fmt.Fprintf(w, "\n--- %s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "contender\twall\tMiB/s\tCPU\tpeak RSS\twritten\tferry / this\t\n")
	for _, c := range s.rows {
		cpu, rss, written := "-", "-", "-"
		if c.cpu > 0 {
			cpu = c.cpu.Round(time.Millisecond).String()
		}
		if c.maxRSS > 0 {
			rss = mib(c.maxRSS)
		}
		if c.written >= 0 {
			written = mib(c.written)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.2fx\t\n", c.name, c.wall.Round(time.Millisecond),
			throughput(c.bytes, c.wall), cpu, rss, written, timeRatio(s.rows[0].wall, c.wall))
	}
	_ = tw.Flush()
	for _, c := range s.rows {
		fmt.Fprintf(w, "  %s: %s\n", c.name, c.note)
	}
	for _, n := range s.notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

func printSummary(w io.Writer, pack, apply *benchSection) {
	result := func(ok bool, partial string) string {
		r := "NOT met"
		if ok {
			r = "met"
		}
		if partial != "" {
			r += " (skopeo copied only " + partial + ")"
		}
		return r
	}
	fp, fa := pack.rows[0], apply.rows[0]
	packCat := timeRatio(fp.wall, pack.row("raw cat").wall)
	packSkopeo := timeRatio(fp.wall, pack.row("skopeo").wall)
	applyA := timeRatio(fa.wall, apply.row("A:").wall)
	applyB := timeRatio(fa.wall, apply.row("B:").wall)
	applyC := timeRatio(fa.wall, apply.row("C:").wall)

	fmt.Fprintf(w, "\n--- SUMMARY\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\twall\tMiB/s\tpeak RSS\tratio\tvalue\ttarget\tresult\n")
	fmt.Fprintf(tw, "pack\t%s\t%s\t%s\tpack / raw cat\t%.2fx\t<= %.2fx\t%s\n", fp.wall.Round(time.Millisecond),
		throughput(fp.bytes, fp.wall), mib(fp.maxRSS), packCat, targetRatio, result(packCat <= targetRatio, ""))
	fmt.Fprintf(tw, "\t\t\t\tpack / skopeo copy --all\t%.2fx\t< 1x\t%s\n", packSkopeo, result(packSkopeo < 1, pack.partial))
	fmt.Fprintf(tw, "apply\t%s\t%s\t%s\tapply / C: push, no verification\t%.2fx\t<= %.2fx\t%s\n", fa.wall.Round(time.Millisecond),
		throughput(fa.bytes, fa.wall), mib(fa.maxRSS), applyC, targetRatio, result(applyC <= targetRatio, ""))
	fmt.Fprintf(tw, "\t\t\t\tapply / B: untar + skopeo copy\t%.2fx\t< 1x\t%s\n", applyB, result(applyB < 1, apply.partial))
	fmt.Fprintf(tw, "\t\t\t\tapply / A: raw read of the tar\t%.2fx\t(none)\t-\n", applyA)
	_ = tw.Flush()
}
