package apply_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/apply"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/trust"
	"github.com/ferryhq/ferry/mirror/trust/trusttest"
)

const targetRepo = "ocp4/openshift4"

// provenBundle writes a genuine bundle, verifies and proves it, and returns
// the open reader with what the proof allows.
func provenBundle(t *testing.T) (*trusttest.Fixture, *bundle.Reader, *trust.Report) {
	t.Helper()
	fx := trusttest.Write(t, t.TempDir(), []string{"etcd", "cli"}, bundle.WriteOptions{})
	r, err := bundle.Open(fx.Path, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if rep, err := r.Verify(context.Background(), nil); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Err())
	}
	proof := trust.Check(context.Background(), r, trust.Options{Keyring: fx.Keyring})
	if !proof.OK() {
		t.Fatalf("proof: %v", proof.Faults)
	}
	return fx, r, proof
}

func destination(t *testing.T, reg *testbed.Registry) *registry.Destination {
	t.Helper()
	opts := registry.DefaultOptions()
	opts.TLSVerify = false
	dest, err := registry.New(opts).Destination(context.Background(), reg.Host+"/"+targetRepo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dest.Close() })
	return dest
}

func TestPushFromBundle(t *testing.T) {
	fx, r, proof := provenBundle(t)
	reg := testbed.NewMemoryRegistry(t)
	dest := destination(t, reg)
	src := apply.BundleSource{Reader: r}

	dry, err := apply.Push(context.Background(), src, proof.Images, dest, apply.Options{Parallel: 3, DryRun: true})
	if err != nil || dry.WouldPush == 0 || dry.BlobsPushed != 0 {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	if repos, _ := reg.Catalog(context.Background()); len(repos) != 0 {
		t.Fatalf("a dry run changed the target: %v", repos)
	}
	res, err := apply.Push(context.Background(), src, proof.Images, dest, apply.Options{Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsPushed != dry.WouldPush || res.Manifests != len(proof.Images) || res.Tags != 5 {
		t.Errorf("push: %+v, dry run %+v", res, dry)
	}
	c := reg.Client()
	for tag, d := range map[string]digest.Digest{"4.15.0-x86_64": fx.Release, "4.15.0-x86_64-etcd": fx.Components["etcd"]} {
		data, _, err := c.GetManifest(context.Background(), targetRepo, tag)
		if err != nil || digest.FromBytes(data) != d || !bytes.Equal(data, fx.Files[bundle.BlobName(d)]) {
			t.Errorf("tag %s: %v", tag, err)
		}
	}
	again, err := apply.Push(context.Background(), src, proof.Images, dest, apply.Options{Parallel: 3})
	if err != nil || again.BlobsPushed != 0 || again.BlobsSkipped != res.BlobsPushed {
		t.Errorf("second push: %+v, %v", again, err)
	}
}

func TestPushRefusesMissingPrerequisites(t *testing.T) {
	_, r, proof := provenBundle(t)
	reg := testbed.NewMemoryRegistry(t)
	missing := digest.FromString("a layer the mirror never had")
	_, err := apply.Push(context.Background(), apply.BundleSource{Reader: r}, proof.Images, destination(t, reg), apply.Options{
		Prerequisites: []bundle.Prerequisite{{Digest: missing, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Size: 10}},
	})
	var mp *apply.MissingPrerequisitesError
	if !errors.As(err, &mp) || !slices.Equal(mp.Missing, []digest.Digest{missing}) {
		t.Fatalf("got %v, want a MissingPrerequisitesError naming %s", err, missing)
	}
	if repos, _ := reg.Catalog(context.Background()); len(repos) != 0 {
		t.Fatalf("the target was changed: %v", repos)
	}
}

func TestManifestOrder(t *testing.T) {
	list := trust.Image{Digest: digest.FromString("list"), MediaType: "application/vnd.oci.image.index.v1+json", Tags: []string{"multi"}}
	one := trust.Image{Digest: digest.FromString("one"), MediaType: "application/vnd.oci.image.manifest.v1+json", Tags: []string{"a"}}
	again := one
	again.Source, again.Tags = "other/repo", []string{"b"}
	got := apply.ManifestOrder([]trust.Image{list, one, again})
	if len(got) != 2 || got[0].Digest != one.Digest || got[1].Digest != list.Digest || !slices.Equal(got[0].Tags, []string{"a", "b"}) {
		t.Fatalf("order %+v", got)
	}
}
