package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestDockerRegistryProcess(t *testing.T) {
	t.Parallel()
	r := StartDockerRegistry(t)
	ctx := t.Context()
	if !strings.HasPrefix(r.Host, "127.0.0.1:") || strings.HasSuffix(r.Host, ":5000") {
		t.Errorf("host %s", r.Host)
	}

	// A small image by hand: one streamed layer, a config, a manifest.
	d, n, err := r.PushBlobFrom(ctx, "test/repo", strings.NewReader("layer data"))
	if err != nil || d != digest.FromString("layer data") || n != 10 {
		t.Fatalf("PushBlobFrom: %s %d %v", d, n, err)
	}
	cfg, err := r.PushBlob(ctx, "test/repo", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if mounted, err := r.MountBlob(ctx, "test/other", "test/repo", d); err != nil || !mounted {
		t.Errorf("mount: %t %v", mounted, err)
	}
	man := []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":{"mediaType":"` +
		ocispec.MediaTypeImageConfig + `","digest":"` + cfg.String() + `","size":78},"layers":[]}`)
	md, err := r.PushManifest(ctx, "test/repo", "v1", ocispec.MediaTypeImageManifest, man)
	if err != nil {
		t.Fatal(err)
	}
	got, mt, err := r.GetManifest(ctx, "test/repo", md.String())
	if err != nil || !bytes.Equal(got, man) || mt != ocispec.MediaTypeImageManifest {
		t.Errorf("GetManifest: %s %v", mt, err)
	}
	if tags, err := r.Tags(ctx, "test/repo"); err != nil || !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("tags %v %v", tags, err)
	}
	if data, err := os.ReadFile(r.BlobPath(d)); err != nil || string(data) != "layer data" {
		t.Errorf("blob file %s: %q %v", r.BlobPath(d), data, err)
	}

	// A whole release, pushed by the builder to distribution 2.8.
	rel := BuildRelease(t, r.Host, ReleaseOptions{Components: 3, Multi: true, Sigstore: true})
	if got, _, err := r.GetManifest(ctx, rel.Repository, rel.Tag); err != nil || !bytes.Equal(got, rel.Manifest) {
		t.Errorf("release on docker-registry: %v", err)
	}

	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(r.URL + "/v2/"); err == nil {
		t.Error("registry still answers after Stop")
	}
	if err := r.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestSkopeoCopyBetweenRegistries(t *testing.T) {
	t.Parallel()
	src := NewMemoryRegistry(t)
	dst := StartDockerRegistry(t)
	rel := BuildRelease(t, src.Host, ReleaseOptions{Components: 3, Multi: true})
	Skopeo(t, "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+rel.PullSpec, "docker://"+dst.Host+"/mirror/release:"+rel.Tag)
	desc, err := dst.HeadManifest(t.Context(), "mirror/release", rel.Tag)
	if err != nil || desc.Digest != rel.Digest {
		t.Errorf("copied release: %s %v, want %s", desc.Digest, err, rel.Digest)
	}
}

func TestClient(t *testing.T) {
	t.Parallel()
	r := NewMemoryRegistry(t)
	c := r.Client()
	ctx := t.Context()
	cfg, err := c.PushBlob(ctx, "a/b", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	man := []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","config":{"mediaType":"` +
		MediaTypeDockerConfig + `","digest":"` + cfg.String() + `","size":2},"layers":[]}`)
	// More tags than a page, so Tags follows Link headers.
	var want []string
	for i := range listPageSize + 5 {
		tag := fmt.Sprintf("t%03d", i)
		want = append(want, tag)
		if _, err := c.PushManifest(ctx, "a/b", tag, MediaTypeDockerManifest, man); err != nil {
			t.Fatal(err)
		}
	}
	tags, err := c.Tags(ctx, "a/b")
	if err != nil || !slices.Equal(tags, want) {
		t.Errorf("tags: %d, %v", len(tags), err)
	}
	if _, err := c.Tags(ctx, "no/such"); !errors.Is(err, ErrNotFound) {
		t.Errorf("tags of a missing repository: %v", err)
	}
	if _, err := c.PushManifest(ctx, "a/b", digest.FromString("x").String(), MediaTypeDockerManifest, man); err == nil {
		t.Error("pushing under a wrong digest succeeded")
	}
	md := digest.FromBytes(man)
	if err := c.DeleteManifest(ctx, "a/b", md); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetManifest(ctx, "a/b", "t000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted manifest: %v", err)
	}
	if err := c.DeleteBlob(ctx, "a/b", cfg); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.BlobExists(ctx, "a/b", cfg); ok || err != nil {
		t.Errorf("deleted blob: %t %v", ok, err)
	}
	if got := nextLink(`</v2/_catalog?last=x&n=2>; rel="next"`); got != "/v2/_catalog?last=x&n=2" {
		t.Errorf("nextLink: %q", got)
	}
}

func TestNeedToolSkipsOutsideCI(t *testing.T) {
	t.Setenv("CI", "")
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		needTool(t, "/nonexistent/ferry-tool", "ferry-no-such-tool")
		t.Error("needTool returned for a missing tool")
	})
	if !skipped {
		t.Error("a missing tool did not skip the test")
	}
}
