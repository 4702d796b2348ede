package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSelectionValidate(t *testing.T) {
	valid := Selection{Catalog: "registry.redhat.io/redhat/redhat-operator-index:v4.16", Packages: []PackageSelection{
		{Name: "a", MinVersion: "1.0.0", MaxVersion: "2.0.0-0"},
		{Name: "b", DefaultChannel: "fast", Channels: []ChannelSelection{{Name: "fast", MaxVersion: "3.1.4"}, {Name: "stable"}}},
	}}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid selection: %v", err)
	}
	for _, tc := range []struct {
		sel  Selection
		want []string
	}{
		{Selection{}, []string{"no catalog image named"}},
		{Selection{Catalog: "c", Packages: []PackageSelection{{Name: "a"}, {Name: "a"}}}, []string{`package "a": listed twice`}},
		{Selection{Catalog: "c", Packages: []PackageSelection{{}}}, []string{"a package without a name"}},
		{Selection{Catalog: "c", Packages: []PackageSelection{{Name: "a", MinVersion: "v1.0.0"}}}, []string{`package "a": minVersion "v1.0.0" is not a semantic version`}},
		{Selection{Catalog: "c", Packages: []PackageSelection{{Name: "a", MaxVersion: "4.14"}}}, []string{`maxVersion "4.14"`}},
		{Selection{Catalog: "c", Packages: []PackageSelection{{Name: "a", MinVersion: "2.0.0", MaxVersion: "1.0.0"}}}, []string{"minVersion 2.0.0 is above maxVersion 1.0.0"}},
		{Selection{Catalog: "c", Packages: []PackageSelection{{Name: "a", Channels: []ChannelSelection{{Name: "s", MinVersion: "1.0.1", MaxVersion: "1.0.1-rc.1"}}}}},
			[]string{`package "a" channel "s": minVersion 1.0.1 is above maxVersion 1.0.1-rc.1`}},
		{Selection{Catalog: "c", Packages: []PackageSelection{{Name: "a", Channels: []ChannelSelection{{Name: "s"}, {Name: "s"}, {}}}}},
			[]string{`package "a" channel "s": listed twice`, `package "a": a channel without a name`}},
		{Selection{Catalog: "c", Packages: []PackageSelection{{Name: "a", DefaultChannel: "fast", Channels: []ChannelSelection{{Name: "s"}}}}},
			[]string{`defaultChannel "fast" is not one of the selected channels`}},
		{Selection{Catalog: "c", Full: true, Packages: []PackageSelection{{Name: "a", MinVersion: "1.0.0"}}}, []string{"full selects every bundle"}},
	} {
		err := tc.sel.Validate()
		if err == nil {
			t.Errorf("%+v: no error", tc.sel)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v does not say %q", tc.sel, err, w)
			}
		}
		var se *SelectionError
		if !errors.As(err, &se) {
			t.Errorf("%+v: not a *SelectionError: %T", tc.sel, err)
		}
	}
}

const selectionYAML = `catalog: registry.redhat.io/redhat/redhat-operator-index:v4.16
packages:
  - name: cluster-kube-descheduler-operator
    defaultChannel: stable
    minVersion: 5.0.0
    maxVersion: 5.1.2
    channels:
      - name: stable
        minVersion: 5.0.1
        maxVersion: 5.1.4
`

func TestSelectionYAMLAndJSONKeys(t *testing.T) {
	var sel Selection
	dec := yaml.NewDecoder(strings.NewReader(selectionYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&sel); err != nil {
		t.Fatalf("strict YAML: %v", err)
	}
	want := Selection{Catalog: "registry.redhat.io/redhat/redhat-operator-index:v4.16", Packages: []PackageSelection{{
		Name: "cluster-kube-descheduler-operator", DefaultChannel: "stable", MinVersion: "5.0.0", MaxVersion: "5.1.2",
		Channels: []ChannelSelection{{Name: "stable", MinVersion: "5.0.1", MaxVersion: "5.1.4"}},
	}}}
	if !reflect.DeepEqual(sel, want) {
		t.Fatalf("decoded %+v", sel)
	}
	b, err := json.Marshal(sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"catalog"`, `"packages"`, `"defaultChannel"`, `"minVersion"`, `"maxVersion"`, `"channels"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON %s has no %s", b, key)
		}
	}
	var back Selection
	jd := json.NewDecoder(bytes.NewReader(b))
	jd.DisallowUnknownFields()
	if err := jd.Decode(&back); err != nil || !reflect.DeepEqual(back, want) {
		t.Errorf("JSON round trip: %+v %v", back, err)
	}
	full, _ := json.Marshal(Selection{Catalog: "c", Full: true})
	if string(full) != `{"catalog":"c","full":true}` {
		t.Errorf("full: %s", full)
	}
	// A misspelt key is refused by the strict decoder, not ignored.
	dec = yaml.NewDecoder(strings.NewReader("catalog: c\npackages:\n  - name: a\n    maxversion: 1.0.0\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&Selection{}); err == nil {
		t.Error("misspelt maxVersion accepted")
	}
}
