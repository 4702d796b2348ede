package mirror

import (
	"strings"
	"testing"

	"go.podman.io/image/v5/docker/reference"

	"github.com/ferryhq/ferry/mirror/catalog"
)

func TestCatalogTag(t *testing.T) {
	long := "registry.example/" + strings.Repeat("a", 150) + ":v1"
	for _, tc := range []struct{ ref, want string }{
		{"registry.redhat.io/redhat/redhat-operator-index:v4.16", "redhat-operator-index-v4.16-filtered"},
		{"registry.redhat.io/redhat/certified-operator-index@sha256:" + strings.Repeat("ab", 32), "certified-operator-index-abababababab-filtered"},
		{"quay.io/org/odd__index:_v1", "odd__index-_v1-filtered"},
		{"not a reference: at all", "not-a-reference-at-all-filtered"},
	} {
		if got := CatalogTag(tc.ref); got != tc.want {
			t.Errorf("CatalogTag(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
	a, b := CatalogTag(long), CatalogTag(long+"x")
	if len(a) > maxTagLength || a == b {
		t.Errorf("long references: %q (%d) and %q must be distinct and at most %d characters", a, len(a), b, maxTagLength)
	}
	for _, ref := range []string{long, "registry.redhat.io/redhat/redhat-operator-index:v4.16", "not a reference at all"} {
		if tag := CatalogTag(ref); !reference.TagRegexp.MatchString(tag) {
			t.Errorf("CatalogTag(%q) = %q, not a valid tag", ref, tag)
		}
	}
}

func TestDescribeSelection(t *testing.T) {
	sel := catalog.Selection{Catalog: "c", Packages: []catalog.PackageSelection{
		{Name: "a"},
		{Name: "b", MinVersion: "1.0.0", Channels: []catalog.ChannelSelection{{Name: "stable", MaxVersion: "2.0.0"}}},
	}}
	got := describeSelection(sel, catalog.FilterOptions{SkipDependencies: true})
	want := "a; b [1.0.0,] (stable [,2.0.0]); no dependencies"
	if got != want {
		t.Errorf("describeSelection = %q, want %q", got, want)
	}
	if got := describeSelection(catalog.Selection{Catalog: "c"}, catalog.FilterOptions{}); got != "heads of every channel" {
		t.Errorf("default selection described as %q", got)
	}
}
