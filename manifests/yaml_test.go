package manifests

import (
	"testing"

	"gopkg.in/yaml.v3"
	k8syaml "sigs.k8s.io/yaml"
)

// Every string must read back as itself in YAML 1.2 (yaml.v3) and in YAML 1.1
// (sigs.k8s.io/yaml, what kubectl and oc use).
func TestStringsSurviveYAML11And12(t *testing.T) {
	values := []string{
		"", "yes", "Yes", "NO", "y", "n", "on", "OFF", "true", "False", "null", "~",
		"1:20", "-3:25:45.5", "0755", "0b101", "0x1F", "1_000", "12", "1.5", "1e3", ".inf",
		"on1", "ferry-4-15-0", "quay.io/openshift-release-dev/ocp-release",
		"registry.example:5000/ocp4/openshift4", "c2lnIG9uZQ==", "#hash", "- dash", "a: b",
	}
	for _, v := range values {
		out, err := render(mapping("v", v))
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		var v3 map[string]string
		if err := yaml.Unmarshal(out, &v3); err != nil || v3["v"] != v {
			t.Errorf("%q: yaml.v3 reads %q (%v) from %s", v, v3["v"], err, out)
		}
		var v11 map[string]any
		if err := k8syaml.Unmarshal(out, &v11); err != nil {
			t.Errorf("%q: sigs.k8s.io/yaml: %v", v, err)
			continue
		}
		if got, ok := v11["v"].(string); !ok || got != v {
			t.Errorf("%q: sigs.k8s.io/yaml reads %#v from %s", v, v11["v"], out)
		}
	}
}
