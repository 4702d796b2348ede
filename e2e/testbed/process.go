package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Bounds for the docker-registry process.
const (
	dockerRegistryBin   = "/usr/bin/docker-registry"
	processReadyTimeout = 20 * time.Second      // from exec to /v2/ answering
	processStopTimeout  = 10 * time.Second      // from SIGTERM to SIGKILL
	readyPollInterval   = 20 * time.Millisecond // between /v2/ probes
	startAttempts       = 3                     // a free port can be taken before the process binds it
	maxProcessLog       = 64 << 10              // tail of the process's output kept for failures
)

// DockerRegistry is Debian's docker-registry (distribution 2.8) running as
// a process on 127.0.0.1, with filesystem storage in a test directory and
// no authentication. The embedded Registry gives Host, URL and the client
// methods. It is stopped when the test ends.
type DockerRegistry struct {
	*Registry
	// Dir is the storage root: blobs are files under it (see BlobPath).
	Dir string
	// Config is the path of the config.yml it runs with.
	Config string

	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited
	waitErr  error
	logs     *tailBuffer
	stopOnce sync.Once
	stopErr  error
}

// StartDockerRegistry starts /usr/bin/docker-registry on a free port and
// waits until /v2/ answers. Without the binary the test is skipped, or
// fails when the CI environment variable is set.
func StartDockerRegistry(t testing.TB) *DockerRegistry {
	t.Helper()
	bin := needTool(t, dockerRegistryBin, "docker-registry")
	dir := t.TempDir()
	var errs []error
	for range startAttempts {
		r, err := startDockerRegistry(t, bin, dir)
		if err == nil {
			t.Cleanup(func() {
				if err := r.Stop(); err != nil {
					t.Errorf("stopping docker-registry: %v", err)
				}
			})
			return r
		}
		errs = append(errs, err)
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("starting docker-registry: %v", errors.Join(errs...))
	return nil
}

func startDockerRegistry(t testing.TB, bin, dir string) (*DockerRegistry, error) {
	port := FreePort(t)
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "config.yml")
	conf := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:%d
  secret: ferry-testbed-secret
health:
  storagedriver:
    enabled: false
`, storage, port)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}

	host := fmt.Sprintf("127.0.0.1:%d", port)
	r := &DockerRegistry{
		Registry: &Registry{Host: host, URL: "http://" + host},
		Dir:      storage, Config: cfg,
		done: make(chan struct{}), logs: &tailBuffer{max: maxProcessLog},
	}
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Env = registryEnv()
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r.cmd = cmd
	go func() {
		r.waitErr = cmd.Wait()
		close(r.done)
	}()
	if err := r.waitReady(); err != nil {
		_ = r.Stop()
		return nil, fmt.Errorf("%w\n%s", err, r.Logs())
	}
	return r, nil
}

// registryEnv is the environment without REGISTRY_* variables, which
// would override the config file.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls /v2/ until it answers 200, the process exits, or the
// deadline passes.
func (r *DockerRegistry) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), processReadyTimeout)
	defer cancel()
	tick := time.NewTicker(readyPollInterval)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/v2/", nil)
		if err != nil {
			return err
		}
		if resp, err := httpClient.Do(req); err == nil {
			drain(resp)
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("docker-registry exited before answering: %v", r.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("docker-registry did not answer on %s within %s", r.URL, processReadyTimeout)
		case <-tick.C:
		}
	}
}

// Stop ends the process: SIGTERM, then SIGKILL if it has not exited in
// time. It is safe to call more than once (the test's cleanup calls it too),
// e.g. to test a registry going away.
func (r *DockerRegistry) Stop() error {
	r.stopOnce.Do(func() {
		select {
		case <-r.done:
			return
		default:
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(processStopTimeout)
		defer timer.Stop()
		select {
		case <-r.done:
		case <-timer.C:
			_ = r.cmd.Process.Kill()
			<-r.done
			r.stopErr = fmt.Errorf("docker-registry ignored SIGTERM for %s; killed", processStopTimeout)
		}
	})
	return r.stopErr
}

// Logs is the tail of the process's output.
func (r *DockerRegistry) Logs() string { return r.logs.String() }

// BlobPath is the file in which the registry stores blob d's content.
func (r *DockerRegistry) BlobPath(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(r.Dir, "docker", "registry", "v2", "blobs", d.Algorithm().String(), hex[:2], hex, "data")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("free port: %v", err)
	}
	return port
}

// needTool returns the path of a Debian tool (path, else name on PATH).
// Missing, it skips the test, or fails it when CI is set: CI must run all.
func needTool(t testing.TB, path, name string) string {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed (Debian package %s)", name, name)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
