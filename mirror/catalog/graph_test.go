package catalog

import (
	"errors"
	"strings"
	"testing"

	"github.com/blang/semver/v4"
)

func TestReachableUpgrade(t *testing.T) {
	cfg := skipRangeChain()
	for _, tc := range []struct {
		installed string
		want      []string // in OLM's order, head first
	}{
		// 1.0.0: 1.1.0-202301 replaces it, 1.1.0 and 1.2.0 hold it in their
		// skipRange, 2.0.0 is reached from 1.2.0.
		{"1.0.0", names("chain", "2.0.0", "1.2.0", "1.1.0", "1.1.0-202301")},
		{"1.1.0", names("chain", "2.0.0", "1.2.0")},
		{"2.0.0", nil},
	} {
		got, err := ReachableUpgrade(cfg, "chain", "stable", bundleName("chain", tc.installed))
		if err != nil {
			t.Fatalf("%s: %v", tc.installed, err)
		}
		var gotNames []string
		for _, b := range got {
			gotNames = append(gotNames, b.Name)
		}
		assertStrings(t, "from "+tc.installed, gotNames, tc.want)
	}
}

func TestReachableUpgradeSkippedEntriesAreNotOffered(t *testing.T) {
	// OLM never moves a cluster onto an entry another entry skips: from
	// 1.0.0 the fan offers only 2.0.0, though 1.1.0 and 1.2.0 replace 1.0.0.
	got, err := ReachableUpgrade(skipsFan(), "fan", "stable", bundleName("fan", "1.0.0"))
	if err != nil || len(got) != 1 || got[0].Name != bundleName("fan", "2.0.0") {
		t.Fatalf("from 1.0.0: %v %v", got, err)
	}
}

func TestReachableUpgradeFromVersionOnly(t *testing.T) {
	// An installed 1.0.5 the catalog never listed: only skipRanges match it,
	// and every one up to 1.2.0 holds it (1.1.0-202301's ends below itself).
	got, err := ReachableUpgradeFrom(skipRangeChain(), "chain", "stable", "chain.v1.0.5", semver.MustParse("1.0.5"))
	if err != nil {
		t.Fatal(err)
	}
	var gotNames []string
	for _, b := range got {
		gotNames = append(gotNames, b.Name)
	}
	assertStrings(t, "from 1.0.5", gotNames, names("chain", "2.0.0", "1.2.0", "1.1.0", "1.1.0-202301"))

	_, err = ReachableUpgrade(skipRangeChain(), "chain", "stable", "chain.v1.0.5")
	if !errors.Is(err, ErrInstalledNotInCatalog) {
		t.Errorf("unknown installed bundle: %v", err)
	}
	for _, tc := range []struct{ pkg, channel, want string }{
		{"nope", "stable", `package "nope" is not in the catalog`},
		{"chain", "fast", `package "chain" has no channel "fast"`},
	} {
		if _, err := ReachableUpgradeFrom(skipRangeChain(), tc.pkg, tc.channel, "x", semver.MustParse("1.0.0")); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s/%s: %v", tc.pkg, tc.channel, err)
		}
	}
}

func TestReachableUpgradeRefusesWhatOLMRefuses(t *testing.T) {
	// Two heads: OLM cannot order the channel and resolves nothing.
	c := &fbc{}
	c.pkg("split", "stable")
	c.channel("split", "stable", ent("split", "1.0.0", ""), ent("split", "1.1.0", "1.0.0"), ent("split", "1.2.0", "1.0.0"))
	c.bundle("split", "1.0.0").bundle("split", "1.1.0").bundle("split", "1.2.0")
	if _, err := ReachableUpgrade(&c.cfg, "split", "stable", bundleName("split", "1.0.0")); err == nil || !strings.Contains(err.Error(), "exactly one channel head, found 2") {
		t.Errorf("two heads: %v", err)
	}
	// And the filter refuses to cut from a channel opm would refuse.
	if _, _, err := Filter(&c.cfg, Selection{}, FilterOptions{}); err == nil || !strings.Contains(err.Error(), "multiple channel heads") {
		t.Errorf("filter of an invalid channel: %v", err)
	}
}

func TestChannelCheckMirrorsOPM(t *testing.T) {
	c := &fbc{}
	c.pkg("p", "s")
	c.channel("p", "s",
		ent("p", "1.0.0", ""),
		ent("p", "1.1.0", "1.0.0"),
		ent("p", "1.2.0", "1.1.0", "skip:1.0.0"),
		ent("p", "1.3.0", "1.2.0"),
	)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
		c.bundle("p", v)
	}
	x, err := newCatalogIndex(&c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := x.channelGraph("p", "s")
	if err != nil {
		t.Fatal(err)
	}
	set := func(idx ...int) []bool {
		s := make([]bool, 4)
		for _, i := range idx {
			s[i] = true
		}
		return s
	}
	for _, tc := range []struct {
		kept []bool
		head int
		err  string
	}{
		{g.all(), 3, ""},
		// The chain stops at 1.0.0, which 1.2.0 skips: still valid.
		{set(0, 2, 3), 3, ""},
		{set(1, 3), -1, "multiple channel heads"},
		// 1.1.0 is on the chain 1.3.0, 1.2.0, 1.1.0.
		{set(1, 2, 3), 3, ""},
	} {
		head, err := g.check(tc.kept)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: got %d %v, want %q", tc.kept, head, err, tc.err)
			}
			continue
		}
		if err != nil || head != tc.head {
			t.Errorf("%v: got %d %v, want head %d", tc.kept, head, err, tc.head)
		}
	}

	// A stranded entry: the chain from 2.0.0 stops at 1.1.0, which 2.0.0
	// skips, so 1.0.0, which only 1.1.0 replaces, is on no chain.
	c2 := &fbc{}
	c2.pkg("q", "s")
	c2.channel("q", "s", ent("q", "1.0.0", ""), ent("q", "1.1.0", "1.0.0"), ent("q", "2.0.0", "1.1.0", "skip:1.1.0"))
	c2.bundle("q", "1.0.0").bundle("q", "1.1.0").bundle("q", "2.0.0")
	x2, _ := newCatalogIndex(&c2.cfg)
	g2, _ := x2.channelGraph("q", "s")
	if _, err := g2.check(g2.all()); err == nil || !strings.Contains(err.Error(), "neither on the head's replaces chain nor skipped: q.v1.0.0") {
		t.Errorf("stranded: %v", err)
	}
}
