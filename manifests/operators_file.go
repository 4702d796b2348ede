package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ferryhq/ferry/internal/strictjson"
)

// InstalledOperatorsKind names the file `ferry inventory --operators`
// writes on the bastion, for `ferry check operators --installed` on the
// connected side.
const InstalledOperatorsKind = "ferry-installed-operators-v1"

// MaxInstalledOperatorsSize caps the file: a few hundred operators with
// their olm.properties take well under a megabyte; it crosses the air gap,
// so it is read as untrusted.
const MaxInstalledOperatorsSize = 16 << 20

// InstalledOperators is what a cluster runs of OLM operators, and from
// which OpenShift version it would update.
type InstalledOperators struct {
	Kind string `json:"kind"`
	// Cluster is the API server the list was read from.
	Cluster        string              `json:"cluster"`
	ClusterVersion string              `json:"clusterVersion"`
	Created        time.Time           `json:"created"`
	Operators      []InstalledOperator `json:"operators"`
}

// Marshal writes the file, indented.
func (f *InstalledOperators) Marshal() ([]byte, error) {
	f.Kind = InstalledOperatorsKind
	if f.Operators == nil {
		f.Operators = []InstalledOperator{}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// ParseInstalledOperators reads the file strictly: its kind, no unknown
// field, every operator with a package and a CSV, properties a JSON
// array when given; at most MaxInstalledOperatorsSize bytes.
func ParseInstalledOperators(r io.Reader) (*InstalledOperators, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInstalledOperatorsSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxInstalledOperatorsSize {
		return nil, fmt.Errorf("installed operators file is larger than %d bytes (manifests.MaxInstalledOperatorsSize)", MaxInstalledOperatorsSize)
	}
	var f InstalledOperators
	if err := strictjson.Decode(data, &f); err != nil {
		return nil, fmt.Errorf("installed operators file: %w", err)
	}
	if f.Kind != InstalledOperatorsKind {
		return nil, fmt.Errorf("installed operators file: kind %q, want %s (written by 'ferry inventory --operators')", f.Kind, InstalledOperatorsKind)
	}
	if f.ClusterVersion == "" {
		return nil, errors.New("installed operators file: no clusterVersion")
	}
	for i, op := range f.Operators {
		if op.Package == "" || op.CSV == "" {
			return nil, fmt.Errorf("installed operators file: operators[%d] lacks a package or csv", i)
		}
		if len(op.Properties) > 0 {
			var props []json.RawMessage
			if err := json.Unmarshal(op.Properties, &props); err != nil {
				return nil, fmt.Errorf("installed operators file: operators[%d] (%s): properties: %w", i, op.Package, err)
			}
		}
	}
	return &f, nil
}
