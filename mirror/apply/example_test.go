package apply_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/apply"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/trust"
)

// PushAll puts what trust.Check proved into a mirror repository (and the
// paths under it additional images go to), straight from the bundle, then
// Render and NextSteps say what the cluster needs. (Compiled, not run: it
// needs a bundle, a key and a registry.)
func ExamplePushAll() {
	ctx := context.Background()
	keyring, err := signature.LoadKeyring("redhat-release-key.asc")
	if err != nil {
		log.Fatal(err)
	}
	r, err := bundle.Open("ocp-4.15.0.tar", bundle.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if rep, err := r.Verify(ctx, nil); err != nil || !rep.OK() {
		log.Fatalf("the bundle's bytes do not hold: %v %v", err, rep.Err())
	}
	proof := trust.Check(ctx, r, trust.Options{Keyring: keyring})
	if !proof.OK() {
		log.Fatalf("refused: %v", proof.Faults)
	}
	target := "registry.example:5000/ocp4/openshift4"
	client := registry.New(registry.DefaultOptions())
	res, err := apply.PushAll(ctx, apply.BundleSource{Reader: r}, proof.Images, client.Destination, target, apply.Options{
		Parallel: registry.DefaultParallel, Prerequisites: r.Index().Prerequisites, Retry: registry.DefaultRetryPolicy(),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pushed %d blobs, %d manifests, %d tags\n", res.BlobsPushed, res.Manifests, res.Tags)
	rendered, err := apply.Render(apply.RenderOptions{Name: r.Index().ID, Sources: proof.Sources, Routes: proof.Routes, Target: target, Catalogs: proof.Catalogs})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range rendered.Objects {
		fmt.Println("apply", f.Name)
	}
	for _, step := range apply.NextSteps(proof.Steps, target) {
		fmt.Println(step)
	}
}
