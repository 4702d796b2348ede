package testbed

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// largePackage is one package of a large catalog: its names, versions and
// channel shape, drawn from the seed before any FBC is written, so that
// packages that depend on it can name its versions and APIs.
type largePackage struct {
	name string
	ns   string // registry namespace of its images, and its CRDs' group
	// versions ascend; minors are the [start, end) index ranges of its
	// minor versions, oldest first, and minorNames their "1.2" names.
	versions   []string
	minors     [][2]int
	minorNames []string
	// prerelease: Red Hat's 4.<minor>.<patch>-<build time> versions.
	prerelease bool
	// minorChannels is how many stable-<minor> channels it has besides
	// stable; defaultNewest makes the newest of them the default.
	minorChannels int
	defaultNewest bool
	kinds         []largeKind
	operands      []string // operand image repositories, under ns
	// requiresPackage and requiresAPI are indexes of the packages whose
	// package or first API it requires; -1 for none.
	requiresPackage, requiresAPI int
}

// largeKind is one CRD a package owns.
type largeKind struct {
	group, version, kind, plural string
	fields                       int // spec fields of its first minor
}

// Words that package and kind names are made of: enough combinations for
// hundreds of distinct names that read like real operators'.
var (
	largeDomains = []string{"cluster", "data", "edge", "mesh", "storage", "network", "log", "metrics", "trace", "secret",
		"cert", "backup", "queue", "cache", "stream", "build", "deploy", "policy", "compliance", "gpu",
		"serverless", "pipeline", "registry", "search", "identity"}
	largeRoles = []string{"manager", "operator", "controller", "gateway", "agent", "broker", "scanner", "exporter",
		"proxy", "scheduler", "keeper", "sync", "vault", "relay", "watcher", "collector"}
	largeKindWords = []string{"Instance", "Cluster", "Backup", "Restore", "Policy", "Config", "Gateway", "Route",
		"Pool", "Job", "Schedule", "Target", "Snapshot", "Bucket", "Topic", "User"}
)

// largePlans draws the plans of n packages from seed.
func largePlans(seed int64, n int) []*largePackage {
	plans := make([]*largePackage, n)
	for i := range plans {
		plans[i] = largePlan(seed, i, n)
	}
	return plans
}

func largePlan(seed int64, i, n int) *largePackage {
	r := rand.New(rand.NewChaCha8(seedFor(seed, "large-catalog", "plan", strconv.Itoa(i))))
	domain, role := largeDomains[i%len(largeDomains)], largeRoles[(i/len(largeDomains))%len(largeRoles)]
	ns := domain + "-" + role
	if round := i / (len(largeDomains) * len(largeRoles)); round > 0 {
		ns += strconv.Itoa(round + 1)
	}
	p := &largePackage{name: ns + "-operator", ns: ns, requiresPackage: -1, requiresAPI: -1}
	if role == "operator" {
		p.name = ns
	}
	p.prerelease = i%5 == 4
	p.drawVersions(r, 2+r.IntN(31))
	p.minorChannels = min(r.IntN(4), len(p.minors))
	p.defaultNewest = p.minorChannels > 0 && r.IntN(3) == 0
	for k := range []int{1, 1, 1, 2, 2, 3}[r.IntN(6)] {
		word := largeKindWords[(i+k*7)%len(largeKindWords)]
		kind := titleWord(domain) + word
		p.kinds = append(p.kinds, largeKind{
			group: ns + ".example.com", version: []string{"v1", "v1beta1", "v1alpha1"}[r.IntN(3)],
			kind: kind, plural: strings.ToLower(kind) + "s", fields: 3 + r.IntN(8),
		})
	}
	for k := range 1 + r.IntN(3) {
		p.operands = append(p.operands, fmt.Sprintf("%s/%s-%s-rhel9", ns, domain, []string{"server", "worker", "ui"}[k]))
	}
	if i%11 == 5 {
		p.requiresPackage = (i * 7) % n
	}
	if i%17 == 8 {
		p.requiresAPI = (i*5 + 3) % n
	}
	if p.requiresPackage == i {
		p.requiresPackage = -1
	}
	if p.requiresAPI == i {
		p.requiresAPI = -1
	}
	return p
}

// drawVersions makes count ascending versions in runs of minors, as a
// project releases: mostly patches, sometimes a minor, rarely a major.
func (p *largePackage) drawVersions(r *rand.Rand, count int) {
	major, minor, patch := 1+r.IntN(3), r.IntN(4), 0
	if p.prerelease {
		major, minor = 4, 11+r.IntN(4)
	}
	built := time.Date(2023, 1, 2, 8, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(90*24)) * time.Hour)
	for k := range count {
		name := fmt.Sprintf("%d.%d", major, minor)
		if k == 0 || p.minorNames[len(p.minorNames)-1] != name {
			p.minors = append(p.minors, [2]int{k, k})
			p.minorNames = append(p.minorNames, name)
		}
		p.minors[len(p.minors)-1][1] = k + 1
		v := fmt.Sprintf("%d.%d.%d", major, minor, patch)
		if p.prerelease {
			v += "-" + built.Format("200601021504")
			built = built.Add(time.Duration(72+r.IntN(400)) * time.Hour)
		}
		p.versions = append(p.versions, v)
		switch x := r.IntN(100); {
		case x < 3 && !p.prerelease:
			major, minor, patch = major+1, 0, 0
		case x < 33:
			minor, patch = minor+1, 0
		default:
			patch++
		}
	}
}

// bundleName is the bundle of version v: <package>.v<version>.
func (p *largePackage) bundleName(v string) string { return p.name + ".v" + v }

// minorOf is the index in minors of the bundle at index k.
func (p *largePackage) minorOf(k int) int {
	for m, r := range p.minors {
		if k < r[1] {
			return m
		}
	}
	return len(p.minors) - 1
}

// skipRange is the skipRange of the entry at index k: the first bundle of
// each minor but the first skips the whole minor before it.
func (p *largePackage) skipRange(k int) string {
	m := p.minorOf(k)
	if m == 0 || p.minors[m][0] != k {
		return ""
	}
	return ">=" + p.versions[p.minors[m-1][0]] + " <" + p.versions[k]
}

func titleWord(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func lowerWord(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]-'A'+'a') + s[1:]
}
