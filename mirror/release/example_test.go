package release_test

import (
	"fmt"

	"github.com/ferryhq/ferry/mirror/release"
)

func ExampleParseRef() {
	ref, err := release.ParseRef("4.15.0", "amd64")
	if err != nil {
		panic(err)
	}
	fmt.Println(ref)
	fmt.Println(ref.Version, ref.Arch)
	// Output:
	// quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64
	// 4.15.0 x86_64
}
