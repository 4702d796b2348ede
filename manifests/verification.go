package manifests

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Where a cluster keeps the keys and stores its release verification uses
// (SPEC §2).
const (
	VerificationConfigMap = "release-verification"
	VerificationNamespace = "openshift-config-managed"
	// KeyringPrefix starts the data keys holding armored keyrings.
	KeyringPrefix = "verifier-public-key-"
	// StorePrefix starts the data keys holding signature store URLs.
	StorePrefix = "store-"
)

// Verification is the cluster's release verification configuration.
type Verification struct {
	// Keyrings maps each verifier-public-key-* data key to its armored keyring.
	Keyrings map[string][]byte
	// Stores are the store-* URLs, ordered by data key.
	Stores []string
}

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// ReadVerification reads ConfigMap release-verification in
// openshift-config-managed. A cluster without it is not an OpenShift cluster
// (the error wraps ErrNotOpenShift).
func (a *Applier) ReadVerification(ctx context.Context) (*Verification, error) {
	ref := "ConfigMap " + VerificationNamespace + "/" + VerificationConfigMap
	cm, err := a.dynamic.Resource(configMaps).Namespace(VerificationNamespace).
		Get(ctx, VerificationConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("the cluster at %s has no %s: %w", a.host, ref, ErrNotOpenShift)
	}
	if err != nil {
		return nil, a.explain(err, "reading "+ref)
	}
	data, _, err := unstructured.NestedStringMap(cm.Object, "data")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	v := &Verification{Keyrings: map[string][]byte{}}
	var storeKeys []string
	for k, val := range data {
		switch {
		case strings.HasPrefix(k, KeyringPrefix):
			v.Keyrings[k] = []byte(val)
		case strings.HasPrefix(k, StorePrefix):
			storeKeys = append(storeKeys, k)
		}
	}
	sort.Strings(storeKeys)
	for _, k := range storeKeys {
		v.Stores = append(v.Stores, strings.TrimSpace(data[k]))
	}
	return v, nil
}

// ReadVerificationKeyrings returns the armored keyrings of the cluster's
// release-verification ConfigMap, keyed by their verifier-public-key-* name.
func (a *Applier) ReadVerificationKeyrings(ctx context.Context) (map[string][]byte, error) {
	v, err := a.ReadVerification(ctx)
	if err != nil {
		return nil, err
	}
	return v.Keyrings, nil
}
