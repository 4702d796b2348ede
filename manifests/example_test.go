package manifests_test

import (
	"fmt"

	"github.com/ferryhq/ferry/manifests"
	"github.com/opencontainers/go-digest"
)

func ExampleSignatureConfigMap() {
	d := digest.FromString("a release manifest")
	cm, err := manifests.SignatureConfigMap(d, [][]byte{[]byte("signature-1 bytes")})
	if err != nil {
		panic(err)
	}
	fmt.Println(manifests.SignatureConfigMapFile(d))
	fmt.Print(string(cm))
	// Output:
	// signature-sha256-4f89751e3085059c.yaml
	// apiVersion: v1
	// kind: ConfigMap
	// metadata:
	//   name: sha256-4f89751e3085059ce1da32752b7760b5da44f9f4e326179f4a7874b88b0de2a6
	//   namespace: openshift-config-managed
	//   labels:
	//     release.openshift.io/verification-signatures: ""
	// binaryData:
	//   sha256-4f89751e3085059ce1da32752b7760b5da44f9f4e326179f4a7874b88b0de2a6-1: c2lnbmF0dXJlLTEgYnl0ZXM=
}

func ExampleMirrorSets() {
	m, err := manifests.MirrorSets("4.15.0-x86_64", []string{
		"quay.io/openshift-release-dev/ocp-v4.0-art-dev",
		"quay.io/openshift-release-dev/ocp-release",
	}, "registry.example:5000/ocp4/openshift4")
	if err != nil {
		panic(err)
	}
	fmt.Print(string(m.ImageDigestMirrorSet))
	fmt.Print(string(m.InstallConfig))
	// Output:
	// apiVersion: config.openshift.io/v1
	// kind: ImageDigestMirrorSet
	// metadata:
	//   name: ferry-4-15-0-x86-64
	// spec:
	//   imageDigestMirrors:
	//     - source: quay.io/openshift-release-dev/ocp-release
	//       mirrors:
	//         - registry.example:5000/ocp4/openshift4
	//     - source: quay.io/openshift-release-dev/ocp-v4.0-art-dev
	//       mirrors:
	//         - registry.example:5000/ocp4/openshift4
	// imageDigestSources:
	//   - source: quay.io/openshift-release-dev/ocp-release
	//     mirrors:
	//       - registry.example:5000/ocp4/openshift4
	//   - source: quay.io/openshift-release-dev/ocp-v4.0-art-dev
	//     mirrors:
	//       - registry.example:5000/ocp4/openshift4
}
