package mirror

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/release"
)

func TestCheckTargetRepo(t *testing.T) {
	for _, ok := range []string{"org/tool", "tool", "a__b/c.d/e--f"} {
		if err := CheckTargetRepo(ok); err != nil {
			t.Errorf("CheckTargetRepo(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "/org", "org/", "org//tool", "../other", "org/../other", "Org/tool", "host:5000/tool", "tool:tag"} {
		if err := CheckTargetRepo(bad); err == nil {
			t.Errorf("CheckTargetRepo(%q) = nil, want an error", bad)
		}
	}
}

func TestCheckBlocked(t *testing.T) {
	plan := &Plan{
		Releases: []*Release{{Version: "4.15.0", Components: []release.Component{{Name: "etcd", Image: "quay.io/ocp/art@sha256:1"}}}},
		Catalogs: []*Catalog{{Selection: catalog.Selection{Catalog: "registry.redhat.io/redhat/index:v4.15"},
			Images: []CatalogImage{{Ref: "registry.redhat.io/ns/operator@sha256:2", Sources: []catalog.ImageSource{{Bundle: "operator.v1"}}}}}},
	}
	for _, tc := range []struct {
		pattern, want string
	}{{"quay.io/ocp", "component etcd"}, {"ns/operator", "bundle operator.v1"}, {"must-gather", ""}} {
		err := checkBlocked([]*regexp.Regexp{regexp.MustCompile(tc.pattern)}, plan)
		var be *BlockedError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("pattern %q: %v, want nil", tc.pattern, err)
		case tc.want != "" && (!errors.As(err, &be) || !strings.Contains(be.Why, tc.want)):
			t.Errorf("pattern %q: %v, want a BlockedError naming %q", tc.pattern, err, tc.want)
		}
	}
	if got := blockedBy([]*regexp.Regexp{regexp.MustCompile("^a"), regexp.MustCompile("b$")}, "xb"); got != "b$" {
		t.Errorf("blockedBy = %q, want the first pattern that matches", got)
	}
}
