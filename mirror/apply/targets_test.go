package apply_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"gopkg.in/yaml.v3"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/apply"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/trust"
	"github.com/ferryhq/ferry/mirror/trust/trusttest"
)

const (
	toolRepo   = "registry.example/extras/tool"
	toolTarget = "extras/tool"
)

// bundleWithTool writes a genuine release bundle plus an additional image
// under toolTarget, tagged with the release's own tag, and its signature
// image; it proves it, accepting the additional images unproven (as a
// verified bundle signature would prove them).
func bundleWithTool(t *testing.T) (*trusttest.Fixture, bundle.Image, *bundle.Reader, *trust.Report) {
	t.Helper()
	fx := trusttest.Write(t, t.TempDir(), []string{"etcd", "cli"}, bundle.WriteOptions{})
	tool := fx.Image(t, toolRepo, bundle.RoleAdditional, trusttest.Version+"-"+trusttest.Arch, []byte("tool layer"))
	sig := fx.Image(t, toolRepo, bundle.RoleSigstore, "sha256-"+tool.Digest.Encoded()+".sig", []byte("tool signature"))
	tool.Target, sig.Target = toolTarget, toolTarget
	path := filepath.Join(t.TempDir(), "tool.tar")
	fx.WithImages(t, path, tool, sig)
	r, err := bundle.Open(path, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	proof := trust.Check(context.Background(), r, trust.Options{Keyring: fx.Keyring, AllowUnproven: true})
	if !proof.OK() {
		t.Fatalf("proof: %v", proof.Faults)
	}
	return fx, tool, r, proof
}

func opener() apply.Opener {
	opts := registry.DefaultOptions()
	opts.TLSVerify = false
	return registry.New(opts).Destination
}

// TestPushAllPerTarget: the release goes to the target repository, the
// additional image and its signature under their path, and one tag names
// another manifest in each; the counts are summed over both.
func TestPushAllPerTarget(t *testing.T) {
	fx, tool, r, proof := bundleWithTool(t)
	reg := testbed.NewMemoryRegistry(t)
	to := reg.Host + "/" + targetRepo
	src := apply.BundleSource{Reader: r}

	dry, err := apply.PushAll(context.Background(), src, proof.Images, opener(), to, apply.Options{Parallel: 2, DryRun: true})
	if err != nil || dry.Manifests != len(proof.Images) || dry.Tags != 7 || dry.WouldPush == 0 {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	if repos, _ := reg.Catalog(context.Background()); len(repos) != 0 {
		t.Fatalf("a dry run changed the target: %v", repos)
	}
	res, err := apply.PushAll(context.Background(), src, proof.Images, opener(), to, apply.Options{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifests != len(proof.Images) || res.Tags != 7 || res.BlobsPushed != dry.WouldPush {
		t.Errorf("push: %+v, dry run %+v", res, dry)
	}
	c := reg.Client()
	tag := trusttest.Version + "-" + trusttest.Arch
	for repo, want := range map[string]digest.Digest{targetRepo: fx.Release, targetRepo + "/" + toolTarget: tool.Digest} {
		data, _, err := c.GetManifest(context.Background(), repo, tag)
		if err != nil || digest.FromBytes(data) != want {
			t.Errorf("%s:%s: %v, want %s", repo, tag, err, want)
		}
	}
	if _, _, err := c.GetManifest(context.Background(), targetRepo+"/"+toolTarget, "sha256-"+tool.Digest.Encoded()+".sig"); err != nil {
		t.Errorf("the signature image is not beside its image: %v", err)
	}
	if _, _, err := c.GetManifest(context.Background(), targetRepo, "sha256-"+tool.Digest.Encoded()+".sig"); err == nil {
		t.Errorf("the signature image went to the target repository too")
	}
}

// TestPushAllChecksPrerequisitesFirst: the target repository's
// prerequisites are checked before any repository is written, even one
// under a path that sorts before.
func TestPushAllChecksPrerequisitesFirst(t *testing.T) {
	_, _, r, proof := bundleWithTool(t)
	reg := testbed.NewMemoryRegistry(t)
	missing := digest.FromString("a layer the mirror never had")
	_, err := apply.PushAll(context.Background(), apply.BundleSource{Reader: r}, proof.Images, opener(), reg.Host+"/"+targetRepo, apply.Options{
		Prerequisites: []bundle.Prerequisite{{Digest: missing, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Size: 10}},
	})
	var mp *apply.MissingPrerequisitesError
	if !errors.As(err, &mp) || mp.Target != reg.Host+"/"+targetRepo {
		t.Fatalf("got %v, want a MissingPrerequisitesError for the target repository", err)
	}
	if repos, _ := reg.Catalog(context.Background()); len(repos) != 0 {
		t.Fatalf("the registry was changed: %v", repos)
	}
}

// TestPushAllChecksPathPrerequisitesFirst: a prerequisite of a path under
// the target is looked for in that path's repository, before anything is
// written, even the target repository, which sorts first and holds the
// blob: a registry does not look for a blob in another repository.
func TestPushAllChecksPathPrerequisitesFirst(t *testing.T) {
	_, _, r, proof := bundleWithTool(t)
	reg := testbed.NewMemoryRegistry(t)
	layer := []byte("a layer the target holds, its path not")
	d, err := reg.PushBlob(context.Background(), targetRepo, layer)
	if err != nil {
		t.Fatal(err)
	}
	prereq := bundle.Prerequisite{Digest: d, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Size: int64(len(layer)), Target: toolTarget}
	_, err = apply.PushAll(context.Background(), apply.BundleSource{Reader: r}, proof.Images, opener(), reg.Host+"/"+targetRepo,
		apply.Options{Prerequisites: []bundle.Prerequisite{prereq}})
	var mp *apply.MissingPrerequisitesError
	if !errors.As(err, &mp) || mp.Target != reg.Host+"/"+targetRepo+"/"+toolTarget {
		t.Fatalf("got %v, want a MissingPrerequisitesError for %s", err, toolTarget)
	}
	if tags, err := reg.Client().Tags(context.Background(), targetRepo); err == nil && len(tags) > 0 {
		t.Fatalf("the target repository was written: tags %v", tags)
	}
	// Held where it is needed, it is found there and left out of the push.
	if _, err := reg.PushBlob(context.Background(), targetRepo+"/"+toolTarget, layer); err != nil {
		t.Fatal(err)
	}
	res, err := apply.PushAll(context.Background(), apply.BundleSource{Reader: r}, proof.Images, opener(), reg.Host+"/"+targetRepo,
		apply.Options{Prerequisites: []bundle.Prerequisite{prereq}})
	if err != nil || res.Prerequisites != 1 {
		t.Fatalf("push with the path's prerequisite present: %+v, %v", res, err)
	}
}

// idmsMirrors reads the routes of a rendered ImageDigestMirrorSet.
func idmsMirrors(t *testing.T, r *apply.Rendered) map[string][]string {
	t.Helper()
	return renderedMirrors(t, r, "idms-", "imageDigestMirrors")
}

// renderedMirrors reads the mirrors of the rendered object whose file
// name starts with prefix, from its spec's list field; nil when no such
// object is rendered.
func renderedMirrors(t *testing.T, r *apply.Rendered, prefix, field string) map[string][]string {
	t.Helper()
	var obj struct {
		Spec map[string][]struct {
			Source  string   `yaml:"source"`
			Mirrors []string `yaml:"mirrors"`
		} `yaml:"spec"`
	}
	for _, f := range r.Objects {
		if strings.HasPrefix(f.Name, prefix) {
			if err := yaml.Unmarshal(f.Data, &obj); err != nil {
				t.Fatal(err)
			}
		}
	}
	if obj.Spec == nil {
		return nil
	}
	out := map[string][]string{}
	for _, m := range obj.Spec[field] {
		out[m.Source] = m.Mirrors
	}
	return out
}

// TestRenderRoutes: a source whose images all went to the target keeps
// the mirror sets of a single target byte for byte; a source with images
// under a path is routed there, and to both (the target first) when it
// has images in both.
func TestRenderRoutes(t *testing.T) {
	const to = "registry.example:5000/ocp4/openshift4"
	sources := []string{trusttest.ReleaseRepo, trusttest.ComponentRepo}
	old, err := manifests.MirrorSets("x", sources, to)
	if err != nil {
		t.Fatal(err)
	}
	for _, routes := range []map[string][]string{nil, {trusttest.ReleaseRepo: {""}, trusttest.ComponentRepo: {""}}} {
		r, err := apply.Render(apply.RenderOptions{Name: "x", Sources: sources, Routes: routes, Target: to, ICSP: true})
		if err != nil {
			t.Fatal(err)
		}
		all := slices.Concat(r.Objects, r.Extra)
		want := map[string][]byte{"idms-ferry-x.yaml": old.ImageDigestMirrorSet,
			"icsp-ferry-x.yaml": old.ImageContentSourcePolicy, "install-config-snippet.yaml": old.InstallConfig}
		for _, f := range all {
			if strings.HasPrefix(f.Name, "itms-") {
				t.Errorf("routes %v: %s rendered though nothing is pulled by tag", routes, f.Name)
			}
			if w, ok := want[f.Name]; ok && !bytes.Equal(f.Data, w) {
				t.Errorf("routes %v: %s changed:\n%s\nwant\n%s", routes, f.Name, f.Data, w)
			}
			delete(want, f.Name)
		}
		if len(want) != 0 {
			t.Errorf("routes %v: not rendered: %v", routes, want)
		}
	}

	r, err := apply.Render(apply.RenderOptions{Name: "x", Target: to,
		Sources: []string{trusttest.ReleaseRepo, trusttest.ComponentRepo, toolRepo},
		Routes:  map[string][]string{trusttest.ComponentRepo: {"art", ""}, toolRepo: {toolTarget}}})
	if err != nil {
		t.Fatal(err)
	}
	got := idmsMirrors(t, r)
	want := map[string][]string{trusttest.ReleaseRepo: {to}, trusttest.ComponentRepo: {to, to + "/art"}, toolRepo: {to + "/" + toolTarget}}
	if len(got) != len(want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
	for s, m := range want {
		if !slices.Equal(got[s], m) {
			t.Errorf("%s: mirrors %v, want %v", s, got[s], m)
		}
	}
}

// TestRenderProvenRoutes: what trust proves of a bundle with an
// additional image renders its source to its path alone.
func TestRenderProvenRoutes(t *testing.T) {
	_, _, _, proof := bundleWithTool(t)
	const to = "registry.example:5000/ocp4/openshift4"
	r, err := apply.Render(apply.RenderOptions{Name: "x", Sources: proof.Sources, Routes: proof.Routes, Target: to})
	if err != nil {
		t.Fatal(err)
	}
	got := idmsMirrors(t, r)
	if !slices.Equal(got[toolRepo], []string{to + "/" + toolTarget}) || !slices.Equal(got[trusttest.ReleaseRepo], []string{to}) {
		t.Errorf("routes %v", got)
	}
}

// TestRenderTagRoutes: of two additional images under their paths, the
// one named by tag routes its source by tag to its path, the one named by
// digest only by digest; both route by digest, and the release stays out
// of the ImageTagMirrorSet.
func TestRenderTagRoutes(t *testing.T) {
	const pinnedRepo, pinnedTarget = "registry.example/extras/pinned", "extras/pinned"
	fx := trusttest.Write(t, t.TempDir(), []string{"etcd"}, bundle.WriteOptions{})
	tool := fx.Image(t, toolRepo, bundle.RoleAdditional, "v1.2", []byte("tool layer"))
	pinned := fx.Image(t, pinnedRepo, bundle.RoleAdditional, "", []byte("pinned layer"))
	pinned.Tags = nil // named by digest: no tag
	tool.Target, pinned.Target = toolTarget, pinnedTarget
	idx := &bundle.Index{Tool: fx.Index.Tool, Releases: fx.Index.Releases, Images: append(slices.Clone(fx.Index.Images), tool, pinned),
		Additional: []bundle.AdditionalImage{
			{Ref: toolRepo + ":v1.2", Source: toolRepo, Tag: "v1.2", Digest: tool.Digest, Target: toolTarget, TargetTag: "v1.2"},
			{Ref: pinnedRepo + "@" + pinned.Digest.String(), Source: pinnedRepo, Digest: pinned.Digest, Target: pinnedTarget},
		}}
	path := filepath.Join(t.TempDir(), "extras.tar")
	trusttest.WriteFiles(t, path, fx.Files, idx, bundle.WriteOptions{})
	r, err := bundle.Open(path, bundle.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	proof := trust.Check(context.Background(), r, trust.Options{Keyring: fx.Keyring, AllowUnproven: true})
	if !proof.OK() {
		t.Fatalf("proof: %v", proof.Faults)
	}
	const to = "registry.example:5000/ocp4/openshift4"
	rendered, err := apply.Render(apply.RenderOptions{Name: "x", Sources: proof.Sources, Routes: proof.Routes, TagRoutes: proof.TagRoutes, Target: to})
	if err != nil {
		t.Fatal(err)
	}
	byTag := renderedMirrors(t, rendered, "itms-", "imageTagMirrors")
	if len(byTag) != 1 || !slices.Equal(byTag[toolRepo], []string{to + "/" + toolTarget}) {
		t.Errorf("imageTagMirrors %v, want only %s -> %s/%s", byTag, toolRepo, to, toolTarget)
	}
	byDigest := idmsMirrors(t, rendered)
	if !slices.Equal(byDigest[toolRepo], []string{to + "/" + toolTarget}) || !slices.Equal(byDigest[pinnedRepo], []string{to + "/" + pinnedTarget}) ||
		!slices.Equal(byDigest[trusttest.ReleaseRepo], []string{to}) {
		t.Errorf("imageDigestMirrors %v", byDigest)
	}
}

// TestFromPlanTargets: a plan's image under a path keeps its target, is
// vouched for by the source registry (no release signature names it), and
// routes its source there; a repository a release signature names routes
// to the target.
func TestFromPlanTargets(t *testing.T) {
	d := digest.FromString("tool")
	plan := &mirror.Plan{Images: []*mirror.Image{{Repository: toolRepo, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Manifest: []byte("{}"), Tags: []string{"v1"}, Role: mirror.RoleAdditional, Target: toolTarget}}}
	p, err := apply.FromPlan(plan, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images) != 1 || p.Images[0].Target != toolTarget || p.Images[0].Proof != trust.SourceRegistry {
		t.Errorf("images %+v", p.Images)
	}
	if !slices.Equal(p.Routes[toolRepo], []string{toolTarget}) || !slices.Equal(p.Sources, []string{toolRepo}) {
		t.Errorf("sources %v, routes %v", p.Sources, p.Routes)
	}
}
