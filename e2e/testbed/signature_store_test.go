package testbed

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

func get(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func TestSignatureStore(t *testing.T) {
	t.Parallel()
	s := NewSignatureStore(t)
	key := NewKey(t, "store")
	rel := &Release{Digest: digest.FromString("release"), PullSpec: "quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64"}
	sig1 := s.SignRelease(t, key, rel)
	s.Add(rel.Digest, []byte("second"))
	dir := rel.Digest.Algorithm().String() + "=" + rel.Digest.Encoded()

	for n, want := range map[string][]byte{"signature-1": sig1, "signature-2": []byte("second"), "signature-3": nil} {
		code, _, body := get(t, s.URL+"/"+dir+"/"+n)
		switch {
		case want == nil && code != http.StatusNotFound:
			t.Errorf("%s: %d, want 404", n, code)
		case want != nil && (code != http.StatusOK || !bytes.Equal(body, want)):
			t.Errorf("%s: %d, %d bytes", n, code, len(body))
		}
	}
	for _, p := range []string{"/" + dir + "/signature-0", "/" + dir + "/signature-01", "/sha256=abc/signature-1", "/" + dir} {
		if code, _, _ := get(t, s.URL+p); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
	if code, _, _ := get(t, s.URL[:len(s.URL)-len(SignatureStorePath)]+"/"+dir+"/signature-1"); code != http.StatusNotFound {
		t.Errorf("outside the store path: %d, want 404", code)
	}

	s.FailNext(2, http.StatusTooManyRequests)
	s.RetryAfter("1")
	for range 2 {
		if code, h, _ := get(t, s.URL+"/"+dir+"/signature-1"); code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
			t.Errorf("injected failure: %d, Retry-After %q", code, h.Get("Retry-After"))
		}
	}
	if code, _, _ := get(t, s.URL+"/"+dir+"/signature-1"); code != http.StatusOK {
		t.Errorf("after the failures: %d", code)
	}

	big := digest.FromString("big")
	s.Oversize(big, 10<<20)
	resp, err := http.Get(s.URL + "/sha256=" + big.Encoded() + "/signature-1")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ContentLength != -1 || n != 10<<20 {
		t.Errorf("oversize: Content-Length %d, %d bytes", resp.ContentLength, n)
	}

	log := s.RequestLog()
	if s.Requests() != len(log) || len(log) != 12 || !slices.Contains(log, dir+"/signature-3") {
		t.Errorf("request log (%d): %v", s.Requests(), log)
	}

	u := s.WriteTree(t, t.TempDir())
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "file" {
		t.Fatalf("WriteTree URL %q: %v", u, err)
	}
	got, err := os.ReadFile(filepath.Join(pu.Path, dir, "signature-1"))
	if err != nil || !bytes.Equal(got, sig1) {
		t.Errorf("file store signature-1: %v", err)
	}
	if _, err := os.Stat(filepath.Join(pu.Path, dir, "signature-3")); !os.IsNotExist(err) {
		t.Errorf("file store has a signature-3: %v", err)
	}
}
