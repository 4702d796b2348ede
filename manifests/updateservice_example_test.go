package manifests_test

import (
	"fmt"

	"github.com/ferryhq/ferry/manifests"
)

func ExampleUpdateService() {
	us, err := manifests.UpdateService("service", manifests.UpdateServiceNamespace,
		"registry.example:5000/ocp4/openshift4",
		"registry.example:5000/ocp4/graph-image@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		manifests.DefaultUpdateServiceReplicas)
	if err != nil {
		panic(err)
	}
	fmt.Print(string(us))
	// Output:
	// apiVersion: updateservice.operator.openshift.io/v1
	// kind: UpdateService
	// metadata:
	//   name: service
	//   namespace: openshift-update-service
	// spec:
	//   replicas: 2
	//   releases: registry.example:5000/ocp4/openshift4
	//   graphDataImage: registry.example:5000/ocp4/graph-image@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
}
