package signature_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/mirror/signature"
)

// Real Red Hat data (see ../shared/fixtures/README.md).
const (
	releaseKeyFile = "verifier-public-key-redhat-release"
	betaKeyFile    = "verifier-public-key-redhat-beta-2"

	releaseKeyID          = "199E2F91FD431D51"
	releaseKeyFingerprint = "567E347AD0044ADE55BA8A5F199E2F91FD431D51"
	betaKeyFingerprint    = "B08B659EE86AF623BC90E8DB938A80CAF21541EB"

	ocpDigest   = "sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363"
	rhel7Digest = "sha256:e3f12513a4b22a2d7c0e7c9207f52128113758d9d68c7d06b11a0ac7672966f7"
	nooDigest   = "sha256:50b9402635dd4b312a86bed05dcdbda8c00120d3789ec2e9b527045100b3bdb4"
	// otherDigest is well formed and signed by nothing.
	otherDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

// fixtureDir is shared/fixtures/redhat beside the checkout, found from this
// file's location so that it does not depend on the working directory.
func fixtureDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file to find the fixtures")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "fixtures", "redhat")
	if _, err := os.Stat(filepath.Join(dir, releaseKeyFile)); err != nil {
		t.Fatalf("Red Hat fixtures missing: %v\nthe conformance tests need ../shared/fixtures/redhat beside the checkout (see shared/fixtures/README.md)", err)
	}
	return dir
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir(t), name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return data
}

func loadFixtureKeyring(t testing.TB, names ...string) *signature.Keyring {
	t.Helper()
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(fixtureDir(t), n)
	}
	kr, err := signature.LoadKeyring(paths...)
	if err != nil {
		t.Fatalf("load keyring: %v", err)
	}
	return kr
}

func parseKeyring(t testing.TB, name string, data []byte) *signature.Keyring {
	t.Helper()
	kr, err := signature.ParseKeyring(name, data)
	if err != nil {
		t.Fatalf("parse keyring: %v", err)
	}
	return kr
}

// wantErr fails unless err is a *T, and returns it.
func wantErr[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error = %v (%T), want a %T", err, err, target)
	}
	return target
}

func wantContains(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%q does not contain %q", s, sub)
		}
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}
