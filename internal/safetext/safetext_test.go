package safetext

import "testing"

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"quay.io/openshift-release-dev/ocp-release", "quay.io/openshift-release-dev/ocp-release"},
		{"4.15.0 ✓ verified", "4.15.0 ✓ verified"},
		{"\x1b[2J\x1b[Hverified", `\x1b[2J\x1b[Hverified`},
		{"line\nFAKE: ok\r", `line\x0aFAKE: ok\x0d`},
		{"tab\there", `tab\x09here`},
		{"del\x7f", `del\x7f`},
		{"c1\u009bcsi", `c1\x9bcsi`},
		{"rtl\u202egnp.exe", `rtl\u202egnp.exe`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"bad\xffutf8", `bad\xffutf8`},
	} {
		if got := Clean(tc.in); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBlock(t *testing.T) {
	in := "bundle failed:\n  a \x1b[2Jname\n  b"
	if got, want := Block(in), "bundle failed:\n  a \\x1b[2Jname\n  b"; got != want {
		t.Fatalf("Block = %q, want %q", got, want)
	}
	if got := Block("one\ntwo"); got != "one\ntwo" {
		t.Fatalf("Block changed clean lines: %q", got)
	}
}

func FuzzClean(f *testing.F) {
	f.Add("\x1b]0;title\a")
	f.Add("plain")
	f.Fuzz(func(t *testing.T, s string) {
		out := Clean(s)
		if !isClean(out) {
			t.Fatalf("Clean(%q) = %q still holds a control character", s, out)
		}
		if isClean(s) && out != s {
			t.Fatalf("Clean changed clean text %q to %q", s, out)
		}
	})
}
