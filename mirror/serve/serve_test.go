package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) {
	// The library logs every request through logrus's standard logger;
	// the tests assert on answers, and their output stays readable.
	logrus.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// testServer is a Server serving in the test.
type testServer struct {
	Status
	client *http.Client
	scheme string
	stop   func() error
}

// startServer listens with opts on 127.0.0.1:0 and serves until stop (or
// the test's end); stop returns Serve's error.
func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	opts.Listen = "127.0.0.1:0"
	srv, err := Listen(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once bool
	var result error
	stop := func() error {
		if !once {
			once = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	ts := &testServer{Status: srv.Status(), client: &http.Client{}, scheme: "http", stop: stop}
	if ts.TLS {
		pool := x509.NewCertPool()
		ca, err := os.ReadFile(ts.CA)
		if err != nil || !pool.AppendCertsFromPEM(ca) {
			t.Fatalf("CA %s: %v", ts.CA, err)
		}
		ts.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		ts.scheme = "https"
	}
	return ts
}

// do sends a request with optional basic credentials (user "" for none)
// and returns the status and the body.
func (s *testServer) do(t *testing.T, method, path, user, password string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.scheme+"://"+s.Address+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest+", "+ocispec.MediaTypeImageIndex)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

func writeHTPasswd(t *testing.T, user, password string) string {
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

// TestServeAuthenticates: over self-signed TLS, only the htpasswd file's
// user with the right password gets in.
func TestServeAuthenticates(t *testing.T) {
	s := startServer(t, Options{Root: t.TempDir(), SelfSigned: true, HTPasswd: writeHTPasswd(t, "admin", "s3cret")})
	for _, tc := range []struct {
		user, password string
		want           int
	}{
		{"", "", http.StatusUnauthorized},
		{"admin", "wrong", http.StatusUnauthorized},
		{"intruder", "s3cret", http.StatusUnauthorized},
		{"admin", "s3cret", http.StatusOK},
	} {
		if got, _ := s.do(t, http.MethodGet, "/v2/", tc.user, tc.password, nil); got != tc.want {
			t.Errorf("user %q password %q: status %d, want %d", tc.user, tc.password, got, tc.want)
		}
	}
	if err := s.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestServeReadOnly: a read-only server refuses to start an upload and to
// delete; a read-write one on the same root accepts both once it is back.
func TestServeReadOnly(t *testing.T) {
	root := t.TempDir()
	rw := startServer(t, Options{Root: root})
	d := pushBlob(t, rw, "app", []byte("layer"))
	if err := rw.stop(); err != nil {
		t.Fatal(err)
	}
	ro := startServer(t, Options{Root: root, ReadOnly: true})
	if got, _ := ro.do(t, http.MethodPost, "/v2/app/blobs/uploads/", "", "", nil); got != http.StatusMethodNotAllowed {
		t.Errorf("read-only: starting an upload answered %d, want %d", got, http.StatusMethodNotAllowed)
	}
	if got, _ := ro.do(t, http.MethodDelete, "/v2/app/blobs/"+d.String(), "", "", nil); got != http.StatusMethodNotAllowed {
		t.Errorf("read-only: a delete answered %d, want %d", got, http.StatusMethodNotAllowed)
	}
	if got, body := ro.do(t, http.MethodGet, "/v2/app/blobs/"+d.String(), "", "", nil); got != http.StatusOK || string(body) != "layer" {
		t.Errorf("read-only: reading the blob answered %d %q", got, body)
	}
}

// TestServeLocksRoot: a read-write server keeps a second one and the
// garbage collector off its root; a read-only one and, once it stopped,
// the garbage collector may run.
func TestServeLocksRoot(t *testing.T) {
	root := t.TempDir()
	rw := startServer(t, Options{Root: root})
	if _, err := Listen(t.Context(), Options{Root: root, Listen: "127.0.0.1:0"}); !errors.Is(err, ErrRootInUse) {
		t.Errorf("a second read-write server on the root: %v, want ErrRootInUse", err)
	}
	if _, err := GarbageCollect(t.Context(), root, GCOptions{}); !errors.Is(err, ErrRootInUse) {
		t.Errorf("garbage collection beside a read-write server: %v, want ErrRootInUse", err)
	}
	startServer(t, Options{Root: root, ReadOnly: true})
	if err := rw.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := GarbageCollect(t.Context(), root, GCOptions{}); err != nil {
		t.Errorf("garbage collection after the server stopped: %v", err)
	}
}

// TestOptionsValidate: each mistake is refused as ErrInvalidOptions.
func TestOptionsValidate(t *testing.T) {
	file := writeHTPasswd(t, "a", "b")
	for name, o := range map[string]Options{
		"no root":                 {},
		"cert without key":        {Root: "r", CertFile: file},
		"files and self-signed":   {Root: "r", CertFile: file, KeyFile: file, SelfSigned: true},
		"names without self-sign": {Root: "r", Names: []string{"x"}},
		"htpasswd without TLS":    {Root: "r", HTPasswd: file},
		"missing htpasswd":        {Root: "r", SelfSigned: true, HTPasswd: file + ".gone"},
		"bad listen address":      {Root: "r", Listen: "5000"},
	} {
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: %v, want ErrInvalidOptions", name, err)
		}
	}
}

// pushBlob uploads data to repo in one request and returns its digest.
func pushBlob(t *testing.T, s *testServer, repo string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.scheme+"://"+s.Address+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusAccepted || err != nil {
		t.Fatalf("start upload to %s: %d %v", repo, resp.StatusCode, err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(t.Context(), http.MethodPut, loc.String(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err = s.client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload %s to %s: %d", d, repo, resp.StatusCode)
	}
	return d
}

// TestServeDrains: a request in flight when the server is told to stop
// (here an upload whose body has not been sent yet) still completes, and
// Serve returns nil. The server has stopped accepting connections before
// the body is sent, so the request completes during the drain.
func TestServeDrains(t *testing.T) {
	s := startServer(t, Options{Root: t.TempDir()})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+s.Address+"/v2/app/blobs/uploads/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("a layer still arriving when the server is told to stop")
	conn, err := net.Dial("tcp", s.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Expect: 100-continue makes the server say when the handler starts
	// reading the body: from then on the request is in flight.
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		loc.RequestURI(), s.Address, len(body))
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("no 100 Continue: %q %v", line, err)
	}
	if _, err := r.ReadString('\n'); err != nil { // the blank line after it
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	for { // until the listener is closed: the drain has begun
		c, err := net.Dial("tcp", s.Address)
		if err != nil {
			break
		}
		c.Close()
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	final, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	final.Body.Close()
	if final.StatusCode != http.StatusAccepted {
		t.Errorf("the request in flight answered %d, want 202", final.StatusCode)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve after a drain: %v", err)
	}
}
