package catalog

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/operator-framework/operator-registry/alpha/property"
)

// maxOCP is an olm.maxOpenShiftVersion property with the raw value given.
func maxOCP(raw string) property.Property {
	return property.Property{Type: MaxOpenShiftVersionProperty, Value: json.RawMessage(raw)}
}

func installedProps(t *testing.T, props ...property.Property) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(props)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestJudgeInstalled: 1.0.0 is installed and allows at most 4.16; the
// catalog's 1.1.0 also stops at 4.16, 1.2.0 allows 4.17, all on stable.
func TestJudgeInstalled(t *testing.T) {
	const pkg = "db-operator"
	cfg := (&fbc{}).pkg(pkg, "stable").
		channel(pkg, "stable", ent(pkg, "1.0.0", ""), ent(pkg, "1.1.0", "1.0.0"), ent(pkg, "1.2.0", "1.1.0")).
		channel(pkg, "legacy", ent(pkg, "1.0.0", ""), ent(pkg, "1.1.0", "1.0.0")).
		bundle(pkg, "1.0.0", maxOCP(`"4.16"`)).bundle(pkg, "1.1.0", maxOCP(`"4.16"`)).bundle(pkg, "1.2.0", maxOCP(`"4.17"`)).cfg
	op := Installed{Package: pkg, Channel: "stable", CSV: bundleName(pkg, "1.0.0"), Version: "1.0.0", Properties: installedProps(t, maxOCP(`"4.16"`))}

	if v := JudgeInstalled(&cfg, op, "4.16.3", "4.16.9"); v.Blocks || !v.OK {
		t.Errorf("a z-stream update: %+v", v)
	}
	v := JudgeInstalled(&cfg, op, "4.16.3", "4.17.1")
	if !v.Blocks || !v.OK || v.UpgradeTo != bundleName(pkg, "1.2.0") {
		t.Errorf("to 4.17 on stable: %+v, want blocking with a way out through 1.2.0", v)
	}
	op.Channel = "legacy"
	if v := JudgeInstalled(&cfg, op, "4.16.3", "4.17.1"); !v.Blocks || v.OK || !strings.Contains(v.Reason, "none allows 4.17.1") {
		t.Errorf("to 4.17 on legacy: %+v, want blocking and no way out", v)
	}
	op.Channel, op.Properties = "stable", installedProps(t, maxOCP(`"4.16"`), maxOCP(`"4.18"`))
	if v := JudgeInstalled(&cfg, op, "4.16.3", "4.17.1"); !v.Blocks || !strings.Contains(v.Reason, "1.2.0") {
		t.Errorf("a repeated maximum (fails closed): %+v", v)
	}
	op.Properties = nil
	if v := JudgeInstalled(&cfg, op, "4.16.3", "4.17.1"); v.Blocks || !v.OK {
		t.Errorf("no maximum at all: %+v", v)
	}
	op.Properties = json.RawMessage(`{not json`)
	if v := JudgeInstalled(&cfg, op, "4.16.3", "4.17.1"); !v.Blocks || !strings.Contains(v.Reason, "does not parse") || v.UpgradeTo != bundleName(pkg, "1.2.0") {
		t.Errorf("properties that do not parse (block; 1.2.0 is the way out): %+v", v)
	}
	op.Package, op.Properties = "not-in-catalog", installedProps(t, maxOCP(`"4.16"`))
	if v := JudgeInstalled(&cfg, op, "4.16.3", "4.17.1"); !v.Blocks || v.OK {
		t.Errorf("a package the catalog lacks: %+v", v)
	}
}
