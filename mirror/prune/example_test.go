package prune_test

import (
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror/prune"
)

// Compute decides from what a repository holds (a Snapshot, which Read
// takes from a registry) what a prune deletes. Here 4.15.1 kept, 4.15.0
// goes, but its component unchanged in 4.15.1 stays, and so does the tag
// that is not ferry's.
func ExampleCompute() {
	image := func(name string, layerSize int64) *prune.Manifest {
		return &prune.Manifest{Digest: digest.FromString(name), MediaType: "application/vnd.oci.image.manifest.v1+json",
			Blobs: []prune.Blob{{Digest: digest.FromString("layer of " + name), Size: layerSize}}}
	}
	oldRelease, newRelease, etcd, tools := image("4.15.0", 100), image("4.15.1", 200), image("etcd", 4000), image("tools", 10)
	s := &prune.Snapshot{Repository: "registry.example:5000/ocp4/openshift4",
		Tags: map[string]digest.Digest{
			"4.15.0-x86_64": oldRelease.Digest, "4.15.0-x86_64-etcd": etcd.Digest,
			"4.15.1-x86_64": newRelease.Digest, "4.15.1-x86_64-etcd": etcd.Digest,
			"debug-tools": tools.Digest,
		},
		Manifests: map[digest.Digest]*prune.Manifest{},
	}
	for _, m := range []*prune.Manifest{oldRelease, newRelease, etcd, tools} {
		s.Manifests[m.Digest] = m
	}
	plan, err := prune.Compute(s, prune.Keep{Versions: []string{"4.15.1"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range plan.Deletions {
		fmt.Println("delete", d.Tags)
	}
	for _, l := range plan.Left {
		fmt.Printf("stays %s: %s\n", l.Tag, l.Reason)
	}
	fmt.Println("reclaimable bytes:", plan.ReclaimableBytes)
	// Output:
	// delete [4.15.0-x86_64]
	// stays 4.15.0-x86_64-etcd: its manifest stays for a kept item
	// stays 4.15.1-x86_64: kept
	// stays 4.15.1-x86_64-etcd: kept
	// stays debug-tools: not ferry's
	// reclaimable bytes: 100
}
