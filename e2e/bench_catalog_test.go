//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/registry"
)

const (
	// catalogRSSLimit is issue 13's bound on memory: reading and filtering
	// a catalog may peak at this many times its FBC's uncompressed size,
	// so that memory follows the catalog's size, not a multiple of it
	// that grows with what is done to it.
	catalogRSSLimit = 3.0
	// catalogHeadsPackages is how many packages the heads-only selection
	// names: the operators of a busy cluster.
	catalogHeadsPackages = 20
	// catalogChildEnv carries "<mode> <pull spec>" to the test binary run
	// again as TestBenchmarkCatalogChild; catalogChildPrefix starts the
	// line it answers on.
	catalogChildEnv    = "FERRY_BENCH_CATALOG_CHILD"
	catalogChildPrefix = "ferry-bench-catalog-child: "
)

// TestBenchmarkCatalog is the operator-catalog part of make bench: a
// catalog of the shape and scale of Red Hat's operator index, read by
// ferry catalog list, and read and filtered (heads of a few packages,
// then everything) by mirror/catalog in a process of its own. It prints
// wall time, CPU and peak RSS against the FBC's size and asserts nothing
// about either: it fails only if a run fails or reads a catalog other than
// the one built.
func TestBenchmarkCatalog(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("a benchmark: set FERRY_BENCH=1 (make bench)")
	}
	reg := testbed.StartDockerRegistry(t)
	start := time.Now()
	cat := testbed.BuildLargeCatalog(t, reg.Host, testbed.LargeCatalogOptions{Packages: benchCatalogPackages(t)})
	built := time.Since(start)
	settle()

	idle := timeCmd(t, nil, ferryBin, "version")
	settle()
	childIdle := runCatalogChild(t, "idle", cat)
	settle()
	var listed struct {
		Packages []catalog.PackageSummary `json:"packages"`
	}
	list := timeFerry(t, &listed, "catalog", "list", cat.PullSpec, "--src-tls-verify=false", "--json")
	if len(listed.Packages) != len(cat.Packages) {
		t.Fatalf("ferry catalog list: %d packages, the catalog has %d", len(listed.Packages), len(cat.Packages))
	}
	settle()
	heads := runCatalogChild(t, "heads", cat)
	settle()
	full := runCatalogChild(t, "full", cat)
	if full.res.Bundles != cat.Bundles || heads.res.Packages < min(catalogHeadsPackages, len(cat.Packages)) {
		t.Fatalf("filter kept %d of %d bundles with full: true, %d packages of the heads of %d",
			full.res.Bundles, cat.Bundles, heads.res.Packages, catalogHeadsPackages)
	}

	w := bufio.NewWriter(os.Stdout)
	printCatalogBench(w, cat, built, []catalogRow{
		{name: "ferry version", cmdStats: idle, note: "an idle ferry process, where ferry catalog list's RSS starts"},
		{name: "ferry catalog list --json", cmdStats: list, idle: idle.maxRSS, checked: true,
			note: fmt.Sprintf("pull, flatten and parse the FBC, list %d packages", len(listed.Packages))},
		{name: "test binary, idle", cmdStats: childIdle.cmdStats, note: "the test binary run as the children below are, reading nothing: where their RSS starts"},
		heads.row(fmt.Sprintf("read + filter heads of %d packages", catalogHeadsPackages), childIdle.maxRSS),
		full.row("read + filter full: true", childIdle.maxRSS),
	})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// benchCatalogPackages is FERRY_BENCH_CATALOG_PACKAGES, else the large
// catalog's default.
func benchCatalogPackages(t *testing.T) int {
	t.Helper()
	s := os.Getenv("FERRY_BENCH_CATALOG_PACKAGES")
	if s == "" {
		return testbed.DefaultLargeCatalogPackages
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("FERRY_BENCH_CATALOG_PACKAGES=%q: want a number of packages", s)
	}
	return n
}

// catalogChildResult is what TestBenchmarkCatalogChild reports of its
// read and filter.
type catalogChildResult struct {
	Read, Filter time.Duration
	// Bundles and Packages are what the filter kept.
	Bundles, Packages int
	// LiveHeap is the Go heap still reachable once both are done (a GC
	// forced after them): the parsed catalog and what the filter kept.
	LiveHeap uint64
}

type catalogChild struct {
	cmdStats
	res catalogChildResult
}

func (c catalogChild) row(name string, idle int64) catalogRow {
	return catalogRow{name: name, cmdStats: c.cmdStats, idle: idle, checked: true, note: fmt.Sprintf(
		"read %s, filter %s: kept %d bundles of %d packages; live Go heap after both %s",
		c.res.Read.Round(time.Millisecond), c.res.Filter.Round(time.Millisecond), c.res.Bundles, c.res.Packages, mib(int64(c.res.LiveHeap)))}
}

// runCatalogChild runs this test binary again as TestBenchmarkCatalogChild,
// which reads cat and filters it as mode says, and measures that process.
func runCatalogChild(t *testing.T, mode string, cat *testbed.LargeCatalog) catalogChild {
	t.Helper()
	t.Setenv(catalogChildEnv, mode+" "+cat.PullSpec)
	var out bytes.Buffer
	stats := timeCmd(t, &out, os.Args[0], "-test.run=^TestBenchmarkCatalogChild$", "-test.count=1")
	for line := range strings.Lines(out.String()) {
		if rest, ok := strings.CutPrefix(line, catalogChildPrefix); ok {
			var res catalogChildResult
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				t.Fatalf("catalog child %s: %v: %s", mode, err, rest)
			}
			return catalogChild{stats, res}
		}
	}
	t.Fatalf("catalog child %s said nothing:\n%s", mode, out.Bytes())
	return catalogChild{}
}

// TestBenchmarkCatalogChild is no test of its own: TestBenchmarkCatalog
// runs the test binary again with it, so that reading and filtering in
// process, as ferry does before it packs operators, is measured in a
// process of its own. It reads the catalog named in catalogChildEnv and
// filters it: "heads" selects the first catalogHeadsPackages packages
// (each channel's head), "full" everything; "idle" does nothing, for the
// binary's own cost.
func TestBenchmarkCatalogChild(t *testing.T) {
	mode, ref, ok := strings.Cut(os.Getenv(catalogChildEnv), " ")
	if !ok {
		t.Skip("run by TestBenchmarkCatalog")
	}
	if mode == "idle" {
		fmt.Printf("%s{}\n", catalogChildPrefix)
		return
	}
	opts := registry.DefaultOptions()
	opts.TLSVerify, opts.AuthFile = false, filepath.Join(t.TempDir(), "auth.json")
	start := time.Now()
	cat, err := catalog.Read(t.Context(), registry.New(opts), ref)
	if err != nil {
		t.Fatal(err)
	}
	var res catalogChildResult
	res.Read = time.Since(start)
	sel := catalog.Selection{Catalog: ref, Full: mode == "full"}
	if mode == "heads" {
		for _, p := range cat.FBC.Packages[:min(catalogHeadsPackages, len(cat.FBC.Packages))] {
			sel.Packages = append(sel.Packages, catalog.PackageSelection{Name: p.Name})
		}
	}
	start = time.Now()
	kept, _, err := catalog.Filter(cat.FBC, sel, catalog.FilterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res.Filter = time.Since(start)
	res.Bundles, res.Packages = len(kept.Bundles), len(kept.Packages)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.LiveHeap = ms.HeapAlloc
	runtime.KeepAlive(cat)
	runtime.KeepAlive(kept)
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", catalogChildPrefix, data)
}

// catalogRow is one measured process; checked rows are held to
// catalogRSSLimit. idle is the peak RSS of the same binary doing nothing,
// 0 for none.
type catalogRow struct {
	name string
	cmdStats
	idle    int64
	checked bool
	note    string
}

func printCatalogBench(w io.Writer, cat *testbed.LargeCatalog, built time.Duration, rows []catalogRow) {
	fmt.Fprintf(w, "\n--- CATALOG: reading and filtering an operator catalog of Red Hat's shape (nproc %d, load average %s)\n", runtime.NumCPU(), loadAverage())
	fmt.Fprintf(w, "catalog  %d packages, %d channels, %d bundles (%d olm.bundle.object, %s of base64), %d related images; built and pushed in %s\n",
		len(cat.Packages), cat.Channels, cat.Bundles, cat.BundleObjects, mib(cat.BundleObjectBytes), cat.RelatedImages, built.Round(time.Millisecond))
	fmt.Fprintf(w, "FBC      /configs/<package>/catalog.json: %s uncompressed (largest file %s); its layer %s gzip'd; the image %s\n",
		mib(cat.FBCBytes), mib(cat.LargestFile), mib(cat.ConfigsLayerSize), mib(cat.ImageSize))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\twall\tCPU\tpeak RSS\tRSS / FBC\t(RSS - idle) / FBC\ttarget (RSS / FBC)\tresult\t\n")
	fbc := float64(max(cat.FBCBytes, 1))
	for _, r := range rows {
		ratio := float64(r.maxRSS) / fbc
		above, target, verdict := "-", "-", "-"
		if r.idle > 0 {
			above = fmt.Sprintf("%.2fx", float64(r.maxRSS-r.idle)/fbc)
		}
		if r.checked {
			target, verdict = fmt.Sprintf("<= %.2fx", catalogRSSLimit), "met"
			if ratio > catalogRSSLimit {
				verdict = "NOT met"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2fx\t%s\t%s\t%s\t\n", r.name, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond),
			mib(r.maxRSS), ratio, above, target, verdict)
	}
	_ = tw.Flush()
	for _, r := range rows {
		fmt.Fprintf(w, "  %s: %s\n", r.name, r.note)
	}
	fmt.Fprintf(w, "  read + filter run mirror/catalog in this test binary (no ferry command filters yet); the live heap is taken after a GC forced once both are done\n")
}
