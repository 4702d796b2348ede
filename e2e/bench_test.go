//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/registry"
)

const (
	// targetRatio is issue 17's bound for pack and apply (mirror has
	// mirrorTargetRatio): within 1.3x of the plainest HTTP moving the same
	// bytes.
	targetRatio = 1.3
	// benchSeed makes the payload: the same scale gives the same bytes.
	benchSeed = 17
	// flatnessBytes is the payload of the smaller pack of the memory
	// check, beside the main one: peak RSS must not follow the bytes.
	flatnessBytes = 1_000_000_000
	// sigstoreBenchBytes is the layer data of the release whose every
	// manifest is cosign-signed under an image policy, for what the proof
	// costs (a real payload signs only some, so it has its own release).
	sigstoreBenchBytes = 128 << 20
	// wanDefaultScale is the largest payload the WAN mode moves unless
	// FERRY_BENCH_WAN_SCALE says otherwise: every request waits 20-50 ms,
	// so its time follows the requests, which a quarter of the real
	// payload (48 components, 230 blobs) has plenty of.
	wanDefaultScale = 0.25
	// incrementalScale is the incremental check's payload, as a part of
	// the main one: two releases of it are built.
	incrementalScale = 0.25
	// hwmInterval is how often a running command's peak RSS is sampled.
	hwmInterval = 10 * time.Millisecond
)

// TestBenchmark is make bench: ferry pack, apply and mirror of a payload
// shaped like a real release (testbed.RealPayload at FERRY_BENCH_SCALE,
// 1: 1.8 GB), each beside its limit, the plainest HTTP that moves the
// same bytes (run in a process of its own, measured as ferry is); with
// FERRY_BENCH_WAN=1 pack and apply again, with their limits, through a TLS
// proxy that delays every request by 20-50 ms (see wan). The registries run in this
// process and count connections and requests. It prints a report and
// asserts nothing about speed: it fails only if a command fails. Every
// contender starts with no dirty pages (sync between runs).
func TestBenchmark(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("a benchmark: set FERRY_BENCH=1 (make bench)")
	}
	scale := benchScale(t)
	shape, err := testbed.RealPayload(scale, benchSeed)
	if err != nil {
		t.Fatal(err)
	}
	b := &benchBed{t: t, dir: t.TempDir(), counts: newBenchCounts()}
	b.src = startBenchRegistry(t, b.counts)
	b.keys()

	start := time.Now()
	rel := b.build(b.src.Host, testbed.ShapedRelease(shape))
	built := time.Since(start)
	settle()

	bundlePath := filepath.Join(b.dir, "bundle.tar")
	sections := []*benchPair{
		b.pack("PACK: registry -> one bundle file (loopback, plain HTTP)", rel, b.src.URL, bundlePath, false),
	}
	packOnly := os.Getenv("FERRY_BENCH_ONLY") == "pack"
	if !packOnly {
		sections = append(sections,
			b.apply("APPLY: bundle -> empty registry (loopback, plain HTTP)", rel, bundlePath, false),
			b.mirror("MIRROR: registry -> empty registry, no bundle (loopback, plain HTTP)", rel))
	}
	if os.Getenv("FERRY_BENCH_WAN") == "1" && !packOnly {
		sections = append(sections, b.wan(scale)...)
	}
	flat := b.flatness(scale, sections[0])
	removeFile(t, bundlePath)
	if packOnly {
		b.print(rel, shape, scale, built, sections, flat, nil, nil)
		return
	}

	sigRel := b.build(b.src.Host, sigstoreRelease422(scale))
	sigCost := benchSigstore(t, b.dir, sigRel, b.keyFile, b.storeURL)
	incShape, err := testbed.RealPayload(scale*incrementalScale, benchSeed+2)
	if err != nil {
		t.Fatal(err)
	}
	inc := packIncremental(t, newReleasePair(t, testbed.ShapedRelease(incShape)))

	b.print(rel, shape, scale, built, sections, flat, &sigCost, &incrementalRun{shape: incShape, result: inc})
}

// incrementalRun is the incremental pack's payload and what it gave.
type incrementalRun struct {
	shape  *testbed.PayloadShape
	result *incremental
}

// print writes the report; sig and inc are nil when not run.
func (b *benchBed) print(rel *testbed.Release, shape *testbed.PayloadShape, scale float64, built time.Duration,
	sections []*benchPair, flat []flatnessRun, sig *sigstoreCost, inc *incrementalRun) {
	t := b.t
	w := bufio.NewWriter(os.Stdout)
	printBenchFacts(t, w, rel, shape, scale, built)
	for _, s := range sections {
		printPair(w, s)
	}
	printFlatness(w, flat)
	printBenchSummary(w, sections)
	if sig != nil {
		printSigstoreCost(w, *sig)
	}
	if inc != nil {
		ratio := float64(inc.result.size) / float64(max(inc.result.newBytes, 1))
		verdict := "met"
		if ratio > 1.01 {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "\n--- INCREMENTAL: release 2 (%s of layers, sharing most with release 1) packed --since the mirror's inventory\n", mib(inc.shape.Bytes()))
		fmt.Fprintf(w, "bundle %d bytes / new unique blob bytes %d = %.4fx   target <= 1.01x   %s\n", inc.result.size, inc.result.newBytes, ratio, verdict)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// wan packs and applies a payload at FERRY_BENCH_WAN_SCALE (else the
// main scale, at most wanDefaultScale) through a TLS proxy adding 20-50 ms
// to every request, with the limits through the same proxy.
func (b *benchBed) wan(scale float64) []*benchPair {
	t := b.t
	if s := os.Getenv("FERRY_BENCH_WAN_SCALE"); s != "" {
		var err error
		if scale, err = strconv.ParseFloat(s, 64); err != nil || !(scale > 0) {
			t.Fatalf("FERRY_BENCH_WAN_SCALE=%q: want a positive number (1: 1.8 GB)", s)
		}
	} else {
		scale = min(scale, wanDefaultScale)
	}
	shape, err := testbed.RealPayload(scale, benchSeed+3)
	if err != nil {
		t.Fatal(err)
	}
	front := startWANFront(t, b.src, b.counts)
	opts := testbed.ShapedRelease(shape)
	opts.Version = "4.15.7"
	rel := b.build(front.Host, opts)
	settle()
	bundlePath := filepath.Join(b.dir, "wan.tar")
	at := fmt.Sprintf("(%s payload at scale %g) through TLS and 20-50 ms per request", mib(rel.Bytes), scale)
	pairs := []*benchPair{
		b.pack("WAN PACK: "+at, rel, "https://"+front.Host, bundlePath, true),
		b.apply("WAN APPLY: "+at, rel, bundlePath, true),
	}
	removeFile(t, bundlePath)
	return pairs
}

// benchScale is FERRY_BENCH_SCALE (1: the real 1.8 GB payload; 0.05 for a
// quick run; 4 for 7.2 GB), else 1.
func benchScale(t *testing.T) float64 {
	t.Helper()
	s := os.Getenv("FERRY_BENCH_SCALE")
	if s == "" {
		return 1
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) {
		t.Fatalf("FERRY_BENCH_SCALE=%q: want a positive number (1: 1.8 GB)", s)
	}
	return f
}

// sigstoreRelease422 is the release of the Sigstore cost: every manifest
// signed under a 4.22 image policy, so that a pack proves each signature;
// smaller for a payload scaled below 1.
func sigstoreRelease422(scale float64) testbed.ReleaseOptions {
	opts := testbed.LargeRelease(int64(sigstoreBenchBytes * min(scale, 1)))
	opts.OCI, opts.SigstorePolicy, opts.Version, opts.Seed = true, testbed.SigstorePolicy422, "4.22.0", benchSeed
	return opts
}

// benchBed is the bench's registries, keys and counters.
type benchBed struct {
	t        *testing.T
	dir      string
	counts   *benchCounts
	src      *benchRegistry
	keyFile  string
	store    *testbed.SignatureStore
	storeURL string
	key      *testbed.Key
}

// keys makes the release key and the signature store releases are signed in.
func (b *benchBed) keys() {
	b.key = testbed.NewKey(b.t, "release")
	b.store = testbed.NewSignatureStore(b.t)
	b.storeURL = b.store.URL
	b.keyFile = filepath.Join(b.dir, "release-key.asc")
	if err := os.WriteFile(b.keyFile, b.key.PublicArmored(b.t), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// build builds a release on host and signs it in the store.
func (b *benchBed) build(host string, opts testbed.ReleaseOptions) *testbed.Release {
	rel := testbed.BuildRelease(b.t, host, opts)
	b.store.SignRelease(b.t, b.key, rel)
	return rel
}

// benchRun is one contender's run: the command's own costs and what the
// registries (and WAN fronts) saw meanwhile.
type benchRun struct {
	name  string
	cmd   cmdStats
	reg   countsSnapshot
	bytes int64 // moved, for throughput
	wan   bool  // connections are counted at the WAN proxy
	note  string
}

// connections is what the contender opened: to the registries, or to the
// WAN proxy.
func (r benchRun) connections() int {
	if r.wan {
		return r.reg.wanConns
	}
	return r.reg.conns
}

// benchPair is a ferry command and its limit on the same bytes; objects
// is the blobs and manifests moved, the denominator of requests per object.
type benchPair struct {
	title        string
	target       float64 // the bound on ratio
	ferry, limit benchRun
	// baseline is another ferry binary's run (FERRY_BENCH_BASELINE), if any.
	baseline *benchRun
	objects  int
	notes    []string
}

func (p *benchPair) ratio() float64 { return timeRatio(p.ferry.cmd.wall, p.limit.cmd.wall) }

// measured runs f between two snapshots of the counters.
func (b *benchBed) measured(name string, wan bool, f func() (cmdStats, int64)) benchRun {
	before := b.counts.snapshot()
	stats, moved := f()
	after := b.counts.snapshot()
	settle()
	return benchRun{name: name, cmd: stats, reg: after.since(before), bytes: moved, wan: wan}
}

// objects is the release's unique blobs and its manifests.
func objects(rel *testbed.Release) int { return len(rel.Blobs) + len(rel.Images) }

// The flags that turn TLS checks off: the test registries are plain HTTP,
// or TLS with a certificate of their own.
const (
	srcTLSOff  = "--src-tls-verify=false"
	destTLSOff = "--dest-tls-verify=false"
)

func (b *benchBed) pack(title string, rel *testbed.Release, base, bundlePath string, wan bool) *benchPair {
	t := b.t
	var sum struct {
		Images int `json:"images"`
		Blobs  int `json:"uniqueBlobs"`
	}
	p := &benchPair{title: title, objects: objects(rel), target: targetRatio}
	p.ferry = b.measured("ferry pack", wan, func() (cmdStats, int64) {
		s := timeFerry(t, &sum, "pack", rel.PullSpec, "-o", bundlePath, "--no-self", srcTLSOff,
			"--keyring", b.keyFile, "--signature-store", b.storeURL, "--quiet", "--json")
		return s, fileSize(t, bundlePath)
	})
	p.ferry.note = fmt.Sprintf("bundle %s; %d images, %d unique blobs", mib(p.ferry.bytes), sum.Images, sum.Blobs)
	if bin := os.Getenv("FERRY_BENCH_BASELINE"); bin != "" {
		out := filepath.Join(b.dir, "baseline.tar")
		base := b.measured("baseline pack", wan, func() (cmdStats, int64) {
			s := timeBinary(t, bin, &sum, "pack", rel.PullSpec, "-o", out, "--no-self", srcTLSOff,
				"--keyring", b.keyFile, "--signature-store", b.storeURL, "--quiet", "--json")
			return s, fileSize(t, out)
		})
		removeFile(t, out)
		base.note = "FERRY_BENCH_BASELINE=" + bin + ", on the same payload just after ferry"
		p.baseline = &base
	}
	out := filepath.Join(b.dir, "limit.out")
	p.limit = b.measured(fmt.Sprintf("limit: %d GETs at once", registry.DefaultParallel), wan, func() (cmdStats, int64) {
		return runLimit(t, limitJob{Kind: limitPack, Source: base, Out: out, Images: rel.Images, Blobs: rel.Blobs})
	})
	p.limit.note = "every blob and manifest by plain GET into one file at its offset, fsync at the end, nothing checked"
	removeFile(t, out)
	return p
}

func (b *benchBed) apply(title string, rel *testbed.Release, bundlePath string, wan bool) *benchPair {
	t := b.t
	var targets []*benchRegistry
	defer func() {
		for _, reg := range targets {
			reg.drop(t)
		}
	}()
	target := func() string {
		reg := startBenchRegistry(t, b.counts)
		targets = append(targets, reg)
		if !wan {
			return reg.URL
		}
		return wanProxy(t, reg.URL, b.counts).URL
	}
	var sum struct {
		BlobsPushed int   `json:"blobsPushed"`
		BytesPushed int64 `json:"bytesPushed"`
		Manifests   int   `json:"manifests"`
		Tags        int   `json:"tags"`
	}
	p := &benchPair{title: title, objects: objects(rel), target: targetRatio}
	to := hostOf(target())
	p.ferry = b.measured("ferry apply", wan, func() (cmdStats, int64) {
		s := timeFerry(t, &sum, "apply", bundlePath, "--to", to+"/"+targetRepo, destTLSOff,
			"--keyring", b.keyFile, "--no-cluster", "--quiet", "--json", "--output-dir", filepath.Join(b.dir, "manifests"))
		return s, sum.BytesPushed
	})
	p.ferry.note = fmt.Sprintf("verify, then %d blobs (%s), %d manifests, %d tags pushed", sum.BlobsPushed, mib(sum.BytesPushed), sum.Manifests, sum.Tags)
	limitTarget := target()
	p.limit = b.measured(fmt.Sprintf("limit: %d single-PUT uploads", registry.DefaultParallel), wan, func() (cmdStats, int64) {
		return runLimit(t, limitJob{Kind: limitApply, Target: limitTarget, Repo: targetRepo, Bundle: bundlePath})
	})
	p.limit.note = "every blob read from the tar at its offset, POST then one PUT with the body; then the manifests and tags; nothing hashed"
	return p
}

func (b *benchBed) mirror(title string, rel *testbed.Release) *benchPair {
	t := b.t
	var sum struct {
		BlobsPushed int   `json:"blobsPushed"`
		BytesPushed int64 `json:"bytesPushed"`
		Manifests   int   `json:"manifests"`
		Tags        int   `json:"tags"`
	}
	p := &benchPair{title: title, objects: objects(rel), target: mirrorTargetRatio}
	dst := startBenchRegistry(t, b.counts)
	p.ferry = b.measured("ferry mirror", false, func() (cmdStats, int64) {
		s := timeFerry(t, &sum, "mirror", rel.DigestSpec(), "--to", dst.Host+"/"+targetRepo, srcTLSOff, destTLSOff,
			"--keyring", b.keyFile, "--signature-store", b.storeURL, "--no-cluster", "--quiet", "--json",
			"--output-dir", filepath.Join(b.dir, "mirror-manifests"))
		return s, sum.BytesPushed
	})
	p.ferry.note = fmt.Sprintf("signatures verified, then %d blobs (%s) copied digest-checked, %d manifests, %d tags", sum.BlobsPushed, mib(sum.BytesPushed), sum.Manifests, sum.Tags)
	limitDst := startBenchRegistry(t, b.counts)
	p.limit = b.measured(fmt.Sprintf("limit: %d fetch-and-push", registry.DefaultParallel), false, func() (cmdStats, int64) {
		return runLimit(t, limitJob{Kind: limitMirror, Source: b.src.Host, Target: limitDst.Host, Repo: targetRepo, Images: rel.Images, Blobs: rel.Blobs})
	})
	p.limit.note = "every blob GET from the source and POST + one PUT to the target, then the manifests; nothing hashed"
	p.notes = append(p.notes, "requests and connections are both registries' (ferry and the limit read one and write the other)")
	dst.drop(t)
	limitDst.drop(t)
	return p
}

// flatnessRun is one pack of the memory check.
type flatnessRun struct {
	bytes int64
	pack  benchRun
}

// flatness packs a second, smaller payload (1 GB, or half the main one
// when that is 1.5 GB or less) for the peak RSS beside the main pack's.
func (b *benchBed) flatness(scale float64, main *benchPair) []flatnessRun {
	t := b.t
	small := float64(flatnessBytes) / testbed.RealPayloadBytes
	if scale*testbed.RealPayloadBytes <= 1.5*flatnessBytes {
		small = scale / 2
	}
	shape, err := testbed.RealPayload(small, benchSeed+1)
	if err != nil {
		t.Fatal(err)
	}
	opts := testbed.ShapedRelease(shape)
	opts.Version = "4.15.9"
	rel := b.build(b.src.Host, opts)
	settle()
	out := filepath.Join(b.dir, "flat.tar")
	var sum struct{}
	run := b.measured("ferry pack", false, func() (cmdStats, int64) {
		s := timeFerry(t, &sum, "pack", rel.PullSpec, "-o", out, "--no-self", srcTLSOff,
			"--keyring", b.keyFile, "--signature-store", b.storeURL, "--quiet", "--json")
		return s, fileSize(t, out)
	})
	removeFile(t, out)
	return []flatnessRun{{bytes: rel.Bytes, pack: run}, {bytes: main.ferry.bytes, pack: main.ferry}}
}

// hostOf is a base URL's host.
func hostOf(base string) string {
	return strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// cmdStats is a finished command: how long it took and what it cost.
type cmdStats struct {
	wall    time.Duration
	cpu     time.Duration // user + system
	sys     time.Duration // system alone: the kernel's share (page cache, sockets)
	maxRSS  int64         // bytes: the process's own peak (see measure)
	written int64         // bytes (ru_oublock, 512-byte blocks)
}

// timeCmd runs name with stdout going to stdout (nil: discarded) and
// fails the test, with the command's stderr, if it fails.
func timeCmd(t *testing.T, stdout io.Writer, name string, args ...string) cmdStats {
	t.Helper()
	return measure(t, exec.CommandContext(t.Context(), name, args...), stdout)
}

// measure runs cmd with stdout going to stdout (nil: discarded) and fails
// the test, with the command's stderr, if it fails.
//
// Peak RSS: Go starts children with vfork, and Linux folds the parent's
// peak RSS into the child's ru_maxrss when it execs, so ru_maxrss is never
// below this test process's own peak. The child's own peak is the VmHWM of
// its address space, sampled while it runs; ru_maxrss is taken when it is
// above this process's peak, as it is then the child's.
func measure(t *testing.T, cmd *exec.Cmd, stdout io.Writer) cmdStats {
	t.Helper()
	var stderr bytes.Buffer
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
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if rss := ru.Maxrss << 10; rss > ours {
		peak = max(peak, rss)
	}
	return cmdStats{
		wall: wall, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), sys: time.Duration(ru.Stime.Nano()),
		maxRSS: peak, written: ru.Oublock * 512,
	}
}

// timeFerry runs the ferry binary and decodes its --json summary into sum.
func timeFerry(t *testing.T, sum any, args ...string) cmdStats {
	t.Helper()
	return timeBinary(t, ferryBin, sum, args...)
}

// timeBinary is timeFerry of another ferry binary.
func timeBinary(t *testing.T, bin string, sum any, args ...string) cmdStats {
	t.Helper()
	var stdout bytes.Buffer
	r := timeCmd(t, &stdout, bin, args...)
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

// singlesFirst orders manifests so that single images come before the
// lists that name them, as a registry requires, and says how many single
// images there are.
func singlesFirst[T any](images []T, mediaType func(T) string) int {
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
	return len(images) - len(slices.DeleteFunc(slices.Clone(images), func(img T) bool { return !isList(img) }))
}

// inWaves runs do for the items [0, split) and then for [split, n), each
// wave parallel at once: the limits push single images before the lists
// naming them, as ferry does, and as concurrently.
func inWaves(ctx context.Context, parallel, split, n int, do func(ctx context.Context, i int) error) error {
	for _, wave := range [][2]int{{0, split}, {split, n}} {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(parallel)
		for i := wave[0]; i < wave[1]; i++ {
			g.Go(func() error { return do(gctx, i) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
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

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}
