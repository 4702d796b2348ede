package registry

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
)

func TestResolve(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/release", "4.15.0-x86_64")
	c := New(testOptions(t, nil))

	for _, ref := range []string{
		reg.Host + "/ocp/release:4.15.0-x86_64",
		reg.Host + "/ocp/release@" + img.digest.String(),
		reg.Host + "/ocp/release:4.15.0-x86_64@" + img.digest.String(),
	} {
		m, err := c.Resolve(ctx, ref)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", ref, err)
		}
		if m.Digest != img.digest || !bytes.Equal(m.Bytes, img.manifest) || m.Digest != digest.FromBytes(m.Bytes) {
			t.Errorf("Resolve(%s) = %s, want %s with the bytes as pushed", ref, m.Digest, img.digest)
		}
		if m.MediaType != mediaTypeSchema2 || m.Repository != reg.Host+"/ocp/release" {
			t.Errorf("Resolve(%s): media type %q, repository %q", ref, m.MediaType, m.Repository)
		}
	}

	for _, bad := range []string{reg.Host + "/ocp/release", reg.Host + "/ocp/release@sha256:1234", "UPPER/case:x"} {
		if _, err := c.Resolve(ctx, bad); err == nil {
			t.Errorf("Resolve(%q) succeeded", bad)
		}
	}
	_, err := c.Resolve(ctx, reg.Host+"/ocp/release:4.99.0-x86_64")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "ocp/release:4.99.0-x86_64") {
		t.Errorf("missing tag: %v", err)
	}
}

func TestResolveDigestMismatch(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	good, other := makeImage("a", "amd64"), makeImage("b", "amd64")
	good.push(t, reg.URL, "ocp/release", "")
	// A broken mirror in between serves other bytes under good's digest.
	p := newProxy(t, reg, func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if strings.HasSuffix(r.URL.Path, "/manifests/"+good.digest.String()) {
			w.Header().Set("Content-Type", mediaTypeSchema2)
			w.Write(other.manifest)
			return true
		}
		return false
	})
	c := New(testOptions(t, nil))
	_, err := c.Resolve(ctx, p.Host+"/ocp/release@"+good.digest.String())
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Resolve: %v, want a digest mismatch", err)
	}
	if !strings.Contains(err.Error(), other.digest.String()) {
		t.Errorf("error does not name the digest served: %v", err)
	}

	src, err := c.Source(ctx, p.Host+"/ocp/release")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Manifest(ctx, good.digest); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Source.Manifest: %v, want a digest mismatch", err)
	}
}

func TestSourceManifestByTag(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/art", "")
	sigTag := "sha256-" + img.digest.Encoded() + ".sig"
	p := newProxy(t, reg, func(w http.ResponseWriter, r *http.Request, _ int) bool {
		switch {
		case strings.HasSuffix(r.URL.Path, "/manifests/empty-404"):
			w.WriteHeader(http.StatusNotFound) // no registry error body, as some proxies do
			return true
		case strings.HasSuffix(r.URL.Path, "/manifests/broken"):
			w.WriteHeader(http.StatusInternalServerError)
			return true
		case strings.HasSuffix(r.URL.Path, "/manifests/forbidden"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
			return true
		}
		return false
	})
	var retries atomic.Int32
	c := New(testOptions(t, &retries))
	src, err := c.Source(ctx, p.Host+"/ocp/art")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Read on the Client's own connections, a blob needs no manifest
	// read first (containers/image's sources, used when registries.conf
	// sends the repository elsewhere, do).
	rc, err := src.VerifiedBlob(ctx, img.layer.digest, int64(len(img.layer.data)))
	if err != nil {
		t.Fatalf("Blob before any manifest: %v", err)
	}
	if data, err := io.ReadAll(rc); err != nil || !bytes.Equal(data, img.layer.data) {
		t.Errorf("Blob before any manifest: %v", err)
	}
	rc.Close()
	if m, err := src.Manifest(ctx, img.digest); err != nil || !bytes.Equal(m.Bytes, img.manifest) {
		t.Fatalf("Manifest: %v", err)
	}

	sigPath := "/v2/ocp/art/manifests/" + sigTag
	_, err = src.ManifestByTag(ctx, sigTag)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing .sig tag: %v, want ErrNotFound", err)
	}
	if n := p.count(http.MethodGet, sigPath); n != 1 || retries.Load() != 0 {
		t.Errorf("a 404 was retried: %d requests, %d retries", n, retries.Load())
	}
	if _, err := src.ManifestByTag(ctx, "empty-404"); !errors.Is(err, ErrNotFound) {
		t.Errorf("404 without a body: %v, want ErrNotFound", err)
	}

	retries.Store(0)
	_, err = src.ManifestByTag(ctx, "broken")
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Errorf("500: %v, want a retried error that is not ErrNotFound", err)
	}
	if retries.Load() != 3 {
		t.Errorf("500 retried %d times, want 3", retries.Load())
	}
	_, err = src.ManifestByTag(ctx, "forbidden")
	if err == nil || errors.Is(err, ErrNotFound) || !errors.Is(err, ErrUnauthorized) {
		t.Errorf("403: %v, want ErrUnauthorized only", err)
	}
	if _, err := src.ManifestByTag(ctx, "bad tag!"); err == nil {
		t.Error("invalid tag accepted")
	}

	// A cosign signature: an OCI manifest under the .sig tag.
	sigLayer := []byte(`{"critical":{}}`)
	pushBlob(t, reg.URL, "ocp/art", sigLayer)
	emptyCfg := []byte("{}")
	pushBlob(t, reg.URL, "ocp/art", emptyCfg)
	sig := []byte(`{"schemaVersion":2,"mediaType":"` + mediaTypeOCI + `","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"` +
		digest.FromBytes(emptyCfg).String() + `"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":` +
		strconv.Itoa(len(sigLayer)) + `,"digest":"` + digest.FromBytes(sigLayer).String() + `","annotations":{"dev.cosignproject.cosign/signature":"MEUC"}}]}`)
	pushManifest(t, reg.URL, "ocp/art", sigTag, mediaTypeOCI, sig)
	m, err := src.ManifestByTag(ctx, sigTag)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes, sig) || m.Digest != digest.FromBytes(sig) || m.MediaType != mediaTypeOCI {
		t.Errorf("sig manifest: %s %s", m.Digest, m.MediaType)
	}
}

func TestSourceOnPullSpec(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/art", "v1")
	c := New(testOptions(t, nil))
	src, err := c.Source(ctx, reg.Host+"/ocp/art:v1")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Opened on the tag: blobs are readable at once.
	rc, err := src.VerifiedBlob(ctx, img.config.digest, int64(len(img.config.data)))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(data, img.config.data) {
		t.Errorf("config blob: %v", err)
	}
	if _, err := c.Source(ctx, reg.Host+"/ocp/art:nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Source on a missing tag: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Manifest(ctx, img.digest); err == nil {
		t.Error("closed source still reads")
	}
}

func TestBlob(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/art", "")
	layerPath := "/v2/ocp/art/blobs/" + img.layer.digest.String()
	p := newProxy(t, reg, func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.URL.Path == layerPath && r.Method == http.MethodGet && n >= 3 {
			corrupt := bytes.Clone(img.layer.data)
			corrupt[10] ^= 0xff
			w.Header().Set("Content-Length", strconv.Itoa(len(corrupt)))
			w.Write(corrupt)
			return true
		}
		return false
	})
	c := New(testOptions(t, nil))
	src, err := c.Source(ctx, p.Host+"/ocp/art@"+img.digest.String())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	size := int64(len(img.layer.data))

	read := func(verified bool) ([]byte, error) {
		open := src.Blob
		if verified {
			open = src.VerifiedBlob
		}
		rc, err := open(ctx, img.layer.digest, size)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	if data, err := read(false); err != nil || !bytes.Equal(data, img.layer.data) {
		t.Fatalf("raw blob: %v", err)
	}
	if data, err := read(true); err != nil || !bytes.Equal(data, img.layer.data) {
		t.Fatalf("verified blob: %v", err)
	}
	// From now on the proxy corrupts the layer.
	if data, err := read(false); err != nil || bytes.Equal(data, img.layer.data) {
		t.Fatalf("raw blob is streamed as served: %v", err)
	}
	if _, err := read(true); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("verified corrupt blob: %v, want ErrDigestMismatch", err)
	}
	// A size that disagrees with the registry's is refused before reading.
	if _, err := src.Blob(ctx, img.layer.digest, size+1); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("wrong size: %v", err)
	}
	missing := digest.FromString("missing")
	if _, err := src.Blob(ctx, missing, 7); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing blob: %v, want ErrNotFound", err)
	}
}

// TestPushRoundTrip copies a manifest list, its images and a tag from one
// registry to another through Source and Destination and checks that every
// manifest arrives byte for byte.
func TestPushRoundTrip(t *testing.T) {
	ctx := ctxT(t)
	from, to := testbed.NewRegistry(t), testbed.NewRegistry(t)
	amd, arm := makeImage("a", "amd64"), makeImage("b", "arm64")
	amd.push(t, from.URL, "ocp/release", "")
	arm.push(t, from.URL, "ocp/release", "")
	list := makeList(amd, arm)
	listDigest := pushManifest(t, from.URL, "ocp/release", "4.15.0-multi", mediaTypeList, list)

	c := New(testOptions(t, nil))
	src, err := c.Source(ctx, from.Host+"/ocp/release")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := c.Destination(ctx, to.Host+"/mirror/openshift4")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	top, err := src.ManifestByTag(ctx, "4.15.0-multi")
	if err != nil {
		t.Fatal(err)
	}
	if top.Digest != listDigest || top.MediaType != mediaTypeList {
		t.Fatalf("list: %s %s", top.Digest, top.MediaType)
	}
	for _, img := range []image{amd, arm} {
		m, err := src.Manifest(ctx, img.digest)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range img.blobs() {
			size := int64(len(b.data))
			if has, err := dst.HasBlob(ctx, b.digest, size); err != nil || has {
				t.Fatalf("HasBlob before push = %v, %v", has, err)
			}
			rc, err := src.VerifiedBlob(ctx, b.digest, size)
			if err != nil {
				t.Fatal(err)
			}
			err = dst.PutBlob(ctx, rc, b.digest, size)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if has, err := dst.HasBlob(ctx, b.digest, size); err != nil || !has {
				t.Fatalf("HasBlob after push = %v, %v", has, err)
			}
		}
		if err := dst.PutManifest(ctx, m.Bytes, m.Digest); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.PutManifest(ctx, top.Bytes, top.Digest); err != nil {
		t.Fatal(err)
	}
	if err := dst.Tag(ctx, "4.15.0-multi", top.Bytes); err != nil {
		t.Fatal(err)
	}
	if err := dst.Tag(ctx, "4.15.0-x86_64", amd.manifest); err != nil {
		t.Fatal(err)
	}

	for ref, want := range map[string][]byte{
		to.Host + "/mirror/openshift4:4.15.0-multi":           list,
		to.Host + "/mirror/openshift4@" + listDigest.String(): list,
		to.Host + "/mirror/openshift4:4.15.0-x86_64":          amd.manifest,
		to.Host + "/mirror/openshift4@" + arm.digest.String(): arm.manifest,
	} {
		m, err := c.Resolve(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Bytes, want) {
			t.Errorf("%s: bytes differ from the source's:\n%s\n%s", ref, m.Bytes, want)
		}
	}
	// Pushing again is harmless: blobs are found, manifests rewritten.
	if err := dst.PutBlob(ctx, bytes.NewReader(amd.layer.data), amd.layer.digest, int64(len(amd.layer.data))); err != nil {
		t.Error(err)
	}
}

func TestPushRefusesBadContent(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	c := New(testOptions(t, nil))
	dst, err := c.Destination(ctx, reg.Host+"/mirror/x")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	data := []byte("layer data")
	wrong := digest.FromString("something else")

	err = dst.PutBlob(ctx, bytes.NewReader(data), wrong, int64(len(data)))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("PutBlob with a wrong digest: %v", err)
	}
	if has, _ := dst.HasBlob(ctx, wrong, int64(len(data))); has {
		t.Error("a blob that failed verification became visible")
	}
	// Without the client-side check the registry itself refuses the bytes.
	if err := dst.PutVerifiedBlob(ctx, bytes.NewReader(data), wrong, int64(len(data))); err == nil {
		t.Error("PutVerifiedBlob with a wrong digest: the registry accepted it")
	}
	if has, _ := dst.HasBlob(ctx, wrong, int64(len(data))); has {
		t.Error("a blob the registry should have refused became visible")
	}
	err = dst.PutBlob(ctx, io.LimitReader(bytes.NewReader(data), 4), digest.FromBytes(data), int64(len(data)))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("PutBlob of a short stream: %v", err)
	}
	err = dst.PutBlob(ctx, bytes.NewReader(append(data, '!')), digest.FromBytes(data), int64(len(data)))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("PutBlob of a long stream: %v", err)
	}
	img := makeImage("a", "amd64")
	if err := dst.PutManifest(ctx, img.manifest, wrong); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("PutManifest with a wrong digest: %v", err)
	}
	// The registry refuses a manifest whose blobs are missing.
	if err := dst.PutManifest(ctx, img.manifest, img.digest); err == nil {
		t.Error("PutManifest without its blobs succeeded")
	}
	if err := dst.Tag(ctx, "bad tag", img.manifest); err == nil {
		t.Error("invalid tag accepted")
	}
	if _, err := c.Destination(ctx, reg.Host+"/mirror/x:tag"); err == nil {
		t.Error("Destination accepted a tag")
	}
}

func TestRetries(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/release", "4.15.0-x86_64")
	manifestPath := "/v2/ocp/release/manifests/4.15.0-x86_64"
	digestPath := "/v2/ocp/release/manifests/" + img.digest.String()
	layerPath := "/v2/ocp/release/blobs/" + img.layer.digest.String()

	t.Run("503 then success", func(t *testing.T) {
		p := newProxy(t, reg, func(w http.ResponseWriter, r *http.Request, n int) bool {
			if r.URL.Path == manifestPath && n <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			return false
		})
		var retries atomic.Int32
		m, err := New(testOptions(t, &retries)).Resolve(ctx, p.Host+"/ocp/release:4.15.0-x86_64")
		if err != nil {
			t.Fatal(err)
		}
		if m.Digest != img.digest {
			t.Errorf("digest %s", m.Digest)
		}
		if n := p.count(http.MethodGet, manifestPath); n != 3 || retries.Load() != 2 {
			t.Errorf("%d requests, %d retries; want 3 and 2", n, retries.Load())
		}
	})

	t.Run("connection cut mid-body", func(t *testing.T) {
		p := newProxy(t, reg, func(w http.ResponseWriter, r *http.Request, n int) bool {
			if r.URL.Path == digestPath && n == 1 {
				truncate(w)
				return true
			}
			return false
		})
		var retries atomic.Int32
		c := New(testOptions(t, &retries))
		src, err := c.Source(ctx, p.Host+"/ocp/release:4.15.0-x86_64")
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if _, err := src.Manifest(ctx, img.digest); err != nil {
			t.Fatal(err)
		}
		if n := p.count(http.MethodGet, digestPath); n != 2 || retries.Load() != 1 {
			t.Errorf("%d requests, %d retries; want 2 and 1", n, retries.Load())
		}
	})

	t.Run("blob 502 then success", func(t *testing.T) {
		p := newProxy(t, reg, func(w http.ResponseWriter, r *http.Request, n int) bool {
			if r.URL.Path == layerPath && n == 1 {
				w.WriteHeader(http.StatusBadGateway)
				return true
			}
			return false
		})
		var retries atomic.Int32
		src, err := New(testOptions(t, &retries)).Source(ctx, p.Host+"/ocp/release:4.15.0-x86_64")
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		rc, err := src.VerifiedBlob(ctx, img.layer.digest, int64(len(img.layer.data)))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		if retries.Load() != 1 {
			t.Errorf("%d retries, want 1", retries.Load())
		}
	})

	t.Run("429 gives up after the attempts", func(t *testing.T) {
		p := newProxy(t, reg, func(w http.ResponseWriter, r *http.Request, n int) bool {
			if r.URL.Path == manifestPath {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
			return false
		})
		var retries atomic.Int32
		opts := testOptions(t, &retries)
		opts.Retry.Attempts = 2
		_, err := New(opts).Resolve(ctx, p.Host+"/ocp/release:4.15.0-x86_64")
		if err == nil || !strings.Contains(err.Error(), "after 2 attempts") {
			t.Fatalf("error %v", err)
		}
		if retries.Load() != 1 {
			t.Errorf("%d retries, want 1", retries.Load())
		}
	})

	t.Run("push recovers from a failed first contact and a failed upload", func(t *testing.T) {
		to := testbed.NewRegistry(t)
		var failedPing, failedPatch atomic.Bool
		p := newProxy(t, to, func(w http.ResponseWriter, r *http.Request, n int) bool {
			if r.URL.Path == "/v2/" && failedPing.CompareAndSwap(false, true) {
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			// The request carrying the blob: a PATCH, or the PUT of a
			// monolithic upload.
			carries := r.Method == http.MethodPatch || r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength > 0
			if carries && failedPatch.CompareAndSwap(false, true) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusInternalServerError)
				return true
			}
			return false
		})
		var retries atomic.Int32
		c := New(testOptions(t, &retries))
		dst, err := c.Destination(ctx, p.Host+"/mirror/x")
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		size := int64(len(img.layer.data))
		if has, err := dst.HasBlob(ctx, img.layer.digest, size); err != nil || has {
			t.Fatalf("HasBlob = %v, %v", has, err)
		}
		if retries.Load() != 1 {
			t.Errorf("HasBlob: %d retries, want 1", retries.Load())
		}
		// Not rewindable: the failed upload is not retried.
		err = dst.PutBlob(ctx, io.MultiReader(bytes.NewReader(img.layer.data)), img.layer.digest, size)
		if err == nil {
			t.Fatal("PutBlob from a plain reader retried")
		}
		failedPatch.Store(false)
		if err := dst.PutBlob(ctx, bytes.NewReader(img.layer.data), img.layer.digest, size); err != nil {
			t.Fatalf("PutBlob from a bytes.Reader: %v", err)
		}
		if has, err := dst.HasBlob(ctx, img.layer.digest, size); err != nil || !has {
			t.Fatalf("HasBlob after push = %v, %v", has, err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		host := l.Addr().String()
		l.Close()
		var retries atomic.Int32
		opts := testOptions(t, &retries)
		opts.Retry.Attempts = 2
		_, err = New(opts).Resolve(ctx, host+"/ocp/release:4.15.0-x86_64")
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("error %v, want ErrUnreachable naming %s", err, host)
		}
		if retries.Load() != 1 {
			t.Errorf("%d retries, want 1", retries.Load())
		}
		if _, err := New(opts).Resolve(ctx, "registry.invalid/ocp/release:4.15.0-x86_64"); !errors.Is(err, ErrUnreachable) {
			t.Errorf("unknown host: %v", err)
		}
	})
}

func TestUnauthorized(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	p := newProxy(t, reg, func(w http.ResponseWriter, r *http.Request, _ int) bool {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return true
	})
	var retries atomic.Int32
	_, err := New(testOptions(t, &retries)).Resolve(ctx, p.Host+"/ocp/release:4.15.0-x86_64")
	if !errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotFound) {
		t.Fatalf("error %v, want ErrUnauthorized", err)
	}
	if retries.Load() != 0 {
		t.Errorf("401 retried %d times", retries.Load())
	}
}

func TestTLS(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/release", "4.15.0-x86_64")
	u, _ := url.Parse(reg.URL)
	srv := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(u))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ref := host + "/ocp/release:4.15.0-x86_64"

	opts := testOptions(t, nil)
	opts.TLSVerify = true
	_, err := New(opts).Resolve(ctx, ref)
	if !errors.Is(err, ErrTLS) {
		t.Fatalf("untrusted certificate: %v, want ErrTLS", err)
	}

	certDir := t.TempDir()
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	opts.CertDir = certDir
	if m, err := New(opts).Resolve(ctx, ref); err != nil || m.Digest != img.digest {
		t.Fatalf("with --cert-dir: %v", err)
	}

	opts.CertDir = ""
	opts.TLSVerify = false
	if _, err := New(opts).Resolve(ctx, ref); err != nil {
		t.Fatalf("without verification: %v", err)
	}
}

// TestConcurrent shares one Source and one Destination between
// DefaultParallel workers, as the CLI does (run with -race).
func TestConcurrent(t *testing.T) {
	ctx := ctxT(t)
	from, to := testbed.NewRegistry(t), testbed.NewRegistry(t)
	var imgs []image
	for i := range 8 {
		img := makeImage(strconv.Itoa(i), "amd64")
		img.push(t, from.URL, "ocp/art", "")
		imgs = append(imgs, img)
	}
	c := New(testOptions(t, nil))
	src, err := c.Source(ctx, from.Host+"/ocp/art")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := c.Destination(ctx, to.Host+"/mirror/x")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	work := make(chan image)
	errs := make(chan error, DefaultParallel)
	for range DefaultParallel {
		go func() {
			var first error
			for img := range work {
				if first != nil {
					continue
				}
				first = copyImage(ctx, src, dst, img)
			}
			errs <- first
		}()
	}
	for _, img := range imgs {
		work <- img
	}
	close(work)
	for range DefaultParallel {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, img := range imgs {
		m, err := c.Resolve(ctx, to.Host+"/mirror/x@"+img.digest.String())
		if err != nil || !bytes.Equal(m.Bytes, img.manifest) {
			t.Fatalf("%s: %v", img.digest, err)
		}
	}
}

func copyImage(ctx context.Context, src *Source, dst *Destination, img image) error {
	m, err := src.Manifest(ctx, img.digest)
	if err != nil {
		return err
	}
	for _, b := range img.blobs() {
		size := int64(len(b.data))
		if has, err := dst.HasBlob(ctx, b.digest, size); err != nil || has {
			continue
		}
		rc, err := src.VerifiedBlob(ctx, b.digest, size)
		if err != nil {
			return err
		}
		err = dst.PutBlob(ctx, rc, b.digest, size)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return dst.PutManifest(ctx, m.Bytes, m.Digest)
}
