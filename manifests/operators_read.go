package manifests

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// MaxOperatorObjects caps the Subscriptions and ClusterServiceVersions read
// from a cluster: a large cluster runs a few hundred operators, and each
// CSV is copied into every namespace it watches.
const MaxOperatorObjects = 20000

var (
	subscriptionResource = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "subscriptions"}
	csvResource          = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "clusterserviceversions"}
)

// InstalledOperator is one operator installed through OLM: its Subscription
// and the ClusterServiceVersion it installed.
type InstalledOperator struct {
	Namespace     string `json:"namespace"`
	Subscription  string `json:"subscription"`
	Package       string `json:"package"`
	Channel       string `json:"channel"`
	CatalogSource string `json:"catalogSource"`
	// CSV is the installed ClusterServiceVersion, Version its
	// spec.version; Properties its olm.properties annotation (where OLM
	// reads olm.maxOpenShiftVersion), raw JSON.
	CSV        string          `json:"csv"`
	Version    string          `json:"version"`
	Properties json.RawMessage `json:"properties,omitempty"`
}

// ReadInstalledOperators reads every Subscription that has installed a
// CSV, with that CSV's version and properties. A cluster without OLM has
// none.
func (a *Applier) ReadInstalledOperators(ctx context.Context) ([]InstalledOperator, error) {
	subs, err := a.listBounded(ctx, "Subscription", subscriptionResource, MaxOperatorObjects, "manifests.MaxOperatorObjects")
	if err != nil {
		return nil, err
	}
	csvs, err := a.listBounded(ctx, "ClusterServiceVersion", csvResource, MaxOperatorObjects, "manifests.MaxOperatorObjects")
	if err != nil {
		return nil, err
	}
	type csvFacts struct{ version, properties string }
	byKey := map[string]csvFacts{}
	for _, c := range csvs {
		version, _, _ := unstructured.NestedString(c.Object, "spec", "version")
		byKey[c.GetNamespace()+"/"+c.GetName()] = csvFacts{version: version, properties: c.GetAnnotations()["olm.properties"]}
	}
	var out []InstalledOperator
	for _, s := range subs {
		var sub struct {
			Spec struct {
				Name    string `json:"name"`
				Channel string `json:"channel"`
				Source  string `json:"source"`
			} `json:"spec"`
			Status struct {
				InstalledCSV string `json:"installedCSV"`
			} `json:"status"`
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(s.Object, &sub); err != nil {
			return nil, fmt.Errorf("subscription %s/%s on %s: %w", s.GetNamespace(), s.GetName(), a.host, err)
		}
		if sub.Status.InstalledCSV == "" {
			continue // nothing installed yet
		}
		op := InstalledOperator{Namespace: s.GetNamespace(), Subscription: s.GetName(), Package: sub.Spec.Name, Channel: sub.Spec.Channel,
			CatalogSource: sub.Spec.Source, CSV: sub.Status.InstalledCSV}
		if facts, ok := byKey[op.Namespace+"/"+op.CSV]; ok {
			op.Version = facts.version
			if facts.properties != "" {
				op.Properties = json.RawMessage(facts.properties)
			}
		}
		out = append(out, op)
	}
	return out, nil
}
