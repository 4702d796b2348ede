package release

import "testing"

func TestCompareVersions(t *testing.T) {
	ordered := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
		"1.0.0-rc.1", "1.0.0", "2.0.0", "4.9.0", "4.14.0", "4.15.0-0.okd-2024-03-10-010116", "4.15.0-ec.3",
		"4.15.0-rc.0", "4.15.0-rc.10", "4.15.0", "4.15.2", "4.15.10", "99999999999999999999.0.0",
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareVersions(a, b); got != want {
				t.Errorf("CompareVersions(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
}
