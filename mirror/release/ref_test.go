package release

import (
	"strings"
	"testing"
)

const hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in, arch string
		want     Ref
		str      string
	}{
		{"4.15.0", "x86_64", Ref{Repository: DefaultRepository, Tag: "4.15.0-x86_64", Version: "4.15.0", Arch: "x86_64"}, DefaultRepository + ":4.15.0-x86_64"},
		{"4.15.0-rc.1", "arm64", Ref{Repository: DefaultRepository, Tag: "4.15.0-rc.1-aarch64", Version: "4.15.0-rc.1", Arch: "aarch64"}, ""},
		{"4.16.0-ec.2", "multi", Ref{Repository: DefaultRepository, Tag: "4.16.0-ec.2-multi", Version: "4.16.0-ec.2", Arch: "multi"}, ""},
		{"quay.io/openshift-release-dev/ocp-release:4.15.0-s390x", "", Ref{Repository: DefaultRepository, Tag: "4.15.0-s390x", Version: "4.15.0", Arch: "s390x"}, ""},
		{"quay.io/openshift-release-dev/ocp-release:4.15.0-s390x", "s390x", Ref{Repository: DefaultRepository, Tag: "4.15.0-s390x", Version: "4.15.0", Arch: "s390x"}, ""},
		{"registry.example:5000/ocp4/openshift4:4.15.0-x86_64-etcd", "", Ref{Repository: "registry.example:5000/ocp4/openshift4", Tag: "4.15.0-x86_64-etcd"}, ""},
		{"quay.io/openshift-release-dev/ocp-release@sha256:" + hexA, "x86_64", Ref{Repository: DefaultRepository, Digest: "sha256:" + hexA}, DefaultRepository + "@sha256:" + hexA},
		{"quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64@sha256:" + hexA, "", Ref{Repository: DefaultRepository, Tag: "4.15.0-x86_64", Digest: "sha256:" + hexA, Version: "4.15.0", Arch: "x86_64"}, ""},
		{"openshift/okd:4.15.0-0.okd-2024-03-10-010116", "", Ref{Repository: "docker.io/openshift/okd", Tag: "4.15.0-0.okd-2024-03-10-010116"}, ""},
	} {
		got, err := ParseRef(tc.in, tc.arch)
		if err != nil {
			t.Errorf("ParseRef(%q, %q): %v", tc.in, tc.arch, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseRef(%q, %q) = %+v, want %+v", tc.in, tc.arch, got, tc.want)
		}
		if tc.str != "" && got.String() != tc.str {
			t.Errorf("ParseRef(%q).String() = %q, want %q", tc.in, got.String(), tc.str)
		}
	}
}

func TestParseRefErrors(t *testing.T) {
	for _, tc := range []struct{ in, arch, msg string }{
		{"", "x86_64", "empty"},
		{"4.15", "x86_64", "invalid release version"},
		{"4.15.0.1", "x86_64", "invalid release version"},
		{"04.15.0", "x86_64", "invalid release version"},
		{"4.15.0-", "x86_64", "invalid release version"},
		{"4.15.0-rc..1", "x86_64", "invalid release version"},
		{"4.15.0+build", "x86_64", "invalid release version"},
		{"4.15.0-rc.01", "x86_64", "invalid release version"},
		{"4.15.0", "", "architecture is needed"},
		{"4.15.0", "i386", "unknown architecture"},
		{"quay.io/openshift-release-dev/ocp-release", "", "needs a tag or a digest"},
		{"quay.io/openshift-release-dev/ocp-release@sha256:abc", "", "want 64 hex"},
		{"quay.io/openshift-release-dev/ocp-release@sha256:" + strings.ToUpper(hexA), "", "lower-case hex"},
		{"quay.io/openshift-release-dev/ocp-release@md5:" + hexA, "", "want sha256"},
		{"quay.io/openshift-release-dev/ocp-release:4.15.0-aarch64", "x86_64", "architecture aarch64, not x86_64"},
		{"Quay.io/UPPER/Case:tag", "", "not a version nor a valid pull spec"},
		{"quay.io/x:bad tag", "", "not a version nor a valid pull spec"},
	} {
		_, err := ParseRef(tc.in, tc.arch)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseRef(%q, %q) error = %v, want it to contain %q", tc.in, tc.arch, err, tc.msg)
		}
	}
}

func TestSplitTag(t *testing.T) {
	for _, tc := range []struct {
		tag, version, arch string
		ok                 bool
	}{
		{"4.15.0-x86_64", "4.15.0", "x86_64", true},
		{"4.15.0-rc.1-ppc64le", "4.15.0-rc.1", "ppc64le", true},
		{"4.15.0-x86_64-etcd", "", "", false},
		{"4.15.0-amd64", "", "", false},
		{"latest", "", "", false},
		{"x86_64", "", "", false},
	} {
		v, a, ok := SplitTag(tc.tag)
		if v != tc.version || a != tc.arch || ok != tc.ok {
			t.Errorf("SplitTag(%q) = %q, %q, %v", tc.tag, v, a, ok)
		}
	}
}

func TestPullSpec(t *testing.T) {
	r := Ref{Repository: "r.example/a", Tag: "t", Digest: "sha256:" + hexA}
	if got := r.PullSpec(); got != "r.example/a@sha256:"+hexA {
		t.Errorf("PullSpec = %q", got)
	}
	r.Digest = ""
	if got := r.PullSpec(); got != "r.example/a:t" {
		t.Errorf("PullSpec = %q", got)
	}
}
