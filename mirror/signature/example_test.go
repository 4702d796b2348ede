package signature_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/ferryhq/ferry/mirror/signature"
)

// Verify a real OpenShift release signature with Red Hat's release key.
func ExampleVerify() {
	const dir = "../../../shared/fixtures/redhat/"
	kr, err := signature.LoadKeyring(dir + "verifier-public-key-redhat-release")
	if err != nil {
		fmt.Println(err)
		return
	}
	sig, err := os.ReadFile(dir + "ocp-4.15.0-x86_64.signature-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := signature.Verify(sig, kr, "sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.KeyID, v.Identity)

	_, err = signature.Verify(sig, kr, "sha256:1111111111111111111111111111111111111111111111111111111111111111")
	var mismatch *signature.DigestMismatchError
	fmt.Println(errors.As(err, &mismatch))
	// Output:
	// 199E2F91FD431D51 quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64
	// true
}

func ExampleParsePayload() {
	p, err := signature.ParsePayload([]byte(`{
	  "critical": {
	    "type": "atomic container signature",
	    "image": {"docker-manifest-digest": "sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363"},
	    "identity": {"docker-reference": "quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64"}
	  },
	  "optional": {"creator": "Red Hat OpenShift Signing Authority 0.0.1"}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Digest)
	fmt.Println(p.Identity)

	_, err = signature.ParsePayload([]byte(`{"critical": {"type": "atomic container signature", "extra": 1}}`))
	fmt.Println(err)
	// Output:
	// sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363
	// quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64
	// payload has unknown field "critical.extra"
}

func ExampleStorePath() {
	fmt.Println(signature.DefaultStores[0] + "/" + signature.StorePath("sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363", 1))
	// Output:
	// https://mirror.openshift.com/pub/openshift-v4/signatures/openshift/release/sha256=0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363/signature-1
}

// Red Hat's release key 2 is built in: no key file is needed to verify a
// release that Red Hat signed.
func ExampleRedHatReleaseKeyring() {
	kr, err := signature.RedHatReleaseKeyring()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, k := range kr.Keys() {
		fmt.Println(k.Fingerprint, k.UserIDs, k.Source)
	}
	// Output:
	// 567E347AD0044ADE55BA8A5F199E2F91FD431D51 [Red Hat, Inc. (release key 2) <security@redhat.com>] built-in
}

// Verify Red Hat's real signatures of an operator bundle image, as its
// lookaside store serves them, with the built-in release key.
func ExampleVerifyImage() {
	const dir = "../../../shared/fixtures/redhat/"
	var sigs [][]byte
	for n := 1; n <= 4; n++ {
		sig, err := os.ReadFile(fmt.Sprintf("%snoo-bundle.signature-%d", dir, n))
		if err != nil {
			fmt.Println(err)
			return
		}
		sigs = append(sigs, sig)
	}
	kr, err := signature.RedHatReleaseKeyring()
	if err != nil {
		fmt.Println(err)
		return
	}
	const repo = "registry.redhat.io/albo/aws-load-balancer-operator-bundle"
	v, err := signature.VerifyImage(sigs, kr, repo, "sha256:50b9402635dd4b312a86bed05dcdbda8c00120d3789ec2e9b527045100b3bdb4")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.Status, len(v.Signed), v.Signed[2].Identity)

	base, _ := signature.DefaultLookasideStores().For(repo)
	p, _ := signature.LookasidePath(repo, v.Digest, 1)
	fmt.Println(base + "/" + p)
	// Output:
	// signed 4 registry.redhat.io/albo/aws-load-balancer-operator-bundle:0.0.1
	// https://registry.redhat.io/containers/sigstore/albo/aws-load-balancer-operator-bundle@sha256=50b9402635dd4b312a86bed05dcdbda8c00120d3789ec2e9b527045100b3bdb4/signature-1
}
