package signature_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/signature"
)

const (
	nooRepoPath   = "albo/aws-load-balancer-operator-bundle"
	nooRedHatRepo = "registry.redhat.io/" + nooRepoPath
	nooAccessRepo = "registry.access.redhat.com/" + nooRepoPath

	imageRepo = "registry.redhat.io/ns/img"
)

// nooSignatures are the four real Red Hat signatures of nooDigest, in
// store order.
func nooSignatures(t *testing.T) [][]byte {
	sigs := make([][]byte, 4)
	for i := range sigs {
		sigs[i] = fixture(t, fmt.Sprintf("noo-bundle.signature-%d", i+1))
	}
	return sigs
}

func redHatKeyring(t *testing.T) *signature.Keyring {
	kr, err := signature.RedHatReleaseKeyring()
	if err != nil {
		t.Fatalf("RedHatReleaseKeyring: %v", err)
	}
	return kr
}

func verifyImage(t *testing.T, sigs [][]byte, kr *signature.Keyring, repo string, d digest.Digest) *signature.ImageVerdict {
	t.Helper()
	v, err := signature.VerifyImage(sigs, kr, repo, d)
	if err != nil {
		t.Fatalf("VerifyImage(%s@%s): %v", repo, d, err)
	}
	return v
}

// TestVerifyImageRedHatNooBundle: Red Hat's real signatures of one bundle
// image, under the built-in release key, count for the image under both of
// Red Hat's public registry names, each one alone too.
func TestVerifyImageRedHatNooBundle(t *testing.T) {
	kr := redHatKeyring(t)
	sigs := nooSignatures(t)
	identities := []string{
		nooAccessRepo + ":0.0.1", nooAccessRepo + ":0.0.1-20",
		nooRedHatRepo + ":0.0.1", nooRedHatRepo + ":0.0.1-20",
	}
	for _, repo := range []string{nooRedHatRepo, nooAccessRepo} {
		v := verifyImage(t, sigs, kr, repo, nooDigest)
		if v.Status != signature.ImageSigned || len(v.Signed) != 4 || len(v.Rejected) != 0 || v.Err() != nil {
			t.Fatalf("%s: verdict %s, %d signed, rejected %+v; want signed by all 4", repo, v.Status, len(v.Signed), v.Rejected)
		}
		for i, s := range v.Signed {
			if s.N != i+1 || s.Identity != identities[i] || s.Fingerprint != releaseKeyFingerprint || s.Digest != nooDigest {
				t.Errorf("%s: signed[%d] = N %d, %s by %s; want N %d, %s by %s", repo, i, s.N, s.Identity, s.Fingerprint, i+1, identities[i], releaseKeyFingerprint)
			}
		}
		for i, sig := range sigs {
			one := verifyImage(t, [][]byte{sig}, kr, repo, nooDigest)
			if one.Status != signature.ImageSigned || one.Signed[0].Identity != identities[i] {
				t.Errorf("%s: signature-%d alone: %s, want signed as %s", repo, i+1, one.Status, identities[i])
			}
		}
	}
}

// TestVerifyImageRedHatRefusesOtherImage: the same real signatures prove
// nothing for another digest, another repository path, another registry,
// or under another key; every reason is kept.
func TestVerifyImageRedHatRefusesOtherImage(t *testing.T) {
	kr := redHatKeyring(t)
	sigs := nooSignatures(t)

	v := verifyImage(t, sigs, kr, nooRedHatRepo, otherDigest)
	wantInvalid(t, v, 4)
	for _, r := range v.Rejected {
		if mm := wantErr[*signature.DigestMismatchError](t, r.Err); mm.Got != nooDigest {
			t.Errorf("signature-%d: mismatch got %s, want %s", r.N, mm.Got, nooDigest)
		}
	}

	for repo, reason := range map[string]string{
		"registry.redhat.io/albo/aws-load-balancer-operator":         `repository path "albo/aws-load-balancer-operator-bundle"`,
		"registry.redhat.io/other/aws-load-balancer-operator-bundle": `repository path "albo/aws-load-balancer-operator-bundle"`,
		"quay.io/" + nooRepoPath:                                     "names registry",
		"registry-proxy.engineering.redhat.com/" + nooRepoPath:       "names registry",
	} {
		v := verifyImage(t, sigs, kr, repo, nooDigest)
		wantInvalid(t, v, 4)
		for _, r := range v.Rejected {
			id := wantErr[*signature.IdentityError](t, r.Err)
			wantContains(t, id.Error(), reason, repo)
		}
		err := v.Err()
		wantErr[*signature.InvalidImageSignaturesError](t, err)
		wantErr[*signature.IdentityError](t, err)
		wantContains(t, err.Error(), repo, nooDigest, "signature-1:", "signature-4:")
	}

	beta := loadFixtureKeyring(t, betaKeyFile)
	v = verifyImage(t, sigs, beta, nooRedHatRepo, nooDigest)
	wantInvalid(t, v, 4)
	wantErr[*signature.UnknownKeyError](t, v.Err())
}

func wantInvalid(t *testing.T, v *signature.ImageVerdict, rejected int) {
	t.Helper()
	if v.Status != signature.ImageInvalid || len(v.Signed) != 0 || len(v.Rejected) != rejected {
		t.Fatalf("verdict %s, %d signed, %d rejected; want invalid, 0 signed, %d rejected", v.Status, len(v.Signed), len(v.Rejected), rejected)
	}
	for i, r := range v.Rejected {
		if r.N != i+1 || r.Err == nil {
			t.Errorf("rejected[%d] = N %d, %v; want N %d with a reason", i, r.N, r.Err, i+1)
		}
	}
}

// TestVerifyImageIdentityRule: which docker-references count for an image,
// with signatures made by the test bed's key.
func TestVerifyImageIdentityRule(t *testing.T) {
	key := testbed.NewKey(t, "images")
	kr := parseKeyring(t, "images", key.PublicBinary(t))
	tests := []struct {
		repo, identity string
		counts         bool
	}{
		{imageRepo, imageRepo + ":v1", true},
		{imageRepo, imageRepo, true},
		{imageRepo, imageRepo + "@" + testDigest, true},
		{imageRepo, imageRepo + ":v1@" + testDigest, true},
		{imageRepo, "registry.access.redhat.com/ns/img:v1", true},
		{imageRepo, "REGISTRY.REDHAT.IO/ns/img:v1", true},
		{"registry.access.redhat.com/ns/img", imageRepo + ":v1", true},
		{"quay.io/ns/img", "quay.io/ns/img:1", true},
		{"busybox", "docker.io/library/busybox:1", true},
		{imageRepo, imageRepo + "@" + otherDigest, false},
		{imageRepo, "registry-proxy.engineering.redhat.com/ns/img:v1", false},
		{imageRepo, "quay.io/ns/img:v1", false},
		{imageRepo, "registry.redhat.io/ns/img2:v1", false},
		{imageRepo, "registry.redhat.io/ns/img/sub:v1", false},
		{imageRepo, "registry.redhat.io/other/ns/img:v1", false},
		{imageRepo, "ns/img:v1", false}, // docker.io/ns/img
		{imageRepo, "Not A Reference", false},
		{"quay.io/ns/img", "registry.redhat.io/ns/img:v1", false},
		{"quay.io/ns/img", "quay.io:443/ns/img:1", false},
	}
	for _, tt := range tests {
		t.Run(tt.repo+" "+tt.identity, func(t *testing.T) {
			sig := key.SignRelease(t, testDigest, tt.identity)
			v := verifyImage(t, [][]byte{sig}, kr, tt.repo, testDigest)
			if !tt.counts {
				wantInvalid(t, v, 1)
				wantErr[*signature.IdentityError](t, v.Rejected[0].Err)
				return
			}
			if v.Status != signature.ImageSigned || len(v.Signed) != 1 || v.Signed[0].Identity != tt.identity {
				t.Fatalf("verdict %s, signed %+v, rejected %+v; want signed as %s", v.Status, v.Signed, v.Rejected, tt.identity)
			}
		})
	}
}

// TestVerifyImageVerdicts: no signature is unsigned; one good signature
// among bad ones is signed, the bad ones listed; garbage alone is invalid
// with its reason.
func TestVerifyImageVerdicts(t *testing.T) {
	key := testbed.NewKey(t, "images")
	kr := parseKeyring(t, "images", key.PublicBinary(t))
	good := key.SignRelease(t, testDigest, imageRepo+":v1")
	garbage := []byte("<html>not a signature</html>")

	v := verifyImage(t, nil, kr, imageRepo, testDigest)
	if v.Status != signature.ImageUnsigned || len(v.Signed)+len(v.Rejected) != 0 || v.Err() != nil {
		t.Errorf("no signatures: %+v, want unsigned", v)
	}

	v = verifyImage(t, [][]byte{garbage, good}, kr, imageRepo, testDigest)
	if v.Status != signature.ImageSigned || len(v.Signed) != 1 || v.Signed[0].N != 2 || len(v.Rejected) != 1 || v.Err() != nil {
		t.Fatalf("garbage then good: %+v, want signed by signature-2", v)
	}
	wantErr[*signature.MalformedError](t, v.Rejected[0].Err)

	v = verifyImage(t, [][]byte{garbage}, kr, imageRepo, testDigest)
	wantInvalid(t, v, 1)
	err := v.Err()
	wantErr[*signature.MalformedError](t, err)
	wantContains(t, err.Error(), "signature-1: not a signed message", imageRepo, testDigest)

	for _, repo := range []string{imageRepo + ":v1", imageRepo + "@" + testDigest, "Bad/Name", ""} {
		if _, err := signature.VerifyImage([][]byte{good}, kr, repo, testDigest); err == nil {
			t.Errorf("VerifyImage accepted repository %q", repo)
		}
	}
	if _, err := signature.VerifyImage([][]byte{good}, kr, imageRepo, "sha256:123"); err == nil {
		t.Error("VerifyImage accepted a malformed digest")
	}
}

func TestLookasideStores(t *testing.T) {
	s := signature.DefaultLookasideStores()
	for repo, want := range map[string]string{
		nooRedHatRepo:                     "https://registry.redhat.io/containers/sigstore",
		nooRedHatRepo + ":0.0.1":          "https://registry.redhat.io/containers/sigstore",
		"registry.access.redhat.com/ubi9": "https://access.redhat.com/webassets/docker/content/sigstore",
	} {
		if got, ok := s.For(repo); !ok || got != want {
			t.Errorf("For(%s) = %q, %v; want %q", repo, got, ok, want)
		}
	}
	for _, repo := range []string{"quay.io/openshift/origin-cli", "busybox", "registry.redhat.io.evil.example/ns/img", "Not A Reference"} {
		if got, ok := s.For(repo); ok {
			t.Errorf("For(%s) = %q, want no store", repo, got)
		}
	}
	if _, ok := signature.LookasideStores(nil).For(nooRedHatRepo); ok {
		t.Error("a nil LookasideStores has a store")
	}

	p, err := signature.LookasidePath(nooRedHatRepo, nooDigest, 3)
	if want := nooRepoPath + "@sha256=" + digest.Digest(nooDigest).Encoded() + "/signature-3"; err != nil || p != want {
		t.Errorf("LookasidePath = %q, %v; want %q", p, err, want)
	}
	if p, err := signature.LookasidePath("busybox", nooDigest, 1); err != nil || p != "library/busybox@sha256="+digest.Digest(nooDigest).Encoded()+"/signature-1" {
		t.Errorf("LookasidePath(busybox) = %q, %v", p, err)
	}
}

// lookasidePath is where signature n of image testDigest of imageRepo is
// served by a sigStore.
func lookasidePath(t *testing.T, n int) string {
	p, err := signature.LookasidePath(imageRepo, testDigest, n)
	if err != nil {
		t.Fatalf("LookasidePath: %v", err)
	}
	return "/pub/signatures/" + p
}

func (s *sigStore) onPath(path string, answers ...answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[path] = answers
}

func (s *sigStore) requestsAt(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[path]
}

// TestFetchImageFromLookaside: a lookaside store serving two signatures
// made with the test bed's key at <repo>@sha256=<hex>/signature-1..2, then
// 404; they verify, and not under Red Hat's key.
func TestFetchImageFromLookaside(t *testing.T) {
	key := testbed.NewKey(t, "images")
	kr := parseKeyring(t, "images", key.PublicBinary(t))
	want := [][]byte{key.SignRelease(t, testDigest, imageRepo+":v1"), key.SignRelease(t, testDigest, "registry.access.redhat.com/ns/img:v1")}
	s := newSigStore(t)
	for i, sig := range want {
		s.onPath(lookasidePath(t, i+1), answer{status: http.StatusOK, body: sig})
	}

	res, err := fetcher().FetchImage(context.Background(), s.base(), imageRepo, testDigest)
	if err != nil {
		t.Fatalf("FetchImage: %v", err)
	}
	if res.Store != s.base() || len(res.Signatures) != 2 {
		t.Fatalf("FetchImage = store %s, %d signatures; want %s, 2", res.Store, len(res.Signatures), s.base())
	}
	for i, f := range res.Signatures {
		if wantURL := s.srv.URL + lookasidePath(t, i+1); f.N != i+1 || f.URL != wantURL || !bytes.Equal(f.Data, want[i]) {
			t.Errorf("signature %d = N %d from %s, want N %d from %s", i, f.N, f.URL, i+1, wantURL)
		}
	}
	if len(res.Tried) != 3 || res.Tried[2].Answer != "not found" || s.requestsAt(lookasidePath(t, 3)) != 1 || s.requestsAt(lookasidePath(t, 4)) != 0 {
		t.Errorf("Tried = %+v; want signature-1..2, then signature-3 not found and nothing after", res.Tried)
	}

	v := verifyImage(t, datas(res.Signatures), kr, imageRepo, testDigest)
	if v.Status != signature.ImageSigned || len(v.Signed) != 2 {
		t.Errorf("verdict %s with %d signed, want signed by 2", v.Status, len(v.Signed))
	}
	v = verifyImage(t, datas(res.Signatures), redHatKeyring(t), imageRepo, testDigest)
	wantInvalid(t, v, 2)
	wantErr[*signature.UnknownKeyError](t, v.Err())

	// The same tree as a file:// store reads the same.
	dir := t.TempDir()
	for i, sig := range want {
		p, _ := signature.LookasidePath(imageRepo, testDigest, i+1)
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), sig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err = fetcher().FetchImage(context.Background(), "file://"+filepath.ToSlash(dir), imageRepo, testDigest)
	if err != nil || len(res.Signatures) != 2 || !bytes.Equal(res.Signatures[1].Data, want[1]) {
		t.Fatalf("FetchImage from file:// = %+v, %v; want the 2 signatures", res, err)
	}
}

func datas(fs []signature.Fetched) [][]byte {
	out := make([][]byte, len(fs))
	for i, f := range fs {
		out[i] = f.Data
	}
	return out
}

// TestFetchImageUnsigned: a store without the image answers 404 to
// signature-1: no signature, no error, one request.
func TestFetchImageUnsigned(t *testing.T) {
	s := newSigStore(t)
	res, err := fetcher().FetchImage(context.Background(), s.base(), imageRepo, testDigest)
	if err != nil || len(res.Signatures) != 0 || len(res.Tried) != 1 || res.Tried[0].Answer != "not found" {
		t.Fatalf("FetchImage = %+v, %v; want no signature after one not-found", res, err)
	}
	if v := verifyImage(t, datas(res.Signatures), nil, imageRepo, testDigest); v.Status != signature.ImageUnsigned {
		t.Errorf("verdict %s, want unsigned", v.Status)
	}
}

// TestFetchImageBounded: a store that never answers 404 costs at most
// MaxImageSignatures requests, and MaxSignaturesPerImage by default.
func TestFetchImageBounded(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write([]byte("signature"))
	}))
	t.Cleanup(srv.Close)

	for _, tt := range []struct{ max, want int }{{5, 5}, {0, signature.MaxSignaturesPerImage}, {1000, signature.MaxSignaturesPerImage}} {
		requests.Store(0)
		f := fetcher()
		f.MaxImageSignatures = tt.max
		res, err := f.FetchImage(context.Background(), srv.URL, imageRepo, testDigest)
		if err != nil {
			t.Fatalf("FetchImage: %v", err)
		}
		if len(res.Signatures) != tt.want || requests.Load() != int64(tt.want) {
			t.Errorf("MaxImageSignatures %d: %d signatures in %d requests, want %d", tt.max, len(res.Signatures), requests.Load(), tt.want)
		}
	}
}

// TestFetchImageRetries: a 500 is retried by the Fetcher's policy; a store
// that keeps failing gives an error naming the image and the URL, not an
// unsigned image nor a partial set.
func TestFetchImageRetries(t *testing.T) {
	s := newSigStore(t)
	sig1, sig2 := lookasidePath(t, 1), lookasidePath(t, 2)
	s.onPath(sig1, answer{status: http.StatusInternalServerError}, answer{status: http.StatusOK, body: sigBody(1)})
	res, err := fetcher().FetchImage(context.Background(), s.base(), imageRepo, testDigest)
	if err != nil || len(res.Signatures) != 1 || s.requestsAt(sig1) != 2 {
		t.Fatalf("FetchImage = %+v, %v after %d requests; want signature-1 on the second", res, err, s.requestsAt(sig1))
	}
	wantContains(t, res.Tried[0].Answer, "after 2 tries")

	s.onPath(sig2, answer{status: http.StatusInternalServerError})
	before := s.requestsAt(sig2) // the not-found of the first fetch
	res, err = fetcher().FetchImage(context.Background(), s.base(), imageRepo, testDigest)
	if res != nil || err == nil {
		t.Fatalf("FetchImage = %+v, %v; want an error", res, err)
	}
	if st := wantErr[*signature.StatusError](t, err); st.Code != http.StatusInternalServerError {
		t.Errorf("StatusError code %d, want 500", st.Code)
	}
	wantErr[*signature.FetchError](t, err)
	wantContains(t, err.Error(), imageRepo, testDigest, s.srv.URL+sig2, "500")
	if n := s.requestsAt(sig2) - before; n != fastRetry.Attempts {
		t.Errorf("signature-2 asked %d times, want %d", n, fastRetry.Attempts)
	}
}

func TestFetchImageRefusesBadArguments(t *testing.T) {
	s := newSigStore(t)
	for name, call := range map[string]func() error{
		"tag": func() error {
			_, err := fetcher().FetchImage(context.Background(), s.base(), imageRepo+":v1", testDigest)
			return err
		},
		"digest": func() error {
			_, err := fetcher().FetchImage(context.Background(), s.base(), imageRepo, "sha256:12")
			return err
		},
		"base": func() error {
			_, err := fetcher().FetchImage(context.Background(), "ftp://x", imageRepo, testDigest)
			return err
		},
		"bad name": func() error {
			_, err := fetcher().FetchImage(context.Background(), s.base(), "Bad/Name", testDigest)
			return err
		},
		"canceled": func() error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := fetcher().FetchImage(ctx, s.base(), imageRepo, testDigest)
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("canceled: error %v, want context.Canceled", err)
			}
			return err
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: FetchImage did not fail", name)
		}
	}
	if n := s.requestsAt(lookasidePath(t, 1)); n != 0 {
		t.Errorf("%d requests for refused arguments, want 0", n)
	}
}
