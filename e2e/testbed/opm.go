package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/operator-framework/operator-registry/pkg/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	health "google.golang.org/grpc/health/grpc_health_v1"
)

// OPMEnv names the opm binary (operator-registry's reference catalog tool)
// that `make opm-bin` builds (`make test` sets it).
const OPMEnv = "FERRY_OPM"

const (
	// opmRunTimeout bounds one `opm validate` or cache build: the test
	// catalogs take well under a second, but parallel -race test binaries
	// on 2 cores can starve the process for a long time.
	opmRunTimeout = 2 * time.Minute
	// opmCallTimeout bounds one gRPC call to `opm serve`, which answers from
	// its cache on loopback.
	opmCallTimeout = 30 * time.Second
	// opmMaxPackages bounds ListPackages' stream: test catalogs hold a
	// handful of packages, so more means the server or the test is broken.
	opmMaxPackages = 1000
)

// OPM returns the path of the opm binary named by $FERRY_OPM. Without it the
// test is skipped (run `make opm-bin`, or `make test`), or fails when $CI is set.
func OPM(t testing.TB) string {
	t.Helper()
	bin := builtBinaryEnv(t, OPMEnv, "build opm with `make opm-bin` and set "+
		OPMEnv+"=.cache/opm/<hash>/opm (`make test` does both)")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v (run `make opm-bin`)", OPMEnv, err)
	}
	return bin
}

// OPMRejection is `opm validate` refusing a catalog: its exit status and
// output, which names what is wrong.
type OPMRejection struct {
	Dir    string
	Err    *exec.ExitError
	Output string
}

func (e *OPMRejection) Error() string {
	return fmt.Sprintf("opm validate %s: %v\n%s", e.Dir, e.Err, e.Output)
}

// OPMValidate runs `opm validate dir` and returns nil when opm accepts the
// catalog, or an *OPMRejection when it exits non-zero. opm failing to run or
// to finish within opmRunTimeout fails the test.
func OPMValidate(t testing.TB, dir string) error {
	t.Helper()
	out, err := runOPM(t, nil, "validate", dir)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return &OPMRejection{Dir: dir, Err: exit, Output: out}
	}
	if err != nil {
		t.Fatalf("opm validate %s: %v\n%s", dir, err, out)
	}
	return nil
}

// ValidateFBC fails the test, with opm's output, unless `opm validate dir`
// accepts the file-based catalog in dir.
func ValidateFBC(t testing.TB, dir string) {
	t.Helper()
	if err := OPMValidate(t, dir); err != nil {
		t.Fatal(err)
	}
}

// runOPM runs opm with args to its end and returns the tail of its output;
// env (KEY=value) is added to the test's environment.
func runOPM(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	bin := OPM(t)
	ctx, cancel := context.WithTimeout(context.Background(), opmRunTimeout)
	defer cancel()
	out := &tailBuffer{max: maxProcessLog}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	dieWithParent(cmd)
	err := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return out.String(), fmt.Errorf("opm %s: not done within %s: %w", args[0], opmRunTimeout, ctxErr)
	}
	return out.String(), err
}

// OPMServer is `opm serve` answering OLM's catalog gRPC API on 127.0.0.1.
// It is stopped when the test ends, or by Stop.
type OPMServer struct {
	// Addr is "127.0.0.1:<port>".
	Addr string
	conn *grpc.ClientConn
	proc *kubeProcess
}

// OPMServeError is `opm serve` exiting before it served: its error and
// the tail of its output, which says why (opm's "integrity check failed",
// say).
type OPMServeError struct {
	Args []string
	Err  error
	Log  string
}

func (e *OPMServeError) Error() string {
	return fmt.Sprintf("opm %s: %v\n%s", strings.Join(e.Args, " "), e.Err, e.Log)
}

// ServeFBC starts `opm serve dir` on a free port, the way a stock catalog
// image runs it (the cache built beforehand with --cache-only, then served
// with its integrity enforced against the catalog), and waits until its
// gRPC health service reports SERVING.
func ServeFBC(t testing.TB, dir string) *OPMServer {
	t.Helper()
	work := t.TempDir()
	cache := filepath.Join(work, "cache")
	if out, err := runOPM(t, nil, "serve", dir, "--cache-dir", cache, "--cache-only", "--pprof-addr", ""); err != nil {
		t.Fatalf("opm serve --cache-only %s: %v\n%s", dir, err, out)
	}
	s, err := startOPMServe(t, work, nil, "serve", dir, "--cache-dir", cache)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startOPMServe starts opm with args (a serve command) on a free port and
// env added to the test's environment, in work, and waits until it
// serves. It returns an *OPMServeError when opm exits (for another reason
// than a port taken meanwhile, which it retries) or does not serve in
// time.
func startOPMServe(t testing.TB, work string, env []string, args ...string) (*OPMServer, error) {
	t.Helper()
	bin := OPM(t)
	var last *OPMServeError
	for attempt := 1; attempt <= kubeStartAttempts; attempt++ {
		port := FreePort(t)
		s := &OPMServer{Addr: "127.0.0.1:" + strconv.Itoa(port)}
		// No pprof endpoint (its default, localhost:6060, is one port for
		// every process on the machine), and the termination log in the
		// test's directory rather than /dev.
		full := append(slices.Clone(args), "--port", strconv.Itoa(port),
			"--pprof-addr", "", "--termination-log", filepath.Join(work, "termination.log"))
		s.proc = kubeStartProcessEnv(t, bin, filepath.Join(work, fmt.Sprintf("opm-serve-%d.log", attempt)), env, full...)
		conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatalf("grpc client for %s: %v", s.Addr, err)
		}
		s.conn = conn
		t.Cleanup(func() {
			if err := conn.Close(); err != nil {
				t.Errorf("closing grpc client for %s: %v", s.Addr, err)
			}
		})
		err = s.proc.waitReady(s.serving)
		if err == nil {
			return s, nil
		}
		s.proc.stop(t)
		last = &OPMServeError{Args: full, Err: err, Log: s.proc.logTail()}
		if !s.proc.portTaken() {
			break
		}
	}
	return nil, last
}

// Stop stops the server (SIGTERM, then SIGKILL) and waits for it to exit,
// so that what it holds open (its cache) is free again.
func (s *OPMServer) Stop(t testing.TB) { s.proc.stop(t) }

// serving is nil once the health service reports SERVING.
func (s *OPMServer) serving(ctx context.Context) error {
	resp, err := health.NewHealthClient(s.conn).Check(ctx, &health.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != health.HealthCheckResponse_SERVING {
		return fmt.Errorf("health %s", resp.GetStatus())
	}
	return nil
}

// Registry is a client of the server's catalog API (OLM's registry.Registry
// service: ListPackages, GetPackage, GetBundleForChannel, ...).
func (s *OPMServer) Registry() api.RegistryClient { return api.NewRegistryClient(s.conn) }

// CallContext bounds one call to the server; cancel it when done.
func (s *OPMServer) CallContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opmCallTimeout)
}

// Packages lists the names of the packages the server offers, in its order.
func (s *OPMServer) Packages(t testing.TB) []string {
	t.Helper()
	ctx, cancel := s.CallContext()
	defer cancel()
	stream, err := s.Registry().ListPackages(ctx, &api.ListPackageRequest{})
	if err != nil {
		t.Fatalf("ListPackages on %s: %v", s.Addr, err)
	}
	var names []string
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("ListPackages on %s: %v", s.Addr, err)
		}
		if len(names) == opmMaxPackages {
			t.Fatalf("ListPackages on %s: more than %d packages", s.Addr, opmMaxPackages)
		}
		names = append(names, p.GetName())
	}
}
