package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
)

// operatorsBed is a 4.17 release and the test bed's operator catalog
// (multi-arch, signed, stock command with a pre-built cache) in one
// registry, and a packer key.
type operatorsBed struct {
	*faultBed
	catalog              *testbed.Catalog
	packerKey, packerPub string
}

func newOperatorsBed(t *testing.T) *operatorsBed {
	t.Helper()
	opts := smallRelease
	opts.Version = "4.17.0"
	b := &operatorsBed{faultBed: newFaultBed(t, opts)}
	b.catalog = testbed.BuildCatalog(t, b.reg.Host, testbed.CatalogOptions{Multi: true, Sigstore: true})
	packer := testbed.NewKey(t, "packer")
	b.packerKey, b.packerPub = filepath.Join(b.dir, "packer.key"), filepath.Join(b.dir, "packer.pub")
	if err := os.WriteFile(b.packerKey, packer.PrivateArmored(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.packerPub, packer.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// keptImages are the images the catalog's bundles of pkgs name, by
// repository@digest, as the test bed pushed them (independent of ferry's
// filter: heads of every channel of each package).
func (b *operatorsBed) keptImages(t *testing.T, pkgs ...string) map[string]bool {
	t.Helper()
	heads := map[string]bool{}
	for _, p := range pkgs {
		for _, ch := range b.catalog.Channels(p) {
			heads[b.catalog.HeadOf(p, ch)] = true
		}
	}
	want := map[string]bool{}
	for name := range heads {
		bu := b.catalog.Bundles[name]
		want[bu.Repository+"@"+bu.Digest.String()] = true
		for _, ref := range bu.RelatedImages {
			for _, ri := range b.catalog.RelatedImages {
				if ri.Image == ref {
					want[ri.Repository+"@"+ri.Digest.String()] = true
				}
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the test bed's catalog names no image for the packages")
	}
	return want
}

// TestOperatorsCarried packs a release and a filtered catalog, signed,
// applies it to a mirror and a real API server, and checks what landed:
// every kept bundle and related image by digest, the rebuilt catalog by
// its tag, the CatalogSource and ClusterCatalog as the API server keeps
// them, and the update check of installed operators (one with a way out
// in the carried catalog, one with none: exit 3).
func TestOperatorsCarried(t *testing.T) {
	b := newOperatorsBed(t)
	pkgs := []string{testbed.CatalogPackageAurora, testbed.CatalogPackageDorado}
	bundlePath := b.pack(t, "--no-self", "--sign-key", b.packerKey, "--catalog", b.catalog.PullSpec,
		"--package", pkgs[0], "--package", pkgs[1], "--skip-dependencies")

	idx := readIndexFile(t, bundlePath)
	if len(idx.Catalogs) != 1 {
		t.Fatalf("the index records %d catalogs, want 1", len(idx.Catalogs))
	}
	rec := idx.Catalogs[0]
	if rec.SourceDigest != b.catalog.Digest || rec.Ref != b.catalog.PullSpec {
		t.Errorf("catalog record names %s (%s), want %s (%s)", rec.Ref, rec.SourceDigest, b.catalog.PullSpec, b.catalog.Digest)
	}
	var kept []string
	for _, p := range rec.Packages {
		kept = append(kept, p.Name)
	}
	if !slices.Equal(kept, pkgs) {
		t.Errorf("kept packages %v, want %v", kept, pkgs)
	}
	inspect := mustFerry(t, "inspect", bundlePath)
	for _, want := range []string{"catalog " + b.catalog.PullSpec, "package " + pkgs[0] + " (selected)", "channel fast: head " + b.catalog.HeadOf(pkgs[0], "fast")} {
		if !strings.Contains(inspect, want) {
			t.Errorf("inspect does not say %q:\n%s", want, inspect)
		}
	}

	kube := testbed.StartKube(t)
	kube.InstallOpenShiftCRDs(t)
	kube.CreateNamespace(t, "openshift-marketplace")
	kube.CreateNamespace(t, "openshift-config-managed")
	kube.CreateNamespace(t, "operators")
	applier, err := manifests.NewApplier(kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	installOperators(t, applier, b.rel.Host, []installedFixture{
		// 1.1.0 allows at most 4.16; stable's head 1.2.0 allows 4.17 and
		// replaces 1.1.0: the way out is carried.
		{testbed.CatalogPackageAurora, "stable", "aurora-operator.v1.1.0", "1.1.0", `[{"type":"olm.maxOpenShiftVersion","value":"4.16"}]`},
		// borealis is not carried at all: no way out.
		{testbed.CatalogPackageBorealis, "stable", "borealisoperator.4.13.0-202309181427", "4.13.0-202309181427", `[{"type":"olm.maxOpenShiftVersion","value":"4.15"}]`},
	})

	mirror := testbed.NewMemoryRegistry(t)
	rendered := filepath.Join(t.TempDir(), "manifests")
	res := ferryRun(t, "apply", bundlePath, "--to", mirror.Host+"/"+targetRepo, "--dest-tls-verify=false", "--keyring", b.keyFile,
		"--bundle-keyring", b.packerPub, "--kubeconfig", kube.Kubeconfig, "--output-dir", rendered, "--quiet")
	wantExit(t, "apply", res, codeVerification, "update operators/"+testbed.CatalogPackageAurora+" first, to aurora-operator.v1.2.0",
		"BLOCKS operators/"+testbed.CatalogPackageBorealis, "keep the cluster from 4.17.0")

	target := testbed.NewClient(mirror.Host)
	for key := range b.keptImages(t, pkgs...) {
		d := digest.Digest(key[strings.Index(key, "@")+1:])
		if _, err := target.HeadManifest(context.Background(), targetRepo, d.String()); err != nil {
			t.Errorf("kept image %s is not in the mirror: %v", key, err)
		}
	}
	if _, err := target.HeadManifest(context.Background(), targetRepo, rec.Tag); err != nil {
		t.Errorf("the rebuilt catalog's tag %s is not in the mirror: %v", rec.Tag, err)
	}

	image := mirror.Host + "/" + targetRepo + "@" + rec.Digest.String()
	cs := getObject(t, kube, "operators.coreos.com", "v1alpha1", "catalogsources", "openshift-marketplace")
	if got, _, _ := unstructured.NestedString(cs.Object, "spec", "image"); got != image {
		t.Errorf("CatalogSource image %q, want %q", got, image)
	}
	cc := getObject(t, kube, "olm.operatorframework.io", "v1", "clustercatalogs", "")
	if got, _, _ := unstructured.NestedString(cc.Object, "spec", "source", "image", "ref"); got != image {
		t.Errorf("ClusterCatalog image ref %q, want %q", got, image)
	}
}

// installedFixture is an installed operator: its Subscription and CSV.
type installedFixture struct{ pkg, channel, csv, version, props string }

// installOperators writes a 4.16.5 ClusterVersion and, in namespace
// operators, a Subscription and a ClusterServiceVersion per fixture (its
// olm.properties annotation left out when props is empty).
func installOperators(t *testing.T, a *manifests.Applier, host string, ops []installedFixture) {
	t.Helper()
	objects := [][]byte{[]byte(`apiVersion: config.openshift.io/v1
kind: ClusterVersion
metadata: {name: version}
spec: {channel: stable-4.16}
status:
  desired: {version: 4.16.5}
  history: [{state: Completed, version: 4.16.5, verified: true, image: "` + host + `/ocp@sha256:` + strings.Repeat("5", 64) + `"}]
`)}
	for _, op := range ops {
		annotations := ""
		if op.props != "" {
			annotations = fmt.Sprintf("\n  annotations: {olm.properties: %q}", op.props)
		}
		objects = append(objects,
			[]byte(fmt.Sprintf("apiVersion: operators.coreos.com/v1alpha1\nkind: Subscription\nmetadata: {name: %s, namespace: operators}\n"+
				"spec: {name: %s, channel: %s, source: ferry, sourceNamespace: openshift-marketplace}\nstatus: {installedCSV: %s}\n",
				op.pkg, op.pkg, op.channel, op.csv)),
			[]byte(fmt.Sprintf("apiVersion: operators.coreos.com/v1alpha1\nkind: ClusterServiceVersion\nmetadata:\n  name: %s\n  namespace: operators%s\n"+
				"spec: {version: %s}\n", op.csv, annotations, op.version)))
	}
	if _, err := a.Apply(context.Background(), objects); err != nil {
		t.Fatal(err)
	}
}

// getObject reads the one object of a resource (in namespace, or cluster-
// scoped when namespace is empty), failing unless there is exactly one.
func getObject(t *testing.T, k *testbed.Kube, group, version, resource, namespace string) unstructured.Unstructured {
	t.Helper()
	dyn, err := dynamic.NewForConfig(k.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	res := schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
	list, err := dyn.Resource(res).Namespace(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list %s.%s: %v", resource, group, err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("%s.%s: %d objects, want 1", resource, group, len(list.Items))
	}
	return list.Items[0]
}

// TestOperatorsUnsignedRefused: a catalog is covered only by the bundle
// signature, so an unsigned bundle carrying one is refused by apply, naming
// the catalog, and nothing reaches the mirror; --allow-unproven takes it,
// listed as unverified.
func TestOperatorsUnsignedRefused(t *testing.T) {
	b := newOperatorsBed(t)
	bundlePath := b.pack(t, "--no-self", "--catalog", b.catalog.PullSpec, "--package", testbed.CatalogPackageDorado)
	mirror := testbed.NewMemoryRegistry(t)
	wantExit(t, "apply unsigned", ferryRun(t, applyArgs(t, bundlePath, b.keyFile, mirror.Host)...), codeVerification,
		"operator catalog "+b.catalog.PullSpec, "no verified bundle signature covers it")
	assertCatalogEmpty(t, mirror)
	wantExit(t, "apply --allow-unproven", ferryRun(t, applyArgs(t, bundlePath, b.keyFile, mirror.Host, "--allow-unproven")...), codeOK)
}

// TestOperatorsForgedCatalogImages: a courier drops an operator image the
// catalog names from the index and adds nothing else; with the packer's
// signature gone, only --allow-unproven could take the bundle, and even
// then the catalog is refused whole, because a CatalogSource must never
// point at a bundle the mirror lacks.
func TestOperatorsForgedCatalogImages(t *testing.T) {
	b := newOperatorsBed(t)
	bundlePath := b.pack(t, "--no-self", "--catalog", b.catalog.PullSpec, "--package", testbed.CatalogPackageDorado)
	var dropped string
	forge(t, bundlePath, forgery{edit: func(idx *bundle.Index) {
		for i, img := range idx.Images {
			if img.Role == bundle.RoleOperator {
				dropped = img.Source + "@" + img.Digest.String()
				idx.Images = slices.Delete(idx.Images, i, i+1)
				return
			}
		}
	}})
	if dropped == "" {
		t.Fatal("the bundle has no operator image to drop")
	}
	mirror := testbed.NewMemoryRegistry(t)
	wantExit(t, "apply forged", ferryRun(t, applyArgs(t, bundlePath, b.keyFile, mirror.Host, "--allow-unproven")...), codeVerification,
		"operator catalog "+b.catalog.PullSpec+": image", "is not carried, or not proven")
	assertCatalogEmpty(t, mirror)
}

// TestOperatorsPackInstalledCheck: with --installed, pack refuses (exit 3)
// when an installed operator would block the update and the selection
// holds no way out, naming it, and packs once the selection holds one.
func TestOperatorsPackInstalledCheck(t *testing.T) {
	b := newOperatorsBed(t)
	file := filepath.Join(t.TempDir(), "installed.json")
	installed := manifests.InstalledOperators{ClusterVersion: "4.16.5", Operators: []manifests.InstalledOperator{{
		Namespace: "operators", Package: testbed.CatalogPackageAurora, Channel: "stable", CSV: "aurora-operator.v1.1.0", Version: "1.1.0",
		Properties: json.RawMessage(`[{"type":"olm.maxOpenShiftVersion","value":"4.16"}]`),
	}}}
	data, err := installed.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar")
	wantExit(t, "pack without aurora", ferryRun(t, b.packArgs(out, "--catalog", b.catalog.PullSpec, "--package", testbed.CatalogPackageDorado, "--installed", file)...),
		codeVerification, "would block the update to 4.17.0", "operators/"+testbed.CatalogPackageAurora)
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused pack left %s behind (%v)", out, err)
	}
	mustFerry(t, b.packArgs(out, "--catalog", b.catalog.PullSpec, "--package", testbed.CatalogPackageAurora, "--installed", file)...)
}

// TestOperatorImageSignatures: with a lookaside store for the catalog's
// registry (as Red Hat publishes one for registry.redhat.io), pack checks
// every image the kept bundles name under the release keyring and records
// the count; a store serving a signature that does not verify (another
// digest's, self-consistent otherwise) refuses the pack, naming the image.
func TestOperatorImageSignatures(t *testing.T) {
	b := newOperatorsBed(t)
	vendor := testbed.NewKey(t, "vendor")
	vendorKey := filepath.Join(b.dir, "vendor.asc")
	if err := os.WriteFile(vendorKey, vendor.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	images := b.keptImages(t, testbed.CatalogPackageDorado)
	files := map[string][]byte{}
	var first string
	for key := range images {
		repo, d, _ := strings.Cut(key, "@")
		path := "/" + repo + "@" + strings.Replace(d, ":", "=", 1) + "/signature-1"
		files[path] = vendor.SignRelease(t, d, b.reg.Host+"/"+repo+":v1")
		if first == "" || path < first {
			first = path
		}
	}
	// A handler for a request of the first pack can still be running, its
	// client gone, while the test swaps a signature (the race detector saw
	// it in CI).
	var filesMu sync.Mutex
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		filesMu.Lock()
		data, ok := files[r.URL.Path]
		filesMu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(store.Close)
	pack := func(out string) result {
		return ferryRun(t, b.packArgs(out, "--catalog", b.catalog.PullSpec, "--package", testbed.CatalogPackageDorado,
			"--keyring", vendorKey, "--image-signature-store", b.reg.Host+"="+store.URL)...)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar")
	if res := pack(out); res.code != codeOK {
		t.Fatalf("pack: exit %d\n%s", res.code, res.stderr)
	}
	rec := readIndexFile(t, out).Catalogs[0].ImageSignatures
	if rec == nil || rec.Signed != len(images) || rec.Unsigned != 0 {
		t.Fatalf("index records image signatures %+v, want %d signed", rec, len(images))
	}

	// Another image's signature in the first image's place: a real
	// signature by the right key, for the wrong digest.
	filesMu.Lock()
	for path, data := range files {
		if path != first {
			files[first] = data
			break
		}
	}
	filesMu.Unlock()
	wantExit(t, "pack with a swapped signature", pack(filepath.Join(t.TempDir(), "bundle.tar")), codeVerification, "signature-1")
}
