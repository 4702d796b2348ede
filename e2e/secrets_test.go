package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// This file checks the security basics: no credential ever lands in a
// bundle, an inventory, a rendered manifest or a log; TLS is verified unless
// the user says otherwise, for registries, signature stores and clusters;
// outputs are created 0644 (directories 0755); and a bundle is never
// overwritten without --force.

func randomSecret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// fakeAPIServer is a Kubernetes API server over HTTPS that refuses
// everything (403) and records the bearer tokens it was sent.
type fakeAPIServer struct {
	URL string
	// CertPEM is its certificate, its own CA.
	CertPEM []byte
	mu      sync.Mutex
	tokens  map[string]bool
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{tokens: map[string]bool{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			f.mu.Lock()
			f.tokens[tok] = true
			f.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden: %s %s","reason":"Forbidden","code":403}`, r.Method, r.URL.Path)
	})
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	f.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return f
}

func (f *fakeAPIServer) sawToken(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[tok]
}

// writeKubeconfig writes a kubeconfig for server with a bearer token and,
// unless nil, the server's CA.
func writeKubeconfig(t *testing.T, server, token string, caPEM []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	ca := ""
	if caPEM != nil {
		ca = "\n    certificate-authority-data: " + base64.StdEncoding.EncodeToString(caPEM)
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s%s
users:
- name: u
  user:
    token: %s
contexts:
- name: c
  context:
    cluster: c
    user: u
current-context: c
`, server, ca, token)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeAuthFiles writes one auth.json with credentials for several hosts.
func writeAuthFiles(t *testing.T, creds map[string][2]string) string {
	t.Helper()
	auths := map[string]map[string]string{}
	for host, c := range creds {
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(c[0] + ":" + c[1]))}
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecretsNotInOutputs plants unique secrets (registry passwords in an
// auth.json, the bearer tokens the registries issue, a kubeconfig token) and
// runs every command that touches them, at debug level, then searches every
// file ferry wrote and everything it printed.
func TestSecretsNotInOutputs(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	srcUser, srcPass := "ferry-pull", randomSecret(t, "pullpass-")
	b.proxy.SetAuth(&testbed.TokenAuth{Username: srcUser, Password: srcPass, Uses: 10})
	target := testbed.NewMemoryRegistry(t)
	tp := testbed.NewFaultProxy(t, target.URL)
	dstUser, dstPass := "ferry-push", randomSecret(t, "pushpass-")
	tp.SetAuth(&testbed.TokenAuth{Username: dstUser, Password: dstPass, Uses: 30})
	authFile := writeAuthFiles(t, map[string][2]string{b.proxy.Host: {srcUser, srcPass}, tp.Host: {dstUser, dstPass}})
	kubeToken := randomSecret(t, "kubetoken-")
	api := newFakeAPIServer(t)
	kubeconfig := writeKubeconfig(t, api.URL, kubeToken, api.CertPEM)
	wrongPass := randomSecret(t, "wrongpass-")
	wrongAuth := writeAuthFiles(t, map[string][2]string{b.proxy.Host: {srcUser, wrongPass}})

	work := t.TempDir() // every output of every command goes below it
	sub := func(name string) string { return filepath.Join(work, name) }
	bundlePath := filepath.Join(sub("bundle"), "bundle.tar")
	// pack checks its output directory before the network: the runs that
	// fail on credentials need one that exists.
	for _, d := range []string{filepath.Dir(bundlePath), sub("bundle-wrong")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	debug := []string{"--log-level", "debug"}
	dest := tp.Host + "/" + targetRepo
	runs := []struct {
		args []string
		code int
	}{
		{append(debug, "pack", b.rel.PullSpec, "-o", bundlePath, "--src-tls-verify=false", "--authfile", authFile,
			"--keyring", b.keyFile, "--signature-store", b.storeURL, "--cache-dir", sub("cache"), "--volume-size", "256KiB"), codeOK},
		{append(debug, "pack", b.rel.PullSpec, "--dry-run", "--json", "--src-tls-verify=false", "--authfile", authFile,
			"--keyring", b.keyFile, "--signature-store", b.storeURL), codeOK},
		{append(debug, "signatures", b.rel.PullSpec, "-o", sub("signatures"), "--tls-verify=false", "--authfile", authFile,
			"--keyring", b.keyFile, "--signature-store", b.storeURL), codeOK},
		{append(debug, "verify", bundlePath, "--keyring", b.keyFile), codeOK},
		{append(debug, "inspect", bundlePath), codeOK},
		{append(debug, "inspect", bundlePath, "--json"), codeOK},
		{append(debug, "apply", bundlePath, "--to", dest, "--dest-tls-verify=false", "--authfile", authFile,
			"--keyring", b.keyFile, "--no-cluster", "--output-dir", sub("manifests")), codeOK},
		{append(debug, "inventory", "--to", dest, "--dest-tls-verify=false", "--authfile", authFile, "-o", sub("inventory.json")), codeOK},
		{append(debug, "inventory", "--from-bundle", bundlePath, "-o", sub("inventory-bundle.json")), codeOK},
		// The cluster refuses: ferry says so, and still prints no token.
		{append(debug, "apply", bundlePath, "--to", dest, "--dest-tls-verify=false", "--authfile", authFile,
			"--keyring", b.keyFile, "--kubeconfig", kubeconfig, "--output-dir", sub("manifests-cluster")), codeFailure},
		// Wrong credentials: refused, and the wrong password is not echoed.
		{append(debug, "pack", b.rel.PullSpec, "-o", filepath.Join(sub("bundle-wrong"), "b.tar"), "--src-tls-verify=false",
			"--authfile", wrongAuth, "--keyring", b.keyFile, "--signature-store", b.storeURL), codeFailure},
	}
	var printed strings.Builder
	for _, r := range runs {
		res := ferryIn(t, work, r.args...)
		if res.code != r.code {
			t.Errorf("ferry %s: exit %d, want %d\n%s", strings.Join(r.args, " "), res.code, r.code, lastLines(res.stderr, 10))
		}
		fmt.Fprintf(&printed, "$ ferry %s\n%s\n%s\n", strings.Join(r.args, " "), res.stdout, res.stderr)
	}

	// The secrets were really used: else finding none proves nothing.
	if s := b.proxy.Stats(); s.TokensIssued == 0 || s.Expired == 0 {
		t.Errorf("the source registry issued %d tokens, %d expired: the test tests little", s.TokensIssued, s.Expired)
	}
	if s := tp.Stats(); s.TokensIssued == 0 {
		t.Error("the target registry issued no token")
	}
	if !api.sawToken(kubeToken) {
		t.Error("the API server never received the kubeconfig's token")
	}
	if !strings.Contains(printed.String(), "DEBUG") && !strings.Contains(printed.String(), "level=debug") {
		t.Error("no debug output at --log-level debug: the logs searched are not the verbose ones")
	}

	secrets := map[string]string{
		"source password": srcPass, "target password": dstPass, "kubeconfig token": kubeToken, "wrong password": wrongPass,
		"source auth":       base64.StdEncoding.EncodeToString([]byte(srcUser + ":" + srcPass)),
		"target auth":       base64.StdEncoding.EncodeToString([]byte(dstUser + ":" + dstPass)),
		"wrong auth":        base64.StdEncoding.EncodeToString([]byte(srcUser + ":" + wrongPass)),
		"kube token base64": base64.StdEncoding.EncodeToString([]byte(kubeToken)),
	}
	for i, tok := range append(b.proxy.IssuedTokens(), tp.IssuedTokens()...) {
		secrets[fmt.Sprintf("bearer token %d", i+1)] = tok
	}
	outputs := map[string]string{"stdout and stderr": printed.String()}
	files := 0
	err := filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		outputs[path] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("only %d output files to search", files)
	}
	for where, text := range outputs {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("the %s is in %s", what, where)
			}
		}
	}
}

// TestSecretsTLSVerifiedByDefault: a registry, a signature store or a cluster whose
// certificate nothing vouches for is refused unless the user passes its CA
// (or turns verification off), and nothing is written or pushed.
func TestSecretsTLSVerifiedByDefault(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 2})
	secure := testbed.NewTLSFaultProxy(t, b.reg.URL)
	certDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), secure.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pullSpec := secure.Host + "/" + testbed.ReleaseRepository + ":" + b.rel.Tag
	tlsWants := []string{"certificate", "--cert-dir"}

	t.Run("signatures", func(t *testing.T) {
		t.Parallel()
		args := []string{"signatures", pullSpec, "--keyring", b.keyFile, "--signature-store", b.storeURL, "-o", "mirror"}
		dir := t.TempDir()
		wantExit(t, "signatures", ferryIn(t, dir, args...), codeFailure, tlsWants...)
		if _, err := os.Stat(filepath.Join(dir, "mirror")); err == nil {
			t.Error("signatures wrote output after a TLS failure")
		}
		res := ferryIn(t, dir, append(args, "--cert-dir", certDir)...)
		wantExit(t, "signatures --cert-dir", res, codeOK, b.rel.Digest.String())
	})
	t.Run("pack", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		res := ferryIn(t, dir, "pack", pullSpec, "-o", "bundle.tar", "--keyring", b.keyFile, "--signature-store", b.storeURL)
		wantExit(t, "pack", res, codeFailure, tlsWants...)
		assertNoBundle(t, dir, "bundle.tar")
	})
	t.Run("apply", func(t *testing.T) {
		t.Parallel()
		bundlePath := b.pack(t)
		target := testbed.NewMemoryRegistry(t)
		tp := testbed.NewTLSFaultProxy(t, target.URL)
		ca := t.TempDir()
		if err := os.WriteFile(filepath.Join(ca, "ca.crt"), tp.CertPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"apply", bundlePath, "--to", tp.Host + "/" + targetRepo, "--keyring", b.keyFile, "--no-cluster",
			"--output-dir", filepath.Join(t.TempDir(), "out"), "--quiet"}
		wantExit(t, "apply", ferryRun(t, args...), codeFailure, tlsWants...)
		if n := tp.Stats().Requests; n != 0 {
			t.Errorf("%d requests got past TLS", n)
		}
		assertCatalogEmpty(t, target)
		wantExit(t, "inventory", ferryRun(t, "inventory", "--to", tp.Host+"/"+targetRepo, "-o", filepath.Join(t.TempDir(), "i.json")),
			codeFailure, "certificate")
		wantExit(t, "apply --cert-dir", ferryRun(t, append(args, "--cert-dir", ca)...), codeOK)
		assertTagsComplete(t, target, targetRepo)
	})
	t.Run("inventory says what to do", func(t *testing.T) {
		target := testbed.NewMemoryRegistry(t)
		tp := testbed.NewTLSFaultProxy(t, target.URL)
		wantExit(t, "inventory", ferryRun(t, "inventory", "--to", tp.Host+"/"+targetRepo, "-o", filepath.Join(t.TempDir(), "i.json")),
			codeFailure, tlsWants...)
	})
	t.Run("signature store", func(t *testing.T) {
		t.Parallel()
		store := testbed.NewTLSFaultProxy(t, strings.TrimSuffix(b.store.URL, testbed.SignatureStorePath))
		dir := t.TempDir()
		res := ferryIn(t, dir, "pack", b.rel.DigestSpec(), "-o", "bundle.tar", "--src-tls-verify=false", "--keyring", b.keyFile,
			"--signature-store", store.URL+testbed.SignatureStorePath)
		wantExit(t, "pack", res, codeFailure, "certificate")
		assertNoBundle(t, dir, "bundle.tar")
		if n := store.Stats().Requests; n != 0 {
			t.Errorf("%d requests got past TLS to the signature store", n)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPIServer(t)
		token := randomSecret(t, "kubetoken-")
		bundlePath := b.pack(t)
		target := testbed.NewMemoryRegistry(t)
		res := ferryRun(t, "apply", bundlePath, "--to", target.Host+"/"+targetRepo, "--dest-tls-verify=false", "--keyring", b.keyFile,
			"--kubeconfig", writeKubeconfig(t, api.URL, token, nil), "--output-dir", filepath.Join(t.TempDir(), "out"), "--quiet")
		wantExit(t, "apply to a cluster with an unknown CA", res, codeFailure, "certificate")
		if api.sawToken(token) {
			t.Error("the token was sent to a server whose certificate was not verified")
		}
	})
}

// umaskZero runs ferry with umask 0, so that the modes of what it creates
// are the ones it asks for.
func umaskZero(t *testing.T, dir string, args ...string) result {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh to set the umask")
	}
	var out, errOut strings.Builder
	cmd := exec.CommandContext(t.Context(), "/bin/sh", append([]string{"-c", `umask 0 && exec "$0" "$@"`, ferryBin}, args...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errOut
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// assertModes fails for any file under root not 0644 or directory not
// 0755 (root included when ferry made it).
func assertModes(t *testing.T, root string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o644)
		if d.IsDir() {
			want = 0o755 | fs.ModeDir
		}
		if info.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("%s: %d entries, nothing to check", root, n)
	}
}

// TestSecretsOutputModes: with umask 0, every file ferry writes is 0644 and every
// directory it makes is 0755.
func TestSecretsOutputModes(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 3})
	work := t.TempDir()
	out := func(p ...string) string { return filepath.Join(append([]string{work}, p...)...) }
	for _, d := range []string{"bundle", "bundle2"} {
		if err := os.MkdirAll(out(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wantExit(t, "pack", umaskZero(t, work, b.packArgs(out("bundle", "bundle.tar"), "--volume-size", "128KiB")...), codeOK)
	assertModes(t, out("bundle"))
	target := testbed.NewMemoryRegistry(t)
	wantExit(t, "apply", umaskZero(t, work, "apply", out("bundle", "bundle.tar"), "--to", target.Host+"/"+targetRepo, "--dest-tls-verify=false",
		"--keyring", b.keyFile, "--no-cluster", "--output-dir", out("manifests", "new", "dir"), "--quiet"), codeOK)
	assertModes(t, out("manifests"))
	wantExit(t, "signatures", umaskZero(t, work, "signatures", b.rel.DigestSpec(), "-o", out("signatures", "mirror"),
		"--keyring", b.keyFile, "--signature-store", b.storeURL), codeOK)
	assertModes(t, out("signatures"))
	if err := os.MkdirAll(out("inventory"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantExit(t, "inventory", umaskZero(t, work, "inventory", "--from-bundle", out("bundle", "bundle.tar"), "-o", out("inventory", "inventory.json")), codeOK)
	assertModes(t, out("inventory"))

	t.Run("cache", func(t *testing.T) {
		res := umaskZero(t, work, b.packArgs(out("bundle2", "bundle.tar"), "--cache-dir", out("cache"))...)
		wantExit(t, "pack --cache-dir", res, codeOK)
		assertModes(t, out("cache"))
	})
}

// TestSecretsNoOverwriteWithoutForce: pack never replaces a bundle, nor any of its
// volumes, unless told to with --force; with it, the old bundle's leftover
// volumes go too.
func TestSecretsNoOverwriteWithoutForce(t *testing.T) {
	t.Parallel()
	b := newFaultBed(t, smallRelease)
	dir := t.TempDir()
	split := b.packArgs("bundle.tar", "--volume-size", "128KiB")
	wantExit(t, "first pack", ferryIn(t, dir, split...), codeOK)
	before := map[string]string{}
	for _, name := range bundleFiles(t, dir, "bundle.tar") {
		before[name] = sha256File(t, filepath.Join(dir, name))
	}
	if len(before) < 3 {
		t.Fatalf("the bundle has %d volumes", len(before))
	}
	unchanged := func(when string) {
		t.Helper()
		after := bundleFiles(t, dir, "bundle.tar")
		if len(after) != len(before) {
			t.Errorf("%s: the directory holds %v", when, after)
		}
		for name, sum := range before {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil || sha256File(t, filepath.Join(dir, name)) != sum {
				t.Errorf("%s: %s was changed", when, name)
			}
		}
	}
	wantExit(t, "pack over a bundle", ferryIn(t, dir, b.packArgs("bundle.tar")...), codeUsage, "bundle.tar", "--force")
	unchanged("pack over a bundle")

	// A lone data volume of an earlier bundle is protected too.
	lone := t.TempDir()
	data, err := os.ReadFile(filepath.Join(dir, "bundle.001.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lone, "bundle.001.tar"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	wantExit(t, "pack beside a volume", ferryIn(t, lone, b.packArgs("bundle.tar")...), codeUsage, "bundle.001.tar", "--force")
	if sha256File(t, filepath.Join(lone, "bundle.001.tar")) != before["bundle.001.tar"] {
		t.Error("pack beside a volume changed it")
	}

	wantExit(t, "pack --force", ferryIn(t, dir, b.packArgs("bundle.tar", "--force")...), codeOK)
	if got := bundleFiles(t, dir, "bundle.tar"); len(got) != 1 || got[0] != "bundle.tar" {
		t.Errorf("after pack --force without volumes the directory holds %v, want bundle.tar alone", got)
	}
	wantExit(t, "verify", ferryIn(t, dir, "verify", "bundle.tar", "--keyring", b.keyFile, "--quiet"), codeOK)
}
