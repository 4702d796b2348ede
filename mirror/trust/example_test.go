package trust_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/trust"
)

// Check proves a bundle before anything is pushed: only the images, tags,
// sources, ConfigMaps and steps it returns may reach a mirror or a cluster.
// (Compiled, not run: it needs a bundle and Red Hat's key.)
func ExampleCheck() {
	keyring, err := signature.LoadKeyring(signature.DefaultKeyPath)
	if err != nil {
		log.Fatal(err)
	}
	r, err := bundle.Open("ocp-4.15.0.tar", bundle.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if rep, err := r.Verify(context.Background(), nil); err != nil || !rep.OK() {
		log.Fatalf("the bundle's bytes do not hold: %v %v", err, rep.Err())
	}
	proof := trust.Check(context.Background(), r, trust.Options{Keyring: keyring})
	if !proof.OK() {
		log.Fatalf("refused: %v", proof.Faults)
	}
	for _, img := range proof.Images {
		fmt.Println(img.Source, img.Digest, img.Tags, "proven by", img.Proof)
	}
}
