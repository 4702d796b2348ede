package catalog

import (
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

func TestSummarizeRealCatalogs(t *testing.T) {
	sum, err := Summarize(loadOperatorFixture(t, deschedulerFile), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(sum) != 1 || sum[0].Name != descheduler || sum[0].DefaultChannel != "stable" || len(sum[0].Channels) != 2 {
		t.Fatalf("descheduler summary: %+v", sum)
	}
	stable := sum[0].Channels[1]
	if stable.Name != "stable" || stable.Head != "clusterkubedescheduleroperator.v5.1.4" || stable.HeadVersion != "5.1.4" {
		t.Errorf("stable channel: %+v", stable)
	}
	if v := stable.Versions; len(v) == 0 || v[len(v)-1] != "5.1.4" {
		t.Errorf("stable versions %v, want 5.1.4 last", v)
	}

	quaySum, err := Summarize(loadOperatorFixture(t, quayFile), quay)
	if err != nil {
		t.Fatal(err)
	}
	if len(quaySum) != 1 || len(quaySum[0].Channels) != 12 || quaySum[0].DefaultChannel != "stable-3.17" {
		t.Errorf("project-quay summary: %d packages, %+v", len(quaySum), quaySum)
	}
	if _, err := Summarize(loadOperatorFixture(t, quayFile), "no-such-package"); err == nil || !strings.Contains(err.Error(), "no-such-package") {
		t.Errorf("an unknown package: err = %v", err)
	}
}

func TestSummarizeNamesAChannelWithTwoHeads(t *testing.T) {
	cfg := loadOperatorFixture(t, deschedulerFile)
	for i := range cfg.Channels {
		if cfg.Channels[i].Name == "stable" {
			// Cut the chain: the entry below the head no longer leads to it.
			entries := cfg.Channels[i].Entries
			cfg.Channels[i].Entries = append([]declcfg.ChannelEntry(nil), entries...)
			for j := range cfg.Channels[i].Entries {
				cfg.Channels[i].Entries[j].Replaces, cfg.Channels[i].Entries[j].Skips, cfg.Channels[i].Entries[j].SkipRange = "", nil, ""
			}
		}
	}
	if _, err := Summarize(cfg, ""); err == nil || !strings.Contains(err.Error(), "stable") {
		t.Errorf("a channel of many heads: err = %v, want it named", err)
	}
}
