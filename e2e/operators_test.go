package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/manifests"
)

// operatorCatalog is a file-based catalog of two packages: db-operator,
// whose 1.0.0 and 1.1.0 allow at most OpenShift 4.16 and 1.2.0 allows
// 4.17, all on stable; and cache-operator, whose only version stops at
// 4.16 (a YAML-style number, 4.16 written as a JSON number).
const operatorCatalog = `{"schema":"olm.package","name":"db-operator","defaultChannel":"stable"}
{"schema":"olm.channel","package":"db-operator","name":"stable","entries":[{"name":"db-operator.v1.0.0"},{"name":"db-operator.v1.1.0","replaces":"db-operator.v1.0.0"},{"name":"db-operator.v1.2.0","replaces":"db-operator.v1.1.0"}]}
{"schema":"olm.bundle","package":"db-operator","name":"db-operator.v1.0.0","image":"registry.example/db/bundle@sha256:%[1]s","properties":[{"type":"olm.package","value":{"packageName":"db-operator","version":"1.0.0"}},{"type":"olm.maxOpenShiftVersion","value":"4.16"}]}
{"schema":"olm.bundle","package":"db-operator","name":"db-operator.v1.1.0","image":"registry.example/db/bundle@sha256:%[2]s","properties":[{"type":"olm.package","value":{"packageName":"db-operator","version":"1.1.0"}},{"type":"olm.maxOpenShiftVersion","value":"4.16"}]}
{"schema":"olm.bundle","package":"db-operator","name":"db-operator.v1.2.0","image":"registry.example/db/bundle@sha256:%[3]s","properties":[{"type":"olm.package","value":{"packageName":"db-operator","version":"1.2.0"}},{"type":"olm.maxOpenShiftVersion","value":"4.17"}]}
{"schema":"olm.package","name":"cache-operator","defaultChannel":"fast"}
{"schema":"olm.channel","package":"cache-operator","name":"fast","entries":[{"name":"cache-operator.v2.0.0"}]}
{"schema":"olm.bundle","package":"cache-operator","name":"cache-operator.v2.0.0","image":"registry.example/cache/bundle@sha256:%[4]s","properties":[{"type":"olm.package","value":{"packageName":"cache-operator","version":"2.0.0"}},{"type":"olm.maxOpenShiftVersion","value":4.16}]}
`

// pushOperatorCatalog pushes a catalog image holding operatorCatalog in
// /configs, labelled as opm labels one, and returns its pull spec.
func pushOperatorCatalog(t *testing.T, reg *testbed.Registry) string {
	t.Helper()
	ctx := context.Background()
	c := testbed.NewClient(reg.Host)
	const repo = "olm/redhat-operator-index"
	fbc := fmt.Sprintf(operatorCatalog, strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64), strings.Repeat("4", 64))
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, e := range []struct {
		name string
		body string
	}{{"configs/", ""}, {"configs/catalog.json", fbc}} {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.body == "" {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layerDigest, err := c.PushBlob(ctx, repo, layer.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	config, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config: ocispec.ImageConfig{Labels: map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"},
			Entrypoint: []string{"/bin/opm"}, Cmd: []string{"serve", "/configs", "--cache-dir=/tmp/cache"}},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layerDigest}},
	})
	if err != nil {
		t.Fatal(err)
	}
	configDigest, err := c.PushBlob(ctx, repo, config)
	if err != nil {
		t.Fatal(err)
	}
	m, err := json.Marshal(ocispec.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: configDigest, Size: int64(len(config))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: layerDigest, Size: int64(layer.Len())}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushManifest(ctx, repo, "v4.17", ocispec.MediaTypeImageManifest, m); err != nil {
		t.Fatal(err)
	}
	return reg.Host + "/" + repo + ":v4.17"
}

func TestCatalogList(t *testing.T) {
	t.Parallel()
	ref := pushOperatorCatalog(t, testbed.NewMemoryRegistry(t))
	out := mustFerry(t, "catalog", "list", ref, "--src-tls-verify=false")
	for _, want := range []string{"2 packages", "db-operator", "stable (default)", "1.2.0", "cache-operator", "fast (default)"} {
		if !strings.Contains(out, want) {
			t.Errorf("catalog list lacks %q:\n%s", want, out)
		}
	}
	out = mustFerry(t, "catalog", "list", ref, "--src-tls-verify=false", "--package", "db-operator")
	if !strings.Contains(out, "1.0.0 1.1.0 1.2.0") || strings.Contains(out, "cache-operator") {
		t.Errorf("catalog list --package db-operator:\n%s", out)
	}
	wantExit(t, "catalog list --package", ferryRun(t, "catalog", "list", ref, "--src-tls-verify=false", "--package", "nope"), codeFailure, `no package "nope"`)
	wantExit(t, "catalog list", ferryRun(t, "catalog", "list"), codeUsage, "one CATALOG")
}

// TestCheckOperators: against a real API server with OLM's kinds, a
// cluster at 4.16.5 runs db-operator 1.0.0 (stops at 4.16) and
// cache-operator 2.0.0 (stops at 4.16) and a third with no maximum. To
// 4.16.9 nothing blocks; to 4.17 db-operator has a way out (1.2.0 in the
// catalog) and cache-operator has none: exit 3 naming it.
func TestCheckOperators(t *testing.T) {
	t.Parallel()
	ref := pushOperatorCatalog(t, testbed.NewMemoryRegistry(t))
	k := testbed.StartKube(t)
	k.InstallOpenShiftCRDs(t)
	k.CreateNamespace(t, "operators")
	a, err := manifests.NewApplier(k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	installOperators(t, a, "quay.io/openshift-release-dev", []installedFixture{
		{"db-operator", "stable", "db-operator.v1.0.0", "1.0.0", `[{"type":"olm.maxOpenShiftVersion","value":"4.16"}]`},
		{"cache-operator", "fast", "cache-operator.v2.0.0", "2.0.0", `[{"type":"olm.maxOpenShiftVersion","value":4.16}]`},
		{"log-operator", "stable", "log-operator.v3.0.0", "3.0.0", ""},
	})
	check := func(to string, extra ...string) result {
		return ferryRun(t, append([]string{"check", "operators", "--kubeconfig", k.Kubeconfig, "--to", to, "--catalog", ref, "--src-tls-verify=false"}, extra...)...)
	}
	wantExit(t, "check operators --to 4.16.9", check("4.16.9"), codeOK, "3 installed operators")
	res := check("4.17.1")
	wantExit(t, "check operators --to 4.17.1", res, codeVerification, "update first to db-operator.v1.2.0", "BLOCKS", "cache-operator")
	var rep struct {
		Operators []struct {
			Package   string `json:"package"`
			Blocks    bool   `json:"blocks"`
			OK        bool   `json:"ok"`
			UpgradeTo string `json:"upgradeTo"`
		} `json:"operators"`
	}
	res = check("4.17.1", "--json")
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || len(rep.Operators) != 3 {
		t.Fatalf("--json: %v\n%s", err, res.stdout)
	}
	for _, op := range rep.Operators {
		want := map[string][3]any{"db-operator": {true, true, "db-operator.v1.2.0"}, "cache-operator": {true, false, ""}, "log-operator": {false, true, ""}}[op.Package]
		if op.Blocks != want[0] || op.OK != want[1] || op.UpgradeTo != want[2] {
			t.Errorf("%s: %+v, want blocks=%v ok=%v upgradeTo=%q", op.Package, op, want[0], want[1], want[2])
		}
	}
	// The same verdicts offline, from the file the bastion exports.
	file := filepath.Join(t.TempDir(), "installed-operators.json")
	mustFerry(t, "inventory", "--operators", "--kubeconfig", k.Kubeconfig, "-o", file)
	wantExit(t, "check operators --installed", ferryRun(t, "check", "operators", "--installed", file, "--to", "4.17.1", "--catalog", ref, "--src-tls-verify=false"),
		codeVerification, "update 4.16.5 -> 4.17.1: 3 installed operators", "update first to db-operator.v1.2.0", "BLOCKS")
	wantExit(t, "check operators without --to", ferryRun(t, "check", "operators", "--kubeconfig", k.Kubeconfig), codeUsage, "--to is required")
}

// TestCatalogListRedHatShaped lists a multi-arch catalog shaped like Red
// Hat's (stock command, cache layer, four packages, deprecations): every
// channel's head as the test bed built it, the deprecated package marked.
func TestCatalogListRedHatShaped(t *testing.T) {
	t.Parallel()
	reg := testbed.NewMemoryRegistry(t)
	cat := testbed.BuildCatalog(t, reg.Host, testbed.CatalogOptions{Multi: true})
	var out struct {
		Digest   string `json:"digest"`
		Packages []struct {
			Name           string `json:"name"`
			DefaultChannel string `json:"defaultChannel"`
			Deprecated     bool   `json:"deprecated"`
			Channels       []struct {
				Name string `json:"name"`
				Head string `json:"head"`
			} `json:"channels"`
		} `json:"packages"`
	}
	if err := json.Unmarshal([]byte(mustFerry(t, "catalog", "list", cat.PullSpec, "--src-tls-verify=false", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	if out.Digest != cat.Digest.String() || len(out.Packages) != len(cat.Packages) {
		t.Fatalf("listed %s with %d packages, want %s with %d", out.Digest, len(out.Packages), cat.Digest, len(cat.Packages))
	}
	for _, p := range out.Packages {
		if p.DefaultChannel != cat.DefaultChannel(p.Name) || p.Deprecated != (p.Name == testbed.CatalogPackageDorado) {
			t.Errorf("package %s: default %s, deprecated %t", p.Name, p.DefaultChannel, p.Deprecated)
		}
		for _, ch := range p.Channels {
			if want := cat.HeadOf(p.Name, ch.Name); ch.Head != want {
				t.Errorf("%s/%s: head %s, want %s", p.Name, ch.Name, ch.Head, want)
			}
		}
	}
}
