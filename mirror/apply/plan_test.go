package apply

import (
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror"
)

func TestPlanSteps(t *testing.T) {
	rel := func(v string) *mirror.Release {
		return &mirror.Release{Version: v, Arch: "x86_64", Digest: digest.FromString(v)}
	}
	releases := []*mirror.Release{rel("4.15.10"), rel("4.14.9"), rel("4.15.2")}
	versions := func(alongPath bool) []string {
		var out []string
		for _, s := range planSteps(releases, alongPath) {
			out = append(out, s.Version)
		}
		return out
	}
	if got := versions(false); len(got) != 3 || got[0] != "4.14.9" || got[1] != "4.15.2" || got[2] != "4.15.10" {
		t.Errorf("releases: steps %v, want oldest first by version", got)
	}
	if got := versions(true); len(got) != 2 || got[0] != "4.15.2" || got[1] != "4.15.10" {
		t.Errorf("path: steps %v, want the path without where the cluster is", got)
	}
}
