package admission_test

import (
	"fmt"

	"github.com/ferryhq/ferry/mirror/admission"
)

// A node pulling by digest uses the mirrors of the most specific source
// that names the repository, rewritten for it; tag-only mirrors serve
// pulls by tag alone.
func ExampleMirrorsFor() {
	sets := []admission.MirrorSet{
		{Source: "quay.io/openshift-release-dev", Mirrors: []string{"registry.example:5000/ocp4"}},
		{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"registry.example:5000/ocp4/openshift4", "backup.example/ocp4"}},
		{Source: "quay.io/openshift-release-dev/ocp-release", Mirrors: []string{"tags.example/ocp4"}, TagOnly: true},
	}
	fmt.Println(admission.MirrorsFor(sets, "quay.io/openshift-release-dev/ocp-release"))
	fmt.Println(admission.MirrorsFor(sets, "quay.io/openshift-release-dev/ocp-v4.0-art-dev"))
	fmt.Println(admission.MirrorsFor(sets, "registry.redhat.io/ubi9/ubi"))
	// Output:
	// [registry.example:5000/ocp4/openshift4 backup.example/ocp4]
	// [registry.example:5000/ocp4/ocp-v4.0-art-dev]
	// []
}
