package manifests_test

import (
	"fmt"

	"github.com/ferryhq/ferry/manifests"
)

func ExampleCatalogSource() {
	const pullSpec = "registry.redhat.io/redhat/redhat-operator-index:v4.20"
	name, err := manifests.CatalogSourceName(pullSpec)
	if err != nil {
		panic(err)
	}
	mirrored := "registry.example:5000/ocp4/openshift4@sha256:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"
	cs, err := manifests.CatalogSource(manifests.CatalogSourceOptions{
		Name:           name,
		Image:          mirrored,
		DisplayName:    "Red Hat Operators",
		Publisher:      "Red Hat",
		ExtractContent: manifests.ExtractContentSupported("4.20.3"),
		ConfigsDir:     "/configs",
	})
	if err != nil {
		panic(err)
	}
	cc, err := manifests.ClusterCatalog(name, mirrored)
	if err != nil {
		panic(err)
	}
	hub, err := manifests.OperatorHubDisableDefaults()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s---\n%s---\n%s", cs, cc, hub)
	// Output:
	// apiVersion: operators.coreos.com/v1alpha1
	// kind: CatalogSource
	// metadata:
	//   name: redhat-operator-index-v4-20
	//   namespace: openshift-marketplace
	// spec:
	//   sourceType: grpc
	//   image: registry.example:5000/ocp4/openshift4@sha256:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e
	//   displayName: Red Hat Operators
	//   publisher: Red Hat
	//   grpcPodConfig:
	//     extractContent:
	//       catalogDir: /configs
	//     securityContextConfig: restricted
	// ---
	// apiVersion: olm.operatorframework.io/v1
	// kind: ClusterCatalog
	// metadata:
	//   name: redhat-operator-index-v4-20
	// spec:
	//   source:
	//     type: Image
	//     image:
	//       ref: registry.example:5000/ocp4/openshift4@sha256:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e
	// ---
	// apiVersion: config.openshift.io/v1
	// kind: OperatorHub
	// metadata:
	//   name: cluster
	// spec:
	//   disableAllDefaultSources: true
}
