package registry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// authOptions are testOptions with credentials for the proxy at host.
func authOptions(t *testing.T, retries *atomic.Int32, host, user, pass string) Options {
	t.Helper()
	opts := testOptions(t, retries)
	if err := os.WriteFile(opts.AuthFile, testbed.AuthFile(host, user, pass), 0o600); err != nil {
		t.Fatal(err)
	}
	return opts
}

// TestStaleTokenSource: a registry that revokes bearer tokens before the
// lifetime they were issued with (here after 3 requests) is read to the end:
// the source fetches a new token when refused.
func TestStaleTokenSource(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewMemoryRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/art", "latest")
	p := testbed.NewFaultProxy(t, reg.URL)
	p.SetAuth(&testbed.TokenAuth{Username: "user", Password: "secret", Uses: 3})
	var retries atomic.Int32
	src, err := New(authOptions(t, &retries, p.Host, "user", "secret")).Source(ctx, p.Host+"/ocp/art@"+img.digest.String())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for range 5 {
		if m, err := src.Manifest(ctx, img.digest); err != nil || m.Digest != img.digest {
			t.Fatalf("manifest: %v", err)
		}
		for _, b := range img.blobs() {
			rc, err := src.VerifiedBlob(ctx, b.digest, int64(len(b.data)))
			if err != nil {
				t.Fatalf("blob %s: %v", b.digest, err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(data, b.data) {
				t.Fatalf("blob %s: %v", b.digest, err)
			}
		}
	}
	// The source renews a refused token at once, without a retry.
	if s := p.Stats(); s.Expired == 0 {
		t.Errorf("no token expired (%+v, %d retries): the test tests nothing", s, retries.Load())
	}
}

// TestStaleTokenDestination pushes through a registry that revokes tokens
// after 5 requests (a blob upload takes up to 4): blobs, manifests and tags
// all land.
func TestStaleTokenDestination(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewMemoryRegistry(t)
	p := testbed.NewFaultProxy(t, reg.URL)
	p.SetAuth(&testbed.TokenAuth{Username: "user", Password: "secret", Uses: 5})
	dst, err := New(authOptions(t, nil, p.Host, "user", "secret")).Destination(ctx, p.Host+"/ocp/mirror")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for _, seed := range []string{"a", "b", "c"} {
		img := makeImage(seed, "amd64")
		for _, b := range img.blobs() {
			if err := dst.PutBlob(ctx, bytes.NewReader(b.data), b.digest, int64(len(b.data))); err != nil {
				t.Fatalf("blob: %v", err)
			}
			if ok, err := dst.HasBlob(ctx, b.digest, int64(len(b.data))); err != nil || !ok {
				t.Fatalf("has blob: %v %v", ok, err)
			}
		}
		if err := dst.PutManifest(ctx, img.manifest, img.digest); err != nil {
			t.Fatalf("manifest: %v", err)
		}
		if err := dst.Tag(ctx, "tag-"+seed, img.manifest); err != nil {
			t.Fatalf("tag: %v", err)
		}
		if got, _, err := reg.GetManifest(ctx, "ocp/mirror", "tag-"+seed); err != nil || !bytes.Equal(got, img.manifest) {
			t.Fatalf("tag-%s in the registry: %v", seed, err)
		}
	}
	if s := p.Stats(); s.Expired == 0 {
		t.Errorf("no token expired (%+v): the test tests nothing", s)
	}
}

// TestWrongCredentials: credentials the registry never accepted fail at
// once, on either side: no retry, no token refresh loop.
func TestWrongCredentials(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewMemoryRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/art", "latest")
	p := testbed.NewFaultProxy(t, reg.URL)
	p.SetAuth(&testbed.TokenAuth{Username: "user", Password: "secret"})
	var retries atomic.Int32
	c := New(authOptions(t, &retries, p.Host, "user", "wrong"))
	if _, err := c.Resolve(ctx, p.Host+"/ocp/art:latest"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("resolve: %v, want ErrUnauthorized", err)
	}
	dst, err := c.Destination(ctx, p.Host+"/ocp/mirror")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := dst.HasBlob(ctx, img.layer.digest, int64(len(img.layer.data))); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("has blob: %v, want ErrUnauthorized", err)
	}
	if err := dst.Tag(ctx, "x", img.manifest); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("tag: %v, want ErrUnauthorized", err)
	}
	if retries.Load() != 0 {
		t.Errorf("wrong credentials retried %d times", retries.Load())
	}
}

// TestVerifiedBlobResumes: a blob stream cut twice in a row (containers/image
// resumes the first cut only) is resumed where it broke; cut for ever, it
// fails within the retry policy.
func TestVerifiedBlobResumes(t *testing.T) {
	ctx := ctxT(t)
	reg := testbed.NewMemoryRegistry(t)
	// A 20 KB layer, read on the Client's own connections: nothing below
	// VerifiedBlob resumes a cut.
	img := makeImage(strings.Repeat("0123456789", 2), "amd64")
	img.push(t, reg.URL, "ocp/art", "latest")
	p := testbed.NewFaultProxy(t, reg.URL)
	var retries atomic.Int32
	src, err := New(testOptions(t, &retries)).Source(ctx, p.Host+"/ocp/art@"+img.digest.String())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	isLayer := func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, img.layer.digest.String()) }
	read := func() ([]byte, error) {
		rc, err := src.VerifiedBlob(ctx, img.layer.digest, int64(len(img.layer.data)))
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}

	// The layer's GET is cut twice in a row: VerifiedBlob opens it again
	// after each cut and reads on from where it broke.
	p.SetFaults(testbed.Faults{Resets: 1, Times: 2, Match: isLayer})
	data, err := read()
	if err != nil || !bytes.Equal(data, img.layer.data) {
		t.Fatalf("cut twice: %d bytes, %v", len(data), err)
	}
	if s := p.Stats(); s.Resets != 2 || retries.Load() != 2 {
		t.Errorf("the stream was not cut as planned: %+v, %d retries", s, retries.Load())
	}

	p.SetFaults(testbed.Faults{Resets: 1, Match: isLayer})
	p.ResetStats()
	if _, err := read(); err == nil || !IsTransient(err) || !strings.Contains(err.Error(), "attempts") {
		t.Fatalf("cut for ever: %v, want a transient error after the attempts", err)
	}
	if s := p.Stats(); s.Resets > 2*testOptions(t, nil).Retry.Attempts {
		t.Errorf("%d requests for a blob that never comes: the retries multiply", s.Resets)
	}
}
