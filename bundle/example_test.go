package bundle_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferryhq/ferry/bundle"
	"github.com/opencontainers/go-digest"
)

// Example writes a bundle with one small file and one reserved blob filled
// as a download would be, then opens and verifies it.
func Example() {
	dir, err := os.MkdirTemp("", "bundle-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bundle.tar")

	w, err := bundle.Create(path, bundle.WriteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Abort() // removes the .partial files unless Finish succeeded
	if err := w.AddFile("mirror/config/note.yaml", []byte("kind: ConfigMap\n")); err != nil {
		log.Fatal(err)
	}
	layer := "a layer, as fetched from a registry"
	d := digest.FromString(layer)
	slot, err := w.Reserve(bundle.BlobName(d), int64(len(layer)), "")
	if err != nil {
		log.Fatal(err)
	}
	// Usually in a worker goroutine; a failed fetch would slot.Reset().
	if _, err := io.Copy(slot, strings.NewReader(layer)); err != nil {
		log.Fatal(err)
	}
	if err := slot.Commit(); err != nil {
		log.Fatal(err)
	}
	if err := w.Finish(&bundle.Index{Tool: bundle.Tool{Name: "ferry"}}); err != nil {
		log.Fatal(err)
	}

	r, err := bundle.Open(path, bundle.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Verify(context.Background(), nil)
	if err != nil {
		log.Fatal(err)
	}
	blob, size, err := r.Blob(d)
	if err != nil {
		log.Fatal(err)
	}
	data, _ := io.ReadAll(blob)
	fmt.Println("verified:", rep.OK(), "files:", rep.Files)
	fmt.Printf("%d bytes: %s\n", size, data)
	// Output:
	// verified: true files: 3
	// 35 bytes: a layer, as fetched from a registry
}
