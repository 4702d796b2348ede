package release

import (
	"strings"
	"testing"
)

func TestNormalizeArch(t *testing.T) {
	for _, tc := range []struct{ in, want, graph string }{
		{"x86_64", "x86_64", "amd64"},
		{"amd64", "x86_64", "amd64"},
		{"AMD64", "x86_64", "amd64"},
		{"aarch64", "aarch64", "arm64"},
		{"arm64", "aarch64", "arm64"},
		{"s390x", "s390x", "s390x"},
		{"ppc64le", "ppc64le", "ppc64le"},
		{"multi", "multi", "multi"},
	} {
		got, err := NormalizeArch(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeArch(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		g, err := GraphArch(tc.in)
		if err != nil || g != tc.graph {
			t.Errorf("GraphArch(%q) = %q, %v; want %q", tc.in, g, err, tc.graph)
		}
	}
	for _, bad := range []string{"", "x86-64", "i386", "riscv64", "arm"} {
		_, err := NormalizeArch(bad)
		if err == nil {
			t.Errorf("NormalizeArch(%q) succeeded", bad)
			continue
		}
		for _, name := range Arches() {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("NormalizeArch(%q) error %q does not list %s", bad, err, name)
			}
		}
		if _, err := GraphArch(bad); err == nil {
			t.Errorf("GraphArch(%q) succeeded", bad)
		}
	}
}
