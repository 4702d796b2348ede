package manifests

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestInstalledOperatorsRoundTrip(t *testing.T) {
	in := &InstalledOperators{Cluster: "api.example:6443", ClusterVersion: "4.16.5", Created: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC),
		Operators: []InstalledOperator{{Namespace: "db", Subscription: "db", Package: "db-operator", Channel: "stable", CSV: "db-operator.v1.0.0",
			Version: "1.0.0", Properties: json.RawMessage(`[{"type":"olm.maxOpenShiftVersion","value":"4.16"}]`)}}}
	data, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseInstalledOperators(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if len(out.Operators) == 1 {
		if err := json.Compact(&compact, out.Operators[0].Properties); err != nil {
			t.Fatal(err)
		}
	}
	if out.ClusterVersion != "4.16.5" || len(out.Operators) != 1 || out.Operators[0].CSV != "db-operator.v1.0.0" ||
		!bytes.Equal(compact.Bytes(), in.Operators[0].Properties) {
		t.Errorf("read back %+v", out)
	}
	for name, bad := range map[string]string{
		"another kind":      `{"kind":"ferry-inventory-v1","clusterVersion":"4.16.5","operators":[]}`,
		"an unknown field":  `{"kind":"` + InstalledOperatorsKind + `","clusterVersion":"4.16.5","operators":[],"extra":1}`,
		"no version":        `{"kind":"` + InstalledOperatorsKind + `","operators":[]}`,
		"no csv":            `{"kind":"` + InstalledOperatorsKind + `","clusterVersion":"4.16.5","operators":[{"package":"p"}]}`,
		"properties object": `{"kind":"` + InstalledOperatorsKind + `","clusterVersion":"4.16.5","operators":[{"package":"p","csv":"c","properties":{"a":1}}]}`,
		"too large":         strings.Repeat(" ", MaxInstalledOperatorsSize+1),
	} {
		if _, err := ParseInstalledOperators(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseInstalledOperators: whatever crosses the air gap, the parser
// returns a file whose operators all name a package and a CSV, or an error.
func FuzzParseInstalledOperators(f *testing.F) {
	f.Add([]byte(`{"kind":"` + InstalledOperatorsKind + `","clusterVersion":"4.16.5","operators":[{"package":"p","csv":"c","properties":[]}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseInstalledOperators(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, op := range out.Operators {
			if op.Package == "" || op.CSV == "" {
				t.Fatalf("accepted an operator without package or csv: %+v", op)
			}
		}
	})
}
