//go:build linux

package e2e

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ferryhq/ferry/e2e/testbed"
)

func printBenchFacts(t *testing.T, w io.Writer, rel *testbed.Release, shape *testbed.PayloadShape, scale float64, built time.Duration) {
	t.Helper()
	ferry, _, _ := strings.Cut(runFerry(t, nil, "version").stdout, "\n")
	roles := map[string]int{}
	for _, im := range rel.Images {
		roles[im.Role]++
	}
	sizes := shape.OwnLayerSizes()
	memKiB, _ := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64)
	fmt.Fprintf(w, "\n=== ferry benchmark (one run, wall clock; other work on the machine makes it noisy)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "machine\tnproc %d (%s), %.1f GiB RAM, %s/%s, load average %s\n", runtime.NumCPU(),
		procField("/proc/cpuinfo", "model name"), float64(memKiB)/(1<<20), runtime.GOOS, runtime.GOARCH, loadAverage())
	fmt.Fprintf(tw, "tools\t%s; this test built with %s\n", ferry, runtime.Version())
	fmt.Fprintf(tw, "payload\tthe real shape at FERRY_BENCH_SCALE=%g: %s, %s of blobs, built and pushed in %s\n", scale, rel.Tag, mib(rel.Bytes), built.Round(time.Millisecond))
	fmt.Fprintf(tw, "images\t%d components (%d images, %d indexes), %d manifests (%d cosign signatures), %d unique blobs\n",
		len(rel.Components), roles[testbed.RoleComponent]+roles[testbed.RoleChild], countIndexes(rel), len(rel.Images), roles[testbed.RoleSigstore], len(rel.Blobs))
	fmt.Fprintf(tw, "layers\t%d own layers log-normal: median %s, largest %s, smallest %s; %d base layers (%s) shared\n",
		len(sizes), humanSize(sizes[len(sizes)/2]), humanSize(sizes[len(sizes)-1]), humanSize(sizes[0]), len(shape.BaseLayers), humanSize(sum(shape.BaseLayers)))
	fmt.Fprintf(tw, "registries\tdistribution (v3) in the test process, filesystem storage on loopback; their CPU is this process's during a run\n")
	if coldCache() {
		fmt.Fprintf(tw, "page cache\tdropped before every run (FERRY_BENCH_CACHE=cold); sync between runs (untimed)\n")
	} else {
		fmt.Fprintf(tw, "page cache\twarm for every run; sync between runs (untimed)\n")
	}
	_ = tw.Flush()
}

// humanSize is n in KiB under a MiB, else in MiB.
func humanSize(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return mib(n)
}

func countIndexes(rel *testbed.Release) int {
	n := 0
	for _, im := range rel.Images {
		if im.Role == testbed.RoleComponent && len(im.Children) > 0 {
			n++
		}
	}
	return n
}

func sum(ns []int64) int64 {
	var n int64
	for _, v := range ns {
		n += v
	}
	return n
}

func printPair(w io.Writer, p *benchPair) {
	fmt.Fprintf(w, "\n--- %s\n", p.title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "contender\twall\tMiB/s\tclient CPU\tof it sys\tregistry CPU\tpeak RSS\tconnections\treq/object\trequests\t\n")
	runs := []benchRun{p.ferry, p.limit}
	if p.baseline != nil {
		runs = []benchRun{p.ferry, *p.baseline, p.limit}
	}
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.2f\t%s\t\n", r.name, r.cmd.wall.Round(time.Millisecond),
			throughput(r.bytes, r.cmd.wall), r.cmd.cpu.Round(time.Millisecond), r.cmd.sys.Round(time.Millisecond), r.reg.cpu.Round(time.Millisecond),
			mib(r.cmd.maxRSS), r.connections(), float64(r.reg.requests())/float64(max(p.objects, 1)), byMethod(r.reg.methods))
	}
	_ = tw.Flush()
	if b := p.baseline; b != nil {
		fmt.Fprintf(w, "  ferry / baseline: wall %.2fx, client CPU %.2fx, sys %.2fx, peak RSS %.2fx (%s)\n",
			timeRatio(p.ferry.cmd.wall, b.cmd.wall), timeRatio(p.ferry.cmd.cpu, b.cmd.cpu), timeRatio(p.ferry.cmd.sys, b.cmd.sys),
			float64(p.ferry.cmd.maxRSS)/float64(max(b.cmd.maxRSS, 1)), b.note)
	}
	fmt.Fprintf(w, "  ferry / limit: wall %.2fx (target <= %.2fx: %s), client CPU %.2fx, registry CPU %.2fx\n",
		p.ratio(), p.target, verdict(p.ratio() <= p.target), timeRatio(p.ferry.cmd.cpu, p.limit.cmd.cpu), timeRatio(p.ferry.reg.cpu, p.limit.reg.cpu))
	fmt.Fprintf(w, "  %s: %s\n  %s: %s\n", p.ferry.name, p.ferry.note, p.limit.name, p.limit.note)
	fmt.Fprintf(w, "  objects: %d (unique blobs and manifests); the limit's peak RSS is the test binary's, run again\n", p.objects)
	if p.ferry.wan {
		fmt.Fprintf(w, "  registry CPU includes the TLS proxy's; connections are the clients' to the proxy\n")
	}
	for _, n := range p.notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

// byMethod is "GET 1200 HEAD 30 ...", methods by name.
func byMethod(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func printFlatness(w io.Writer, runs []flatnessRun) {
	fmt.Fprintf(w, "\n--- MEMORY: ferry pack's peak RSS at two payload sizes (flat: it must not follow the bytes)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "payload\twall\tpeak RSS\tclient CPU\t\n")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", mib(r.bytes), r.pack.cmd.wall.Round(time.Millisecond), mib(r.pack.cmd.maxRSS), r.pack.cmd.cpu.Round(time.Millisecond))
	}
	_ = tw.Flush()
	a, b := runs[0], runs[len(runs)-1]
	fmt.Fprintf(w, "  %.2fx the bytes, %.2fx the peak RSS\n", float64(b.bytes)/float64(max(a.bytes, 1)), float64(b.pack.cmd.maxRSS)/float64(max(a.pack.cmd.maxRSS, 1)))
}

func printBenchSummary(w io.Writer, pairs []*benchPair) {
	fmt.Fprintf(w, "\n--- SUMMARY: ferry against the limit\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\tferry\tlimit\tratio\ttarget\tresult\tconnections ferry/limit\treq/object ferry/limit\tpeak RSS\n")
	for _, p := range pairs {
		name, _, _ := strings.Cut(p.title, ":")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t<= %.2fx\t%s\t%d / %d\t%.2f / %.2f\t%s\n", strings.ToLower(name),
			p.ferry.cmd.wall.Round(time.Millisecond), p.limit.cmd.wall.Round(time.Millisecond), p.ratio(), p.target, verdict(p.ratio() <= p.target),
			p.ferry.connections(), p.limit.connections(),
			float64(p.ferry.reg.requests())/float64(max(p.objects, 1)), float64(p.limit.reg.requests())/float64(max(p.objects, 1)),
			mib(p.ferry.cmd.maxRSS))
	}
	_ = tw.Flush()
}
