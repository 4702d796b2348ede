package pack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/pack"
)

// Write streams a plan into a bundle. A real plan comes from
// mirror.Planner.Plan over a registry; this one is empty, so that the
// bundle holds only the carried program, the OCI layout and the index.
func ExampleWrite() {
	dir, err := os.MkdirTemp("", "pack-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	self := filepath.Join(dir, "tool")
	if err := os.WriteFile(self, []byte("#!/bin/sh\necho packed\n"), 0o755); err != nil {
		fmt.Println(err)
		return
	}

	res, err := pack.Write(context.Background(), &mirror.Plan{}, pack.Options{
		Output: filepath.Join(dir, "bundle.tar"),
		Self:   self,
		Tool:   bundle.Tool{Name: "example", Version: "v1"},
		Record: json.RawMessage(`{"purpose":"example"}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(res.Volumes), "volume,", res.Blobs, "blobs")

	r, err := bundle.Open(res.Volumes[0], bundle.ReadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	report, err := r.Verify(context.Background(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var options bytes.Buffer
	if err := json.Compact(&options, r.Index().Options); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verified:", report.OK(), "options:", options.String())
	for _, f := range r.Index().Files {
		fmt.Println(f.Name)
	}
	// Output:
	// 1 volume, 0 blobs
	// verified: true options: {"purpose":"example"}
	// ferry-volume.json
	// ferry
	// mirror/oci/oci-layout
	// mirror/oci/index.json
}
