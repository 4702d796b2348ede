package catalog

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/operator-framework/operator-registry/pkg/api"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// TestRebuiltCatalogServesWithOPM is the crash loop of filtered catalogs
// (a pre-built opm cache that no longer matches the filtered /configs)
// shown impossible with the real opm: the rebuilt image, its layers
// applied as a runtime applies them, serves the filtered catalog with
// its own command. Two controls show the test can fail, and why each half
// of the rebuild is needed: the source's command on the rebuilt image
// fails opm's integrity check (no cache to check), and the source image
// as its Dockerfile builds it (a real cache of the whole catalog) with
// only the filtered configs laid over it, as oc-mirror rebuilds, fails it
// too (the cache requires a rebuild).
func TestRebuiltCatalogServesWithOPM(t *testing.T) {
	testbed.OPM(t)
	reg := testbed.NewMemoryRegistry(t)
	tb, cat, out, report := readAndFilter(t, reg, testbed.CatalogOptions{})
	if !slices.Equal(cat.Cmd, stockCmd) || !slices.Equal(cat.Entrypoint, stockEntrypoint) || tb.CacheLayer == "" {
		t.Fatalf("the test bed's catalog is no longer stock: %q %q, cache layer %q", cat.Entrypoint, cat.Cmd, tb.CacheLayer)
	}
	r, err := Rebuild(cat, out, RebuildOptions{Filter: rebuildFilter})
	if err != nil {
		t.Fatal(err)
	}
	m := unmarshal[ocispec.Manifest](t, r.Manifest)
	config := unmarshal[ocispec.Image](t, blobOf(t, r, m.Config.Digest).Data)
	layer := r.Blobs[0].Data

	rootfs := testbed.ExtractRootfs(t, append(fetchLayers(t, reg, tb.Repository, tb.Layers...), layer)...)
	srv := testbed.ServeImage(t, rootfs, config.Config.Entrypoint, config.Config.Cmd)
	assertStrings(t, "served packages", sorted(srv.Packages(t)), packageNames(out))
	heads := 0
	for _, pr := range report.Packages {
		ctx, cancel := srv.CallContext()
		defer cancel()
		pkg, err := srv.Registry().GetPackage(ctx, &api.GetPackageRequest{Name: pr.Name})
		if err != nil {
			t.Fatalf("GetPackage %s: %v", pr.Name, err)
		}
		var served, want []string
		for _, c := range pkg.GetChannels() {
			served = append(served, c.GetName()+"@"+c.GetCsvName())
		}
		for _, c := range pr.Channels {
			want = append(want, c.Name+"@"+c.Head)
			//lint:ignore SA1019 deprecated in the proto, but opm serves it and older OLM clients ask it
			b, err := srv.Registry().GetBundleForChannel(ctx, &api.GetBundleInChannelRequest{PkgName: pr.Name, ChannelName: c.Name})
			if err != nil {
				t.Fatalf("GetBundleForChannel %s %s: %v", pr.Name, c.Name, err)
			}
			if b.GetCsvName() != c.Head {
				t.Errorf("%s %s: served head %s, filter kept %s", pr.Name, c.Name, b.GetCsvName(), c.Head)
			}
			heads++
		}
		assertStrings(t, pr.Name+" channels and heads", sorted(served), sorted(want))
	}
	if heads < 2 {
		t.Fatalf("checked %d channel heads: the selection changed", heads)
	}

	// The source's command on the rebuilt image: --cache-dir enforces the
	// integrity of a cache that is no longer there.
	_, err = testbed.StartImage(t, rootfs, cat.Entrypoint, cat.Cmd)
	wantServeFailure(t, err, "integrity check failed")

	// The source image as its Dockerfile builds it: the whole catalog and
	// opm's real cache of it, which serves.
	var withoutCache []digest.Digest
	for _, d := range tb.Layers {
		if d != tb.CacheLayer {
			withoutCache = append(withoutCache, d)
		}
	}
	source := testbed.ExtractRootfs(t, fetchLayers(t, reg, tb.Repository, withoutCache...)...)
	// The test bed's base layer stands for a RHEL base, which has /tmp;
	// in the test bed only the cache layer holds it.
	if err := os.Mkdir(filepath.Join(source, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	testbed.BuildImageCache(t, source, cat.Entrypoint, cat.Cmd)
	full := testbed.ServeImage(t, source, cat.Entrypoint, cat.Cmd)
	assertStrings(t, "source packages", sorted(full.Packages(t)), tb.Packages)
	full.Stop(t) // frees the cache for the next opm

	// Filtered configs laid over it, cache and command kept: the crash
	// loop.
	testbed.ApplyLayers(t, source, dropEntries(t, layer, "tmp/"))
	_, err = testbed.StartImage(t, source, cat.Entrypoint, cat.Cmd)
	wantServeFailure(t, err, "integrity check failed", "cache requires rebuild")
}

// wantServeFailure: opm exited before serving, saying all of want.
func wantServeFailure(t *testing.T, err error, want ...string) {
	t.Helper()
	var failed *testbed.OPMServeError
	if !errors.As(err, &failed) {
		t.Fatalf("opm served (%v), want it to exit saying %q", err, want)
	}
	for _, w := range want {
		if !strings.Contains(failed.Log, w) {
			t.Fatalf("opm exited, but not saying %q:\n%s", w, failed.Log)
		}
	}
}

// fetchLayers reads layer blobs from repo.
func fetchLayers(t *testing.T, reg *testbed.Registry, repo string, digests ...digest.Digest) [][]byte {
	t.Helper()
	var out [][]byte
	for _, d := range digests {
		data, err := reg.GetBlob(t.Context(), repo, d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// dropEntries is the gzip'd layer without its entries under prefix.
func dropEntries(t *testing.T, layer []byte, prefix string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(zr)
	dropped := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(hdr.Name, prefix) {
			dropped++
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if dropped == 0 {
		t.Fatalf("the layer has no entry under %s", prefix)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
