//go:build linux

package bundle

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"
)

const (
	// benchDefaultSize is the payload unless FERRY_WRITER_BENCH_SIZE says
	// otherwise: the 1.8 GB release.
	benchDefaultSize = 1800 << 20
	// benchDefaultRuns is how many times each contender runs; the report
	// gives the medians, as other builds share the machine.
	benchDefaultRuns = 3
	// benchWorkers is pack's registry.DefaultParallel (bundle does not
	// import network code).
	benchWorkers = 6
	// benchCopyBuffer is pack's copyBufferSize: each worker's buffer.
	benchCopyBuffer = 1 << 20
	// benchMedianLayer and benchLayerSigma shape the layer sizes like a
	// real release's: log-normal around a 1 MB median, a mean near 2 MB
	// (the 863 blobs in 1.8 GB), a few large ones.
	benchMedianLayer = 1 << 20
	benchLayerSigma  = 1.2
	// benchMaxLayer caps one layer, as the largest of a real release.
	benchMaxLayer = 512 << 20
	// benchSourceSize is the random data blobs are cut from: larger than
	// the CPU caches, so copies are from memory as from a socket.
	benchSourceSize = 64 << 20
	// benchMinRead and benchMaxRead bound what one Read of a simulated
	// download returns with FERRY_WRITER_BENCH_READS=random: sizes that
	// are not multiples of a page. By default a Read fills the buffer, as
	// from a socket with data waiting (a fast registry while the reader
	// hashes and writes).
	benchMinRead = 4 << 10
	benchMaxRead = 1 << 20
	// benchSmallBuffer is io.Copy's own buffer, which a plain download
	// into a file uses.
	benchSmallBuffer = 32 << 10
)

// TestWriterKernelTime is a measurement, not a test: it writes a payload
// shaped like a release through the Writer as pack does (every blob
// reserved first, then filled by benchWorkers goroutines through
// benchCopyBuffer buffers from reads of network-like sizes) and, as the
// limit, the same bytes read the same way and written one after another
// into one file with one fsync; also the Writer as pack used it before it
// dropped written pages from the cache and reused its copy buffers. It
// prints the medians of user and system CPU, of the kernel threads' CPU
// meanwhile (writeback the process leaves to them), wall time, write
// syscalls and page faults. It runs only with FERRY_WRITER_BENCH=1;
// FERRY_WRITER_BENCH_SIZE (bytes), FERRY_WRITER_BENCH_RUNS,
// FERRY_WRITER_BENCH_DIR (default a temporary directory, which must be on
// the file system measured), FERRY_WRITER_BENCH_ONLY (contenders whose
// name contains it) and FERRY_WRITER_BENCH_EXPLORE=1 (more contenders)
// tune it.
func TestWriterKernelTime(t *testing.T) {
	if os.Getenv("FERRY_WRITER_BENCH") != "1" {
		t.Skip("a measurement: set FERRY_WRITER_BENCH=1")
	}
	size := benchEnvInt(t, "FERRY_WRITER_BENCH_SIZE", benchDefaultSize)
	runs := int(benchEnvInt(t, "FERRY_WRITER_BENCH_RUNS", benchDefaultRuns))
	dir := os.Getenv("FERRY_WRITER_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	p := newBenchPayload(size)
	p.randomReads = os.Getenv("FERRY_WRITER_BENCH_READS") == "random"
	contenders := []benchContender{
		{"limit: sequential writes, one fsync", p.writeLimit},
		{"limit in 32 KiB writes", p.writeLimitSmall},
		{"after: bundle.Writer as pack uses it", p.writeBundle},
		{"before: cache kept, a buffer per blob", p.writeBundleBefore},
		{"buffers reused, cache kept", p.writeBundleKeep},
	}
	if os.Getenv("FERRY_WRITER_BENCH_EXPLORE") == "1" {
		contenders = append(contenders, p.exploreContenders()...)
	}
	if only := os.Getenv("FERRY_WRITER_BENCH_ONLY"); only != "" {
		contenders = slices.DeleteFunc(contenders, func(c benchContender) bool { return !strings.Contains(c.name, only) })
	}
	samples := make([][]benchSample, len(contenders))
	for r := 0; r < runs; r++ {
		for i, c := range contenders {
			path := filepath.Join(dir, fmt.Sprintf("bench-%d.tar", i))
			settleMemory() // untimed
			s, err := measure(func() (int64, error) { return c.run(path) })
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			// What a kept page cache costs comes later, when the pages are
			// reclaimed or the file removed: that is measured too.
			rm, err := measure(func() (int64, error) { return 0, os.Remove(path) })
			if err != nil {
				t.Fatal(err)
			}
			s.release = rm.sys + rm.user
			samples[i] = append(samples[i], s)
		}
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "payload: %d blobs, %d bytes (%.2f GB), %d workers, median of %d runs\n",
		len(p.sizes), p.total, float64(p.total)/1e9, benchWorkers, runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\tuser s\tsys s\tkthreads s\tsys+kthreads s\tremove s\twall s\tcalls\twrite syscalls\tminor faults\tinvol. switches\treported MB\tsys/limit\tsys+kthreads/limit\t")
	limit := median(samples[0])
	for i, c := range contenders {
		m := median(samples[i])
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%d\t%d\t%.2fx\t%.2fx\t\n", c.name, m.user.Seconds(), m.sys.Seconds(),
			m.kthreads.Seconds(), m.sysKthreads.Seconds(), m.release.Seconds(), m.wall.Seconds(), m.calls, m.syscw, m.minflt, m.nivcsw, m.reported>>20, m.sys.Seconds()/max(limit.sys.Seconds(), 1e-9),
			m.sysKthreads.Seconds()/max(limit.sysKthreads.Seconds(), 1e-9))
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func benchEnvInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// benchPayload is the blobs' sizes and the random bytes they are cut from.
type benchPayload struct {
	sizes       []int64
	total       int64
	source      []byte
	randomReads bool
}

func newBenchPayload(total int64) *benchPayload {
	rng := rand.New(rand.NewPCG(17, 42))
	p := &benchPayload{source: make([]byte, benchSourceSize)}
	for i := 0; i+8 <= len(p.source); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			p.source[i+j] = byte(v >> (8 * j))
		}
	}
	for p.total < total {
		n := int64(math.Exp(math.Log(benchMedianLayer) + benchLayerSigma*rng.NormFloat64()))
		n = min(max(n, 1), benchMaxLayer, total-p.total)
		p.sizes = append(p.sizes, n)
		p.total += n
	}
	return p
}

// blob returns blob i as a download would deliver it.
func (p *benchPayload) blob(i int) io.Reader {
	d := &benchDownload{src: p.source, off: (i * 7919 * 4099) % len(p.source), left: p.sizes[i]}
	if p.randomReads {
		d.rng = rand.New(rand.NewPCG(uint64(i), 7))
	}
	return d
}

// benchDownload reads like a loopback HTTP body: each Read fills the
// buffer or, with a rng, returns a random amount between benchMinRead and
// benchMaxRead.
type benchDownload struct {
	src  []byte
	off  int
	left int64
	rng  *rand.Rand
}

func (d *benchDownload) Read(p []byte) (int, error) {
	if d.left == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if d.rng != nil {
		n = benchMinRead + d.rng.IntN(benchMaxRead-benchMinRead+1)
	}
	n = int(min(int64(n), int64(len(p)), d.left, int64(len(d.src)-d.off)))
	copy(p, d.src[d.off:d.off+n])
	d.off = (d.off + n) % len(d.src)
	d.left -= int64(n)
	return n, nil
}

// countingWriter counts the Write calls that reach w. It hides any
// ReadFrom of w, so that io.CopyBuffer uses the caller's buffer.
type countingWriter struct {
	w     io.Writer
	calls *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	c.calls.Add(1)
	return c.w.Write(b)
}

// writeLimit writes every blob, one after another, into one file, then
// syncs it once: the least a writer of these bytes can do.
func (p *benchPayload) writeLimit(path string) (int64, error) {
	return p.writeSequential(path, benchCopyBuffer, false, false)
}

// writeLimitSmall is writeLimit through io.Copy's buffer, as a plain
// download into a file does.
func (p *benchPayload) writeLimitSmall(path string) (int64, error) {
	return p.writeSequential(path, benchSmallBuffer, false, false)
}

// writeSequential is writeLimit, its writes gathered into whole aligned
// copy buffers or not, the file's pages dropped behind it as the Writer
// does or not.
func (p *benchPayload) writeSequential(path string, bufSize int, aligned, drop bool) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var calls atomic.Int64
	sw := &sequentialWriter{f: f}
	if drop {
		sw.cache = &cacheDropper{f: f}
	}
	var dst io.Writer = sw
	if aligned {
		dst = bufio.NewWriterSize(sw, benchCopyBuffer)
	}
	buf := make([]byte, bufSize)
	for i := range p.sizes {
		if _, err := io.CopyBuffer(countingWriter{dst, &calls}, p.blob(i), buf); err != nil {
			return 0, err
		}
	}
	if bw, ok := dst.(*bufio.Writer); ok {
		if err := bw.Flush(); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return calls.Load(), f.Close()
}

// sequentialWriter appends to f and, with a cache, hands each
// writebackChunk on to it.
type sequentialWriter struct {
	f       *os.File
	cache   *cacheDropper
	off     int64
	dropped int64
}

func (w *sequentialWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.off += int64(n)
	if err == nil && w.cache != nil && w.off-w.dropped >= writebackChunk {
		sp := span{w.dropped, pageDown(w.off)}
		w.dropped = sp.end
		err = w.cache.done(sp)
	}
	return n, err
}

// exploreContenders show what the page cache costs: writes gathered into
// aligned megabytes get large folios, and large folios come from memory
// nothing touched lately (FERRY_WRITER_BENCH_EXPLORE=1).
func (p *benchPayload) exploreContenders() []benchContender {
	return []benchContender{
		{"limit, cache dropped behind", func(path string) (int64, error) { return p.writeSequential(path, benchCopyBuffer, false, true) }},
		{"limit in aligned 1 MiB writes", func(path string) (int64, error) { return p.writeSequential(path, benchCopyBuffer, true, false) }},
		{"limit in aligned 1 MiB writes, cache dropped behind", func(path string) (int64, error) { return p.writeSequential(path, benchCopyBuffer, true, true) }},
	}
}

// writeBundle writes every blob through a Writer the way pack's
// fetchBlobs does: all reserved first, then filled concurrently.
func (p *benchPayload) writeBundle(path string) (int64, error) {
	return p.writeBundleAs(path, false, false)
}

// writeBundleBefore is writeBundle as pack did it before: the volume left
// in the page cache, a new copy buffer for every blob.
func (p *benchPayload) writeBundleBefore(path string) (int64, error) {
	return p.writeBundleAs(path, true, true)
}

// writeBundleKeep is writeBundle with the volume left in the page cache:
// what reusing the buffers alone gains.
func (p *benchPayload) writeBundleKeep(path string) (int64, error) {
	return p.writeBundleAs(path, true, false)
}

// writeBundleAs writes the bundle with the page cache kept or dropped and
// one buffer per worker or per blob.
func (p *benchPayload) writeBundleAs(path string, keepCache, bufferPerBlob bool) (int64, error) {
	w, err := Create(path, WriteOptions{})
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.Abort() }()
	if keepCache {
		w.vols[0].cache = nil // one volume: every slot is in it
	}
	slots := make([]*Slot, len(p.sizes))
	for i, n := range p.sizes {
		if slots[i], err = w.Reserve(fmt.Sprintf("mirror/bench/%06d", i), n, ""); err != nil {
			return 0, err
		}
	}
	var calls atomic.Int64
	var g errgroup.Group
	g.SetLimit(benchWorkers)
	bufs := make(chan []byte, benchWorkers)
	for range benchWorkers {
		bufs <- make([]byte, benchCopyBuffer)
	}
	for i, s := range slots {
		g.Go(func() error {
			buf := <-bufs
			defer func() { bufs <- buf }()
			if bufferPerBlob {
				buf = make([]byte, benchCopyBuffer)
			}
			if _, err := io.CopyBuffer(countingWriter{s, &calls}, p.blob(i), buf); err != nil {
				return err
			}
			return s.Commit()
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return calls.Load(), w.Finish(&Index{Tool: Tool{Name: "ferry"}})
}

type benchContender struct {
	name string
	run  func(path string) (writes int64, err error)
}

// benchSample is what one run cost the process.
type benchSample struct {
	user, sys, wall time.Duration
	// kthreads is the CPU of the kernel's own threads meanwhile (writeback
	// flushers, reclaim), which work for every process: a writer that
	// leaves its writeback to them looks cheaper than it is.
	kthreads time.Duration
	// release is the CPU removing the file took afterwards, most of it
	// freeing the pages the file kept in the page cache.
	release time.Duration
	// reported is the memory the guest handed back to its host meanwhile.
	reported int64
	// sysKthreads is sys+kthreads, its median taken on its own.
	sysKthreads    time.Duration
	calls          int64 // Write calls the harness made
	syscw          int64 // write syscalls of the process (/proc/self/io)
	minflt, nivcsw int64
}

func measure(run func() (int64, error)) (benchSample, error) {
	var before, after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		return benchSample{}, err
	}
	wBefore, err := writeSyscalls()
	if err != nil {
		return benchSample{}, err
	}
	kBefore := kernelThreadsCPU()
	rBefore := reportedKiB()
	start := time.Now()
	calls, err := run()
	wall := time.Since(start)
	if err != nil {
		return benchSample{}, err
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		return benchSample{}, err
	}
	wAfter, err := writeSyscalls()
	if err != nil {
		return benchSample{}, err
	}
	return benchSample{
		kthreads: kernelThreadsCPU() - kBefore,
		reported: (reportedKiB() - rBefore) << 10,
		user:     time.Duration(after.Utime.Nano() - before.Utime.Nano()),
		sys:      time.Duration(after.Stime.Nano() - before.Stime.Nano()),
		wall:     wall,
		calls:    calls,
		syscw:    wAfter - wBefore,
		minflt:   after.Minflt - before.Minflt,
		nivcsw:   after.Nivcsw - before.Nivcsw,
	}, nil
}

// reportedPath counts the memory a virtual machine's guest has handed back
// to its host (free page reporting), when the kernel has it.
const reportedPath = "/sys/module/page_reporting/parameters/reported_kib"

// settleMemory writes back the dirty pages of an earlier run and, on a
// guest that reports free memory to its host, waits (at most 20s) until
// the memory an earlier run freed is reported, that is until less than
// settledKiB a second is: every contender then starts from the same
// state, its page cache landing on memory the host must back afresh, as
// on a machine that was idle.
func settleMemory() {
	syscall.Sync()
	// settledKiB a second is others' churn on a shared machine.
	const settledKiB = 64 << 10
	last := reportedKiB()
	for range 20 {
		time.Sleep(time.Second)
		now := reportedKiB()
		if now-last < settledKiB {
			return
		}
		last = now
	}
}

func reportedKiB() int64 {
	data, err := os.ReadFile(reportedPath)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n
}

// kernelThreadsCPU is the CPU time kernel threads (children of kthreadd,
// pid 2) have used since boot, in clock ticks of 10ms.
func kernelThreadsCPU() time.Duration {
	var total int64
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command, which is in parentheses: state,
		// ppid, ... utime and stime are the 12th and 13th.
		_, rest, ok := strings.Cut(string(data), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 13 || f[1] != "2" {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + s
	}
	return time.Duration(total) * 10 * time.Millisecond
}

// writeSyscalls is the process's count of write system calls so far.
func writeSyscalls() (int64, error) {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no syscw in /proc/self/io")
}

// median takes each measure's median on its own.
func median(samples []benchSample) benchSample {
	pick := func(f func(benchSample) int64) int64 {
		vs := make([]int64, len(samples))
		for i, s := range samples {
			vs[i] = f(s)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	return benchSample{
		user:        time.Duration(pick(func(s benchSample) int64 { return int64(s.user) })),
		sys:         time.Duration(pick(func(s benchSample) int64 { return int64(s.sys) })),
		wall:        time.Duration(pick(func(s benchSample) int64 { return int64(s.wall) })),
		kthreads:    time.Duration(pick(func(s benchSample) int64 { return int64(s.kthreads) })),
		sysKthreads: time.Duration(pick(func(s benchSample) int64 { return int64(s.sys + s.kthreads) })),
		reported:    pick(func(s benchSample) int64 { return s.reported }),
		release:     time.Duration(pick(func(s benchSample) int64 { return int64(s.release) })),
		calls:       pick(func(s benchSample) int64 { return s.calls }),
		syscw:       pick(func(s benchSample) int64 { return s.syscw }),
		minflt:      pick(func(s benchSample) int64 { return s.minflt }),
		nivcsw:      pick(func(s benchSample) int64 { return s.nivcsw }),
	}
}
