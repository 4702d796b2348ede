package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// pushTestImage pushes a one-layer image to repo:tag and returns its digest.
func pushTestImage(t *testing.T, reg *testbed.Registry, repo, tag string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	config, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte("layer of "+tag)
	cfg, err := reg.PushBlob(ctx, repo, config)
	if err != nil {
		t.Fatal(err)
	}
	l, err := reg.PushBlob(ctx, repo, layer)
	if err != nil {
		t.Fatal(err)
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, mediaTypeOCI, cfg, len(config), l, len(layer))
	d, err := reg.PushManifest(ctx, repo, tag, mediaTypeOCI, []byte(m))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestManifestDeleter: a manifest deleted by digest takes its tag with it;
// deleting it again is not an error; a registry with deletion disabled
// answers with a *DeleteUnsupportedError and keeps the manifest.
func TestManifestDeleter(t *testing.T) {
	ctx := context.Background()
	reg := testbed.NewRegistry(t)
	d := pushTestImage(t, reg, "ocp4/openshift4", "4.15.0-x86_64")
	del, err := New(testOptions(t, nil)).ManifestDeleter(reg.Host + "/ocp4/openshift4")
	if err != nil {
		t.Fatal(err)
	}
	if err := del.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.HeadManifest(ctx, "ocp4/openshift4", "4.15.0-x86_64"); !errors.Is(err, testbed.ErrNotFound) {
		t.Errorf("the tag after deleting its manifest: %v, want 404", err)
	}
	if err := del.Delete(ctx, d); err != nil {
		t.Errorf("deleting a manifest already gone: %v", err)
	}

	off := testbed.NewRegistryWith(t, testbed.RegistryOptions{DeleteDisabled: true})
	kept := pushTestImage(t, off, "ocp4/openshift4", "v1")
	refusing, err := New(testOptions(t, nil)).ManifestDeleter(off.Host + "/ocp4/openshift4")
	if err != nil {
		t.Fatal(err)
	}
	err = refusing.Delete(ctx, kept)
	if !IsDeleteUnsupported(err) || !strings.Contains(err.Error(), "UNSUPPORTED") || !strings.Contains(err.Error(), off.Host+"/ocp4/openshift4") {
		t.Errorf("deleting with deletion disabled: %v, want a DeleteUnsupportedError naming the repository and the registry's code", err)
	}
	if desc, err := off.HeadManifest(ctx, "ocp4/openshift4", "v1"); err != nil || desc.Digest != kept {
		t.Errorf("the refused manifest: %v (%v)", desc.Digest, err)
	}
}

// TestManifestDeleterAnswers: a bare 405 is a registry that does not
// delete; 403 is refused access (ErrUnauthorized), not retried; a 503 is
// retried.
func TestManifestDeleterAnswers(t *testing.T) {
	for _, tc := range []struct {
		status      int
		unsupported bool
		class       error
		tries       int32
	}{
		{http.StatusMethodNotAllowed, true, nil, 1},
		{http.StatusForbidden, false, ErrUnauthorized, 1},
		{http.StatusServiceUnavailable, false, nil, 4},
	} {
		var tries atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodDelete {
				tries.Add(1)
				w.WriteHeader(tc.status)
				return
			}
			w.WriteHeader(http.StatusOK) // /v2/
		}))
		host := strings.TrimPrefix(srv.URL, "http://")
		del, err := New(testOptions(t, nil)).ManifestDeleter(host + "/ocp4/openshift4")
		if err != nil {
			t.Fatal(err)
		}
		err = del.Delete(context.Background(), digest.FromString("x"))
		srv.Close()
		if IsDeleteUnsupported(err) != tc.unsupported || (tc.class != nil && !errors.Is(err, tc.class)) || err == nil || tries.Load() != tc.tries {
			t.Errorf("answer %d: %v after %d tries; want unsupported %v, class %v, %d tries", tc.status, err, tries.Load(), tc.unsupported, tc.class, tc.tries)
		}
	}
}
