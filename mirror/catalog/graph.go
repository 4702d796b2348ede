package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// maxHeadCandidates bounds the bundles tried as the head of a channel cut
// by a version range before falling back to the catalog's own head. A range
// whose bundles have more tops than this (bundles no other selected bundle
// replaces or skips) is a flat fan of skips that only the catalog's head
// joins, so trying more of them would only cost time.
const maxHeadCandidates = 16

// channelGraph is one olm.channel with its entries' versions and the name
// references between the entries, which is all OLM's resolver and opm's
// validation look at. Sets of entries are []bool indexed like entries.
type channelGraph struct {
	pkg, name string
	entries   []declcfg.ChannelEntry // the catalog's slice, never written
	index     map[string]int
	versions  []semver.Version
	// ranges holds each entry's skipRange as OLM's resolver parses it:
	// blang/semver ParseRange, and no range at all when it does not parse
	// (OLM drops an unparseable skipRange silently, so no edge comes of it).
	ranges []semver.Range
	// referrers[i] are the entries naming entry i in replaces or skips,
	// refs[i] the entries that entry i names: opm's "incoming" edges.
	referrers, refs [][]int
}

func newChannelGraph(pkg string, ch *declcfg.Channel, version func(bundle string) (semver.Version, error)) (*channelGraph, error) {
	n := len(ch.Entries)
	g := &channelGraph{
		pkg: pkg, name: ch.Name, entries: ch.Entries,
		index: make(map[string]int, n), versions: make([]semver.Version, n), ranges: make([]semver.Range, n),
		referrers: make([][]int, n), refs: make([][]int, n),
	}
	for i, e := range ch.Entries {
		if _, dup := g.index[e.Name]; dup {
			return nil, fmt.Errorf("package %q channel %q: entry %q listed twice", pkg, ch.Name, e.Name)
		}
		g.index[e.Name] = i
		v, err := version(e.Name)
		if err != nil {
			return nil, fmt.Errorf("package %q channel %q: %w", pkg, ch.Name, err)
		}
		g.versions[i] = v
		if e.SkipRange != "" {
			if r, err := semver.ParseRange(e.SkipRange); err == nil {
				g.ranges[i] = r
			}
		}
	}
	for i, e := range ch.Entries {
		for _, name := range append([]string{e.Replaces}, e.Skips...) {
			if j, ok := g.index[name]; ok && !slices.Contains(g.refs[i], j) {
				g.refs[i] = append(g.refs[i], j)
				g.referrers[j] = append(g.referrers[j], i)
			}
		}
	}
	return g, nil
}

func (g *channelGraph) where() string {
	return fmt.Sprintf("package %q channel %q", g.pkg, g.name)
}

func (g *channelGraph) all() []bool {
	s := make([]bool, len(g.entries))
	for i := range s {
		s[i] = true
	}
	return s
}

func (g *channelGraph) names(set []bool) []string {
	var out []string
	for i, in := range set {
		if in {
			out = append(out, g.entries[i].Name)
		}
	}
	return out
}

// byVersionDesc orders entry indices from the highest version down.
func (g *channelGraph) byVersionDesc(idx []int) {
	slices.SortFunc(idx, func(a, b int) int {
		if c := g.versions[b].Compare(g.versions[a]); c != 0 {
			return c
		}
		return cmp.Compare(g.entries[a].Name, g.entries[b].Name)
	})
}

func (g *channelGraph) referredWithin(i int, set []bool) bool {
	for _, j := range g.referrers[i] {
		if set[j] {
			return true
		}
	}
	return false
}

// check applies opm's rules for a valid channel to the entries in kept (the
// rules of operator-registry alpha/model Channel.Validate): exactly one head,
// the entry nothing kept replaces or skips; from it the replaces chain,
// which stops at a skipped name, with no cycle; every kept entry on that
// chain or skipped by a kept entry. skipRange plays no part in it.
func (g *channelGraph) check(kept []bool) (head int, err error) {
	head = -1
	var heads []string
	skipped := map[string]bool{}
	for i, in := range kept {
		if !in {
			continue
		}
		for _, s := range g.entries[i].Skips {
			skipped[s] = true
		}
		if !g.referredWithin(i, kept) {
			head = i
			heads = append(heads, g.entries[i].Name)
		}
	}
	switch {
	case len(heads) == 0:
		return -1, fmt.Errorf("%s: no channel head (every entry is replaced or skipped)", g.where())
	case len(heads) > 1:
		slices.Sort(heads)
		return -1, fmt.Errorf("%s: multiple channel heads: %s", g.where(), strings.Join(heads, ", "))
	}
	onChain := map[string]bool{g.entries[head].Name: true}
	for cur := head; ; {
		next := g.entries[cur].Replaces
		if next == "" || skipped[next] {
			break
		}
		if onChain[next] {
			return -1, fmt.Errorf("%s: cycle in the replaces chain at %q", g.where(), next)
		}
		onChain[next] = true
		j, ok := g.index[next]
		if !ok || !kept[j] {
			break
		}
		cur = j
	}
	var stranded []string
	for i, in := range kept {
		if name := g.entries[i].Name; in && !onChain[name] && !skipped[name] {
			stranded = append(stranded, name)
		}
	}
	if len(stranded) > 0 {
		return -1, fmt.Errorf("%s: entries neither on the head's replaces chain nor skipped: %s", g.where(), strings.Join(stranded, ", "))
	}
	return head, nil
}

// keepChannel finds a valid channel that holds every required entry: a head
// and the fewest other entries ("connectors") that join the required ones to
// it through replaces and skips, so that opm accepts the channel without its
// entries being rewritten. It tries as head the required entries that no
// other required entry replaces or skips, highest version first, then the
// catalog's own head, under which the required entries and everything above
// them form a valid channel when the catalog's channel is valid, and last
// the whole channel. So it fails only when the catalog's channel does.
func (g *channelGraph) keepChannel(required []bool) (kept []bool, head int, err error) {
	lastErr := fmt.Errorf("%s: no entry can head the selected entries", g.where())
	for _, h := range g.headCandidates(required) {
		below := g.descendants(h)
		if !covers(below, required) {
			continue
		}
		for _, build := range []func([]bool, int, []bool) []bool{g.connect, g.ancestors} {
			kept := build(required, h, below)
			if kept == nil {
				continue
			}
			got, err := g.check(kept)
			if err == nil && got == h {
				return kept, h, nil
			}
			if err != nil {
				lastErr = err
			}
		}
	}
	// Entries tied to the rest only by a cycle of skips (which opm accepts)
	// are below no head: the whole channel is the one valid answer left.
	if head, err := g.check(g.all()); err == nil {
		return g.all(), head, nil
	}
	return nil, -1, fmt.Errorf("no connected channel holds the selected bundles: %w", lastErr)
}

func covers(set, required []bool) bool {
	for i, r := range required {
		if r && !set[i] {
			return false
		}
	}
	return true
}

func (g *channelGraph) headCandidates(required []bool) []int {
	var tops []int
	for i, r := range required {
		if r && !g.referredWithin(i, required) {
			tops = append(tops, i)
		}
	}
	g.byVersionDesc(tops)
	if len(tops) > maxHeadCandidates {
		tops = tops[:maxHeadCandidates]
	}
	for i := range g.entries {
		if len(g.referrers[i]) == 0 && !slices.Contains(tops, i) {
			tops = append(tops, i)
		}
	}
	return tops
}

// descendants is head and every entry it reaches through the names its
// entries replace or skip.
func (g *channelGraph) descendants(head int) []bool {
	seen := make([]bool, len(g.entries))
	seen[head] = true
	for queue := []int{head}; len(queue) > 0; queue = queue[1:] {
		for _, j := range g.refs[queue[0]] {
			if !seen[j] {
				seen[j] = true
				queue = append(queue, j)
			}
		}
	}
	return seen
}

// ancestors keeps the required entries, the head, and every entry between
// them: all entries above a required one, up to the head.
func (g *channelGraph) ancestors(required []bool, head int, below []bool) []bool {
	kept := slices.Clone(required)
	kept[head] = true
	var queue []int
	for i, r := range required {
		if r {
			queue = append(queue, i)
		}
	}
	for ; len(queue) > 0; queue = queue[1:] {
		for _, j := range g.referrers[queue[0]] {
			if below[j] && !kept[j] {
				kept[j] = true
				queue = append(queue, j)
			}
		}
	}
	return kept
}

// connect joins each required entry, highest version first, to the head by
// the path up through its referrers that adds the fewest entries not kept
// yet (a 0-1 breadth-first search). It returns nil when an entry cannot
// reach the head.
func (g *channelGraph) connect(required []bool, head int, below []bool) []bool {
	kept := slices.Clone(required)
	kept[head] = true
	joined := make([]bool, len(g.entries))
	joined[head] = true
	var order []int
	for i, r := range required {
		if r {
			order = append(order, i)
		}
	}
	g.byVersionDesc(order)
	for _, r := range order {
		if joined[r] {
			continue
		}
		path := g.cheapestPathUp(r, kept, joined, below)
		if path == nil {
			return nil
		}
		for _, i := range path {
			kept[i], joined[i] = true, true
		}
	}
	return kept
}

func (g *channelGraph) cheapestPathUp(from int, kept, joined, below []bool) []int {
	n := len(g.entries)
	cost := make([]int, n)
	prev := make([]int, n)
	for i := range cost {
		cost[i], prev[i] = n+1, -1
	}
	cost[from] = 0
	deque := []int{from}
	for len(deque) > 0 {
		cur := deque[0]
		deque = deque[1:]
		if joined[cur] {
			var path []int
			for i := cur; i != -1; i = prev[i] {
				path = append(path, i)
			}
			return path
		}
		for _, j := range g.referrers[cur] {
			if !below[j] {
				continue
			}
			step := 1
			if kept[j] {
				step = 0
			}
			if cost[cur]+step < cost[j] {
				cost[j], prev[j] = cost[cur]+step, cur
				if step == 0 {
					deque = append([]int{j}, deque...)
				} else {
					deque = append(deque, j)
				}
			}
		}
	}
	return nil
}

// olmOrder is the order in which OLM's resolver offers a channel's entries
// as upgrade candidates (operator-lifecycle-manager
// pkg/controller/registry/resolver/resolver.go, sortChannel): from the one
// entry nothing replaces or skips down its replaces chain, leaving out every
// entry that another entry skips. Entries off the chain are never offered.
func (g *channelGraph) olmOrder(kept []bool) ([]int, error) {
	n := len(g.entries)
	replacedBy, skipped := make([]bool, n), make([]bool, n)
	replaces := make([]int, n)
	for i := range replaces {
		replaces[i] = -1
	}
	for i, in := range kept {
		if !in {
			continue
		}
		if j, ok := g.index[g.entries[i].Replaces]; ok && kept[j] {
			replacedBy[j], replaces[i] = true, j
		}
		for _, s := range g.entries[i].Skips {
			if j, ok := g.index[s]; ok && kept[j] {
				replacedBy[j], skipped[j] = true, true
			}
		}
	}
	var heads []int
	for i, in := range kept {
		if in && !replacedBy[i] {
			heads = append(heads, i)
		}
	}
	if len(heads) != 1 {
		return nil, fmt.Errorf("%s: OLM needs exactly one channel head, found %d", g.where(), len(heads))
	}
	var order []int
	visited := make([]bool, n)
	for cur := heads[0]; cur != -1; cur = replaces[cur] {
		if visited[cur] {
			return nil, fmt.Errorf("%s: cycle in the replaces chain at %q", g.where(), g.entries[cur].Name)
		}
		visited[cur] = true
		if !skipped[cur] {
			order = append(order, cur)
		}
	}
	return order, nil
}

// upgrades reports whether OLM offers entry to as an upgrade from an
// installed bundle (operator-lifecycle-manager resolver.go,
// getSubscriptionVariables: SkipRangeIncludesPredicate or ReplacesPredicate,
// which covers replaces and skips): to replaces it, skips it by name, or
// its skipRange holds the installed version. The installed bundle need not
// be in the channel, or in the catalog at all.
func (g *channelGraph) upgrades(fromName string, fromVersion semver.Version, to int) bool {
	e := g.entries[to]
	switch {
	case e.Name == fromName:
		return false
	case e.Replaces == fromName, slices.Contains(e.Skips, fromName):
		return true
	}
	return g.ranges[to] != nil && g.ranges[to](fromVersion)
}

// reachable returns the kept entries OLM can move an installed bundle to,
// one upgrade after another, in the order OLM prefers them (head first).
func (g *channelGraph) reachable(kept []bool, fromName string, fromVersion semver.Version) ([]int, error) {
	order, err := g.olmOrder(kept)
	if err != nil {
		return nil, err
	}
	reached := make([]bool, len(g.entries))
	type bundleAt struct {
		name    string
		version semver.Version
	}
	for queue := []bundleAt{{fromName, fromVersion}}; len(queue) > 0; queue = queue[1:] {
		for _, c := range order {
			if !reached[c] && g.upgrades(queue[0].name, queue[0].version, c) {
				reached[c] = true
				queue = append(queue, bundleAt{g.entries[c].Name, g.versions[c]})
			}
		}
	}
	var out []int
	for _, c := range order {
		if reached[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// noUpgradePath lists the kept entries from which OLM offers no way, in one
// upgrade or several, to the channel's head: clusters on them stay there.
func (g *channelGraph) noUpgradePath(kept []bool, head int) []string {
	order, err := g.olmOrder(kept)
	if err != nil {
		order = []int{head}
	}
	candidate := make([]bool, len(g.entries))
	for _, c := range order {
		candidate[c] = true
	}
	// Walk back from the head: an entry gets there when OLM offers it a
	// candidate that gets there.
	toHead := make([]bool, len(g.entries))
	toHead[head] = true
	for queue := []int{head}; len(queue) > 0; queue = queue[1:] {
		c := queue[0]
		if !candidate[c] {
			continue
		}
		for x, in := range kept {
			if in && !toHead[x] && g.upgrades(g.entries[x].Name, g.versions[x], c) {
				toHead[x] = true
				queue = append(queue, x)
			}
		}
	}
	var stuck []string
	for i, in := range kept {
		if in && !toHead[i] {
			stuck = append(stuck, g.entries[i].Name)
		}
	}
	return stuck
}

// ErrInstalledNotInCatalog is returned by ReachableUpgrade when the installed
// bundle is not in the catalog, so its version is unknown; ReachableUpgradeFrom
// takes the version from the cluster's ClusterServiceVersion instead.
var ErrInstalledNotInCatalog = errors.New("installed bundle not in the catalog")

// ReachableUpgrade returns the bundles of the package's channel that OLM can
// move the installed bundle to, one upgrade after another through replaces,
// skips and skipRange, in the order OLM prefers them (nearest the head
// first). An empty result means OLM offers no upgrade.
func ReachableUpgrade(cfg *declcfg.DeclarativeConfig, pkg, channel, installedCSVName string) ([]declcfg.Bundle, error) {
	x, err := newCatalogIndex(cfg)
	if err != nil {
		return nil, err
	}
	v, err := x.version(pkg, installedCSVName)
	if err != nil {
		if _, known := x.bundles[pkg][installedCSVName]; !known {
			return nil, fmt.Errorf("package %q: %q: %w", pkg, installedCSVName, ErrInstalledNotInCatalog)
		}
		return nil, err
	}
	return reachableFrom(x, pkg, channel, installedCSVName, v)
}

// ReachableUpgradeFrom is ReachableUpgrade for an installed bundle given by
// name and version (the CSV's spec.version), which need not be in the catalog:
// OLM's upgrade edges match the installed bundle by name (replaces, skips)
// and by version (skipRange) only.
func ReachableUpgradeFrom(cfg *declcfg.DeclarativeConfig, pkg, channel, installedCSVName string, installedVersion semver.Version) ([]declcfg.Bundle, error) {
	x, err := newCatalogIndex(cfg)
	if err != nil {
		return nil, err
	}
	return reachableFrom(x, pkg, channel, installedCSVName, installedVersion)
}

func reachableFrom(x *catalogIndex, pkg, channel, name string, v semver.Version) ([]declcfg.Bundle, error) {
	g, err := x.channelGraph(pkg, channel)
	if err != nil {
		return nil, err
	}
	got, err := g.reachable(g.all(), name, v)
	if err != nil {
		return nil, err
	}
	out := make([]declcfg.Bundle, 0, len(got))
	for _, i := range got {
		out = append(out, x.cfg.Bundles[x.bundles[pkg][g.entries[i].Name]])
	}
	return out, nil
}
