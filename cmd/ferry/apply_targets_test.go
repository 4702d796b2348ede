package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/trust/trusttest"
)

// TestApplyAdditionalImageUnderItsPath: an image the index lists under a
// path goes to --to/<path> with its tag, which there names another image
// than the release's in --to, and the mirror sets route its source there
// while the release's repositories keep routing to --to.
func TestApplyAdditionalImageUnderItsPath(t *testing.T) {
	const toolRepo, toolPath = "registry.example/extras/tool", "extras/tool"
	dir := t.TempDir()
	fx := trusttest.Write(t, dir, []string{"etcd"}, bundle.WriteOptions{})
	tag := trusttest.Version + "-" + trusttest.Arch
	tool := fx.Image(t, toolRepo, bundle.RoleAdditional, tag, []byte("tool layer"))
	tool.Target = toolPath
	path := filepath.Join(dir, "tool.tar")
	fx.WithImages(t, path, tool)
	keyFile := filepath.Join(dir, "release.asc")
	if err := os.WriteFile(keyFile, fx.ReleaseKey, 0o600); err != nil {
		t.Fatal(err)
	}
	target := testbed.NewMemoryRegistry(t)
	to := target.Host + "/" + targetRepo
	outDir := t.TempDir()
	sum := applySummaryOf(t, mustFerry(t, "apply", path, "--to", to, "--dest-tls-verify=false", "--keyring", keyFile,
		"--allow-unproven", "--no-cluster", "--quiet", "--json", "--output-dir", outDir))
	if sum.Tags != 4 || sum.Manifests != 4 {
		t.Errorf("pushed %d manifests and %d tags, want 4 and 4", sum.Manifests, sum.Tags)
	}
	c := target.Client()
	for repo, want := range map[string]digest.Digest{targetRepo: fx.Release, targetRepo + "/" + toolPath: tool.Digest} {
		data, _, err := c.GetManifest(context.Background(), repo, tag)
		if err != nil || digest.FromBytes(data) != want {
			t.Errorf("%s:%s: %v, want %s", repo, tag, err, want)
		}
	}
	// The index names no image by tag: digest routes only.
	if files, _ := filepath.Glob(filepath.Join(outDir, "itms-*.yaml")); len(files) != 0 {
		t.Errorf("tag mirror sets %v for images pulled by digest", files)
	}
	for _, name := range []string{"idms-"} {
		files, _ := filepath.Glob(filepath.Join(outDir, name+"*.yaml"))
		if len(files) != 1 {
			t.Fatalf("%s files %v", name, files)
		}
		data, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"- source: " + toolRepo + "\n      mirrors:\n        - " + to + "/" + toolPath + "\n",
			"- source: " + trusttest.ReleaseRepo + "\n      mirrors:\n        - " + to + "\n"} {
			if !strings.Contains(string(data), want) {
				t.Errorf("%s lacks %q:\n%s", files[0], want, data)
			}
		}
	}
}
