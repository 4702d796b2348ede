package main

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
)

// releasePair is two signed test-bed releases in one registry, the second
// (4.15.1) sharing most blobs with the first (4.15.0), both signed by one
// key.
type releasePair struct {
	reg           *testbed.Registry
	first, second *testbed.Release
	store         *testbed.SignatureStore
	keyFile       string
}

func newReleasePair(t *testing.T, opts testbed.ReleaseOptions) *releasePair {
	t.Helper()
	reg := testbed.NewMemoryRegistry(t)
	first := testbed.BuildRelease(t, reg.Host, opts)
	opts.Version, opts.ShareWith, opts.Previous = "4.15.1", first, []string{first.Version}
	second := testbed.BuildRelease(t, reg.Host, opts)
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	store.SignRelease(t, key, first)
	store.SignRelease(t, key, second)
	return &releasePair{reg: reg, first: first, second: second, store: store,
		keyFile: writeTemp(t, "key.asc", key.PublicArmored(t))}
}

// packArgs are pack's flags for the pair's registry and store; the caller
// adds what to pack.
func (p *releasePair) packArgs(out string, extra ...string) []string {
	return append([]string{"pack", "-o", out, "--no-self", "--src-tls-verify=false", "--keyring", p.keyFile,
		"--signature-store", p.store.URL, "--quiet"}, extra...)
}

func (p *releasePair) applyArgs(bundlePath string, target *testbed.Registry, extra ...string) []string {
	return append([]string{"apply", bundlePath, "--to", target.Host + "/" + targetRepo, "--dest-tls-verify=false",
		"--keyring", p.keyFile, "--no-cluster", "--quiet", "--json", "--output-dir", filepath.Join(filepath.Dir(bundlePath), "manifests")}, extra...)
}

// graphNode is a node of a test update graph.
type graphNode struct{ version, payload string }

// writeGraph writes an update graph document for channel stable-4.15 and
// returns its file:// URL.
func writeGraph(t *testing.T, nodes []graphNode, edges [][2]int) string {
	t.Helper()
	type wireNode struct {
		Version  string            `json:"version"`
		Payload  string            `json:"payload"`
		Metadata map[string]string `json:"metadata"`
	}
	doc := struct {
		Version          int        `json:"version"`
		Nodes            []wireNode `json:"nodes"`
		Edges            [][2]int   `json:"edges"`
		ConditionalEdges []any      `json:"conditionalEdges"`
	}{Version: 1, Edges: edges, ConditionalEdges: []any{}}
	for _, n := range nodes {
		doc.Nodes = append(doc.Nodes, wireNode{n.version, n.payload, map[string]string{
			"io.openshift.upgrades.graph.release.channels": "stable-4.14,stable-4.15",
		}})
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return (&url.URL{Scheme: "file", Path: writeTemp(t, "graph.json", data)}).String()
}

// pairGraph is the pair as a graph: 4.14.9 (never packed: its payload does
// not exist) -> 4.15.0 -> 4.15.1.
func (p *releasePair) graph(t *testing.T) string {
	t.Helper()
	return writeGraph(t, []graphNode{
		{"4.15.1", p.second.DigestSpec()},
		{"4.14.9", p.first.Host + "/" + p.first.Repository + "@" + digest.FromString("gone").String()},
		{"4.15.0", p.first.DigestSpec()},
	}, [][2]int{{1, 2}, {2, 0}})
}

// TestPackUpdatePath packs the path 4.15.0 -> 4.15.1 from the graph: both
// releases by the graph's digests, shared blobs once, the path in the
// index, and apply prints the one update step.
func TestPackUpdatePath(t *testing.T) {
	p := newReleasePair(t, testbed.ReleaseOptions{Components: 4, Sigstore: true})
	out := filepath.Join(t.TempDir(), "path.tar")
	summary := mustFerry(t, p.packArgs(out, "--channel", "stable-4.15", "--from", "4.15.0", "--to", "4.15.1", "--graph-url", p.graph(t))...)
	if !regexp.MustCompile(`update path +4\.15\.0 -> 4\.15\.1`).MatchString(summary) {
		t.Errorf("summary does not show the path:\n%s", summary)
	}
	idx := readIndex(t, out)
	if len(idx.Releases) != 2 || idx.Releases[0].Digest != p.first.Digest || idx.Releases[1].Digest != p.second.Digest {
		t.Fatalf("releases %+v", idx.Releases)
	}
	if !slices.Equal(idx.UpdatePath, []string{"4.15.0", "4.15.1"}) || len(idx.Prerequisites) != 0 {
		t.Errorf("update path %v, prerequisites %d", idx.UpdatePath, len(idx.Prerequisites))
	}
	assertStoredOnce(t, idx, p.first, p.second)
	mustFerry(t, "verify", out, "--keyring", p.keyFile, "--quiet")

	target := testbed.NewMemoryRegistry(t)
	sum := applySummaryOf(t, mustFerry(t, p.applyArgs(out, target)...))
	want := "oc adm upgrade --allow-explicit-upgrade --to-image=" + target.Host + "/" + targetRepo + "@" + p.second.Digest.String()
	if len(sum.NextSteps) != 1 || sum.NextSteps[0] != want || !slices.Equal(sum.UpdatePath, idx.UpdatePath) {
		t.Errorf("next steps %q (path %v), want one step %q", sum.NextSteps, sum.UpdatePath, want)
	}
	text := mustFerry(t, slices.DeleteFunc(p.applyArgs(out, target), func(s string) bool { return s == "--json" })...)
	if !strings.Contains(text, "update path: 4.15.0 -> 4.15.1") {
		t.Errorf("apply does not print the path:\n%s", text)
	}
}

// TestPackRange packs every release of the channel in a version range.
func TestPackRange(t *testing.T) {
	p := newReleasePair(t, testbed.ReleaseOptions{Components: 2})
	out := filepath.Join(t.TempDir(), "range.tar")
	mustFerry(t, p.packArgs(out, "--channel", "stable-4.15", "--min", "4.15.0", "--max", "4.16.0", "--graph-url", p.graph(t))...)
	idx := readIndex(t, out)
	if len(idx.Releases) != 2 || idx.Releases[0].Version != "4.15.0" || idx.Releases[1].Version != "4.15.1" || idx.UpdatePath != nil {
		t.Fatalf("releases %+v, path %v", idx.Releases, idx.UpdatePath)
	}
	var rec packRecord
	if err := json.Unmarshal(idx.Options, &rec); err != nil || rec.Graph == nil || rec.Graph.Min != "4.15.0" || len(rec.Releases) != 2 {
		t.Errorf("options %s (%v)", idx.Options, err)
	}
	code, _, errOut := ferry(t, p.packArgs(filepath.Join(t.TempDir(), "none.tar"), "--channel", "stable-4.15", "--min", "4.16.0", "--graph-url", p.graph(t))...)
	if code != exitFailure || !strings.Contains(errOut, "no release between 4.16.0 and any") {
		t.Errorf("empty range: exit %d\n%s", code, errOut)
	}
}

// TestPackGraphCrossCheck: a graph whose digest for a version is not what
// the registry's release tag names is refused, naming both; so is a
// payload the registry does not have.
func TestPackGraphCrossCheck(t *testing.T) {
	p := newReleasePair(t, testbed.ReleaseOptions{Components: 2})
	lying := writeGraph(t, []graphNode{{"4.15.0", p.first.DigestSpec()}, {"4.15.1", p.first.DigestSpec()}}, [][2]int{{0, 1}})
	dir := t.TempDir()
	code, _, errOut := ferry(t, p.packArgs(filepath.Join(dir, "b.tar"), "--channel", "stable-4.15", "--from", "4.15.0", "--to", "4.15.1", "--graph-url", lying)...)
	if code != exitVerification || !strings.Contains(errOut, p.first.Digest.String()) || !strings.Contains(errOut, p.second.Digest.String()) {
		t.Errorf("mismatch: exit %d (want %d), stderr should name both digests:\n%s", code, exitVerification, errOut)
	}
	gone := p.first.Host + "/" + p.first.Repository + "@" + digest.FromString("gone").String()
	missing := writeGraph(t, []graphNode{{"4.15.0", p.first.DigestSpec()}, {"4.15.2", gone}}, [][2]int{{0, 1}})
	code, _, errOut = ferry(t, p.packArgs(filepath.Join(dir, "b.tar"), "--channel", "stable-4.15", "--min", "4.15.0", "--graph-url", missing)...)
	if code == 0 || !strings.Contains(errOut, "resolve release 4.15.2 ("+gone+")") {
		t.Errorf("missing payload: exit %d\n%s", code, errOut)
	}
	assertEmptyDir(t, dir)
}

func TestPackGraphUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"4.15.0", "--channel", "stable-4.15", "--min", "4.15.0"}, "not both"},
		{[]string{"--from", "4.15.0", "--to", "4.15.1"}, "give --channel too"},
		{[]string{"--channel", "stable-4.15"}, "give --from and --to"},
		{[]string{"--channel", "stable-4.15", "--from", "4.15.0"}, "go together"},
		{[]string{"--channel", "stable-4.15", "--from", "4.15.0", "--to", "4.15.1", "--max", "4.15.1"}, "exclude each other"},
		{[]string{"--channel", "stable-4.15", "--min", "4.15"}, "--min"},
		{[]string{"--channel", "stable-4.15", "--min", "4.15.0", "--accept-risks"}, "--accept-risks"},
		{[]string{"--channel", "stable-4.15", "--min", "4.15.0", "--arch", "sparc"}, "--arch"},
	}
	for _, tc := range cases {
		code, _, errOut := ferry(t, append([]string{"pack", "-o", filepath.Join(t.TempDir(), "b.tar")}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("pack %v: exit %d (want %d), stderr should mention %q:\n%s", tc.args, code, exitUsage, tc.want, errOut)
		}
	}
}

// assertStoredOnce checks that every blob and manifest of the releases is
// in the bundle exactly once.
func assertStoredOnce(t *testing.T, idx *bundle.Index, releases ...*testbed.Release) {
	t.Helper()
	count := map[string]int{}
	for _, f := range idx.Files {
		count[f.Name]++
	}
	shared := map[digest.Digest]int{}
	for _, rel := range releases {
		for d := range rel.Blobs {
			shared[d]++
			if n := count[bundle.BlobName(d)]; n != 1 {
				t.Errorf("blob %s stored %d times", d, n)
			}
		}
	}
	n := 0
	for _, c := range shared {
		if c > 1 {
			n++
		}
	}
	if n == 0 {
		t.Error("the releases share no blob: the test proves nothing")
	}
}
