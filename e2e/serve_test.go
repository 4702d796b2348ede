//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/serve"
)

// This file runs `ferry serve` as an admin would on the bastion: the built
// binary in a process of its own, stopped by SIGTERM. ferry apply pushes
// into it over its self-signed TLS with htpasswd credentials, skopeo reads
// back what was pushed, and `ferry serve gc` frees what a deleted manifest
// alone used.

// serveProc is a running `ferry serve`.
type serveProc struct {
	status serve.Status
	cmd    *exec.Cmd
	stderr bytes.Buffer // read only after the process ended
	done   bool
}

// startServe starts `ferry serve` on 127.0.0.1 with a free port and returns
// once it listens, with the status line it printed. The process is
// killed at the test's end if the test did not stop it.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{}
	p.cmd = exec.Command(ferryBin, append([]string{"serve", "--listen", "127.0.0.1:0", "--json"}, args...)...)
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start ferry serve: %v", err)
	}
	t.Cleanup(func() {
		if !p.done {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		_ = p.cmd.Wait()
		p.done = true
		t.Fatalf("ferry serve %s printed no status line (%v):\n%s", strings.Join(args, " "), err, p.stderr.String())
	}
	if err := json.Unmarshal(line, &p.status); err != nil {
		t.Fatalf("ferry serve status line %q: %v", line, err)
	}
	return p
}

// stop sends SIGTERM and waits: the server must drain and exit 0.
func (p *serveProc) stop(t *testing.T) string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	p.done = true
	if err != nil {
		t.Fatalf("ferry serve stopped by SIGTERM: %v\n%s", err, p.stderr.String())
	}
	return p.stderr.String()
}

// httpClient trusts the server's CA, if it has one.
func (p *serveProc) httpClient(t *testing.T) *http.Client {
	t.Helper()
	if p.status.CA == "" {
		return &http.Client{}
	}
	ca, err := os.ReadFile(p.status.CA)
	pool := x509.NewCertPool()
	if err != nil || !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("CA %s: %v", p.status.CA, err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// client reads the registry the way the test bed's registries are read,
// over TLS with the server's CA when it has one (no credentials).
func (p *serveProc) client(t *testing.T) *testbed.Client {
	t.Helper()
	return &testbed.Client{Host: p.status.Address, HTTP: p.httpClient(t), HTTPS: p.status.TLS}
}

// status answers method on path (no body) with basic credentials.
func (p *serveProc) answer(t *testing.T, method, path, user, password string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "https://"+p.status.Address+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := p.httpClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// htpasswdFile holds user's bcrypt hash, as `htpasswd -B` writes it.
func htpasswdFile(t *testing.T, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, fmt.Appendf(nil, "%s:%s\n", user, hash), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// authFile is a containers auth.json with user's credentials for host.
func authFile(t *testing.T, host, user, password string) string {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	file := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(file, fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, host, auth), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func readFiles(t *testing.T, names ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// TestServe: ferry apply pushes a release into `ferry serve` over its
// self-signed TLS with htpasswd credentials; skopeo reads it back
// byte-identical through the printed CA directory; a wrong password is
// refused (401); gc refuses to run beside the read-write server; after a
// SIGTERM (exit 0) a read-only restart on the same root serves the same
// content with the same CA and certificate, refuses pushes, and lets gc
// run beside it, which finds nothing to free in what apply pushed (a
// mirror holds components by digest only: they must survive).
func TestServe(t *testing.T) {
	b := newFaultBed(t, testbed.ReleaseOptions{Components: 3, LayerSize: 16 << 10})
	bundlePath := b.pack(t)
	root := t.TempDir()
	const user, password = "mirror", "correct horse"
	flags := []string{"--root", root, "--tls-self-signed", "--htpasswd", htpasswdFile(t, user, password)}
	srv := startServe(t, flags...)
	if !srv.status.TLS || srv.status.CA != filepath.Join(root, "tls", "ca.crt") || srv.status.CertDir != filepath.Join(root, "tls") {
		t.Fatalf("status line %+v: want TLS with the CA in %s/tls", srv.status, root)
	}
	host := srv.status.Address
	certDir := srv.status.CertDir

	mustFerry(t, "apply", bundlePath, "--to", host+"/"+targetRepo, "--cert-dir", certDir, "--authfile", authFile(t, host, user, password),
		"--keyring", b.keyFile, "--no-cluster", "--output-dir", filepath.Join(t.TempDir(), "manifests"), "--quiet")

	releaseTag := host + "/" + targetRepo + ":" + b.rel.Version + "-" + b.rel.Arch
	raw := testbed.Skopeo(t, "inspect", "--raw", "--cert-dir", certDir, "--creds", user+":"+password, "docker://"+releaseTag)
	if !bytes.Equal(raw, b.rel.Manifest) {
		t.Errorf("skopeo reads %s as %s, want the release manifest %s", releaseTag, digest.FromBytes(raw), b.rel.Digest)
	}
	component := b.rel.Components[0]
	copied := filepath.Join(t.TempDir(), "component")
	testbed.Skopeo(t, "copy", "--src-cert-dir", certDir, "--src-creds", user+":"+password,
		"docker://"+host+"/"+targetRepo+"@"+component.Digest.String(), "dir:"+copied)
	if m, err := os.ReadFile(filepath.Join(copied, "manifest.json")); err != nil || digest.FromBytes(m) != component.Digest {
		t.Errorf("skopeo copied component %s as %s (%v)", component.Digest, digest.FromBytes(m), err)
	}
	for _, cred := range [][2]string{{user, "wrong"}, {"intruder", password}} {
		if got := srv.answer(t, http.MethodGet, "/v2/", cred[0], cred[1]); got != http.StatusUnauthorized {
			t.Errorf("user %q password %q: %d, want 401", cred[0], cred[1], got)
		}
	}
	if _, stderr, err := testbed.RunSkopeo(t, "inspect", "--raw", "--cert-dir", certDir, "--creds", user+":wrong", "docker://"+releaseTag); err == nil {
		t.Error("skopeo with a wrong password read the release")
	} else if !strings.Contains(strings.ToLower(string(stderr)), "unauthorized") {
		t.Errorf("skopeo with a wrong password: %s", stderr)
	}
	wantExit(t, "gc beside a read-write serve", ferryRun(t, "serve", "gc", "--root", root), codeFailure,
		"registry root in use", "ferry serve (pid "+strconv.Itoa(srv.cmd.Process.Pid)+")")

	tlsFiles := []string{srv.status.CA, filepath.Join(root, "tls", "private", "ca.key"),
		filepath.Join(root, "tls", "private", "server.crt"), filepath.Join(root, "tls", "private", "server.key")}
	before := readFiles(t, tlsFiles...)
	if log := srv.stop(t); !strings.Contains(log, "stopping") {
		t.Errorf("ferry serve did not log its stop:\n%s", log)
	}

	ro := startServe(t, append(flags, "--read-only")...)
	if !ro.status.ReadOnly {
		t.Errorf("read-only status line %+v", ro.status)
	}
	for i, data := range readFiles(t, tlsFiles...) {
		if !bytes.Equal(data, before[i]) {
			t.Errorf("the restart changed %s", tlsFiles[i])
		}
	}
	host = ro.status.Address
	releaseTag = host + "/" + targetRepo + ":" + b.rel.Version + "-" + b.rel.Arch
	if raw := testbed.Skopeo(t, "inspect", "--raw", "--cert-dir", certDir, "--creds", user+":"+password, "docker://"+releaseTag); !bytes.Equal(raw, b.rel.Manifest) {
		t.Errorf("after the restart skopeo reads %s as %s", releaseTag, digest.FromBytes(raw))
	}
	if _, stderr, err := testbed.RunSkopeo(t, "copy", "--dest-cert-dir", certDir, "--dest-creds", user+":"+password,
		"dir:"+copied, "docker://"+host+"/other/image:pushed"); err == nil {
		t.Error("a read-only serve accepted a push")
	} else if !strings.Contains(string(stderr), "405") && !strings.Contains(strings.ToLower(string(stderr)), "not allowed") {
		t.Errorf("the refused push does not say why: %s", stderr)
	}
	if got := ro.answer(t, http.MethodPost, "/v2/other/image/blobs/uploads/", user, password); got != http.StatusMethodNotAllowed {
		t.Errorf("read-only: starting an upload answered %d, want 405", got)
	}
	var dry serve.GCResult
	if err := json.Unmarshal([]byte(mustFerry(t, "serve", "gc", "--root", root, "--dry-run", "--json")), &dry); err != nil {
		t.Fatal(err)
	}
	if !dry.DryRun || len(dry.Blobs) != 0 || dry.Bytes != 0 {
		t.Errorf("gc beside a read-only serve would free %d blobs (%d bytes) of what apply pushed, want none: %v", len(dry.Blobs), dry.Bytes, dry.Blobs)
	}
	ro.stop(t)
}

// TestServeGC: two images share a layer; one is deleted through the API.
// `ferry serve gc --dry-run` counts exactly the deleted image's own blobs
// (manifest, config, unique layer) and their bytes and removes nothing;
// `ferry serve gc` removes exactly those; the other image still reads back
// whole, shared layer included.
func TestServeGC(t *testing.T) {
	root := t.TempDir()
	srv := startServe(t, "--root", root)
	if srv.status.TLS {
		t.Fatalf("status line %+v: want plain HTTP", srv.status)
	}
	c := testbed.NewClient(srv.status.Address)
	ctx := context.Background()
	push := func(repo, tag string, blobs ...[]byte) map[digest.Digest]int64 {
		t.Helper()
		own := map[digest.Digest]int64{}
		var descs []ocispec.Descriptor
		for _, data := range blobs {
			d, err := c.PushBlob(ctx, repo, data)
			if err != nil {
				t.Fatal(err)
			}
			own[d] = int64(len(data))
			descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(data))})
		}
		descs[0].MediaType = ocispec.MediaTypeImageConfig
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: descs[0], Layers: descs[1:]}
		m.SchemaVersion = 2
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.PushManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, data)
		if err != nil {
			t.Fatal(err)
		}
		own[d] = int64(len(data))
		return own
	}
	shared := bytes.Repeat([]byte("shared base layer "), 4096)
	old := push("apps/web", "v1", []byte(`{"v":1}`), shared, bytes.Repeat([]byte("v1 only "), 2048))
	kept := push("apps/web", "v2", []byte(`{"v":2}`), shared, bytes.Repeat([]byte("v2 only "), 3072))
	var want []digest.Digest
	var wantBytes int64
	for d, size := range old {
		if _, ok := kept[d]; !ok {
			want = append(want, d)
			wantBytes += size
		}
	}
	slices.Sort(want)
	desc, err := c.HeadManifest(ctx, "apps/web", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteManifest(ctx, "apps/web", desc.Digest); err != nil {
		t.Fatal(err)
	}
	if log := srv.stop(t); !strings.Contains(log, "insecure") {
		t.Errorf("a plain-HTTP serve does not warn that clients must treat it as insecure:\n%s", log)
	}

	gc := func(args ...string) serve.GCResult {
		t.Helper()
		var res serve.GCResult
		out := mustFerry(t, append([]string{"serve", "gc", "--root", root, "--json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("gc output %q: %v", out, err)
		}
		return res
	}
	onDisk := func(d digest.Digest) bool {
		_, err := os.Stat(filepath.Join(root, "docker", "registry", "v2", "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data"))
		return err == nil
	}
	dry := gc("--dry-run")
	if len(want) != 3 || !slices.Equal(dry.Blobs, want) || dry.Bytes != wantBytes {
		t.Errorf("dry run: %d blobs (%d bytes) %v; want the deleted image's own 3, %d bytes: %v", len(dry.Blobs), dry.Bytes, dry.Blobs, wantBytes, want)
	}
	for _, d := range want {
		if !onDisk(d) {
			t.Errorf("the dry run removed %s", d)
		}
	}
	res := gc()
	if res.DryRun || !slices.Equal(res.Blobs, want) || res.Bytes != wantBytes {
		t.Errorf("gc freed %d blobs (%d bytes) %v; want %d bytes: %v", len(res.Blobs), res.Bytes, res.Blobs, wantBytes, want)
	}
	for _, d := range want {
		if onDisk(d) {
			t.Errorf("gc left %s of the deleted image", d)
		}
	}
	if out := mustFerry(t, "serve", "gc", "--root", root); !strings.Contains(out, "freed 0 blobs") {
		t.Errorf("a second gc: %s", out)
	}

	ro := startServe(t, "--root", root, "--read-only")
	c = testbed.NewClient(ro.status.Address)
	if _, _, err := c.GetManifest(ctx, "apps/web", "v2"); err != nil {
		t.Errorf("the kept image after gc: %v", err)
	}
	for d := range kept {
		if _, _, err := c.GetManifest(ctx, "apps/web", d.String()); err == nil {
			continue // the manifest itself
		}
		if data, err := c.GetBlob(ctx, "apps/web", d); err != nil || digest.FromBytes(data) != d {
			t.Errorf("blob %s of the kept image after gc: %v", d, err)
		}
	}
	ro.stop(t)
}

// TestServeUsageErrors: flag mistakes exit 2 naming the flag, before
// anything is made.
func TestServeUsageErrors(t *testing.T) {
	root := filepath.Join(t.TempDir(), "registry")
	missing := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"serve"}, []string{"--root"}},
		{[]string{"serve", "--root", root, "--htpasswd", missing}, []string{"--htpasswd needs TLS"}},
		{[]string{"serve", "--root", root, "--tls-self-signed", "--htpasswd", missing}, []string{missing}},
		{[]string{"serve", "--root", root, "--tls-cert", missing}, []string{"--tls-cert and --tls-key"}},
		{[]string{"serve", "--root", root, "--tls-self-signed", "--tls-cert", missing, "--tls-key", missing}, []string{"--tls-self-signed excludes"}},
		{[]string{"serve", "--root", root, "--tls-name", "registry.example"}, []string{"--tls-name needs --tls-self-signed"}},
		{[]string{"serve", "--root", root, "--listen", "5000"}, []string{"listen address"}},
		{[]string{"serve", "gc"}, []string{"--root"}},
		{[]string{"serve", "gc", "--root", missing}, []string{missing}},
	} {
		wantExit(t, strings.Join(tc.args, " "), ferryRun(t, tc.args...), codeUsage, tc.wants...)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("a refused serve made its root (%v)", err)
	}
}
