package catalog

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// withMax is a bundle carrying the raw JSON values as olm.maxOpenShiftVersion
// properties, as they stand in a catalog.
func withMax(raw ...string) declcfg.Bundle {
	b := declcfg.Bundle{Name: "op.v1.0.0", Properties: []property.Property{property.MustBuildPackage("op", "1.0.0")}}
	for _, r := range raw {
		b.Properties = append(b.Properties, property.Property{Type: MaxOpenShiftVersionProperty, Value: json.RawMessage(r)})
	}
	return b
}

func TestMaxOpenShiftVersion(t *testing.T) {
	for _, tc := range []struct {
		raw     []string
		want    string // "" for no limit
		wantErr string
	}{
		{raw: nil},
		{raw: []string{`"4.12"`}, want: "4.12.0"},
		{raw: []string{`"v4.12"`}, want: "4.12.0"},
		{raw: []string{`"4.12.0"`}, want: "4.12.0"},
		// An unquoted YAML 4.20 is the number 4.2 in the catalog: OLM reads 4.2.
		{raw: []string{`4.2`}, want: "4.2.0"},
		{raw: []string{`4.16`}, want: "4.16.0"},
		{raw: []string{`""`}, wantErr: "is empty"},
		{raw: []string{`"4.12.3"`}, wantErr: "must be <major>.<minor>"},
		{raw: []string{`"4.12.0-rc.1"`}, wantErr: "must be <major>.<minor>"},
		{raw: []string{`"four"`}, wantErr: "is not a version"},
		{raw: []string{`null`}, wantErr: "is not a version"},
		{raw: []string{`{"version":"4.12"}`}, wantErr: "is not a version"},
		// Twice is refused even when the values agree.
		{raw: []string{`"4.12"`, `"4.12"`}, wantErr: "more than one"},
		{raw: []string{`"4.12"`, `"4.14"`}, wantErr: "more than one"},
	} {
		got, err := MaxOpenShiftVersion(withMax(tc.raw...))
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: got %v, %v; want error %q", tc.raw, got, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.raw, err)
		case tc.want == "" && got != nil:
			t.Errorf("%q: got %s, want no limit", tc.raw, got)
		case tc.want != "" && (got == nil || got.String() != tc.want):
			t.Errorf("%q: got %v, want %s", tc.raw, got, tc.want)
		}
	}
}

func TestBlocksUpgrade(t *testing.T) {
	for _, tc := range []struct {
		raw             []string
		current, target string
		blocks          bool
		reason          string
	}{
		{[]string{`"4.12"`}, "4.12.30", "4.12.45", false, "not a minor or major update"},
		{[]string{`"4.12"`}, "4.12.30", "4.13.0", true, "on 4.12 OLM sets Upgradeable=False, blocking the update to 4.13"},
		{[]string{`"4.13"`}, "4.12.30", "4.13.1", false, "allows 4.13.1"},
		// Two minors ahead: the first step passes, OLM blocks the second.
		{[]string{`"4.13"`}, "4.12.30", "4.14.2", true, "on 4.13 OLM sets Upgradeable=False, blocking the update to 4.14"},
		{[]string{`"4.14"`}, "4.12.30", "4.14.2", false, "allows"},
		// The unquoted number: 4.2 blocks 4.16 to 4.17.
		{[]string{`4.2`}, "4.16.3", "4.17.0", true, "on 4.16 OLM"},
		{[]string{`4.17`}, "4.16.3", "4.17.0", false, "allows"},
		{nil, "4.16.3", "4.17.0", false, "declares no olm.maxOpenShiftVersion"},
		// Fail closed on minor updates, never on z-streams.
		{[]string{`""`}, "4.16.3", "4.17.0", true, "is empty"},
		{[]string{`"4.x"`}, "4.16.3", "4.17.0", true, "is not a version"},
		{[]string{`"4.17"`, `"4.17"`}, "4.16.3", "4.17.0", true, "more than one"},
		{[]string{`""`}, "4.16.3", "4.16.9", false, "not a minor or major update"},
		// A prerelease cluster counts as its minor.
		{[]string{`"4.16"`}, "4.16.0-rc.2", "4.17.0", true, "on 4.16"},
		// 4.23 is 5.0 to OLM.
		{[]string{`"4.23"`}, "4.22.5", "5.0.1", false, "allows"},
		{[]string{`"4.22"`}, "4.22.5", "4.23.0", true, "blocking the update to 4.23"},
		{[]string{`"5.0"`}, "4.22.5", "4.23.0", false, "allows"},
		{[]string{`"4.23"`}, "5.0.2", "5.1.0", true, "on 5.0"},
		// Unparseable cluster versions fail closed.
		{[]string{`"4.20"`}, "", "4.17.0", true, "current OpenShift version: empty"},
		{[]string{`"4.20"`}, "4.16", "latest", true, "target OpenShift version"},
		// A major update other than 4 to 5 has no steps OLM defines.
		{[]string{`"5.99"`}, "5.0", "6.0", true, "more than 32 minor versions"},
	} {
		blocks, reason := BlocksUpgrade(withMax(tc.raw...), tc.current, tc.target)
		if blocks != tc.blocks || !strings.Contains(reason, tc.reason) {
			t.Errorf("%q %s -> %s: got %v %q, want %v %q", tc.raw, tc.current, tc.target, blocks, reason, tc.blocks, tc.reason)
		}
	}
}
