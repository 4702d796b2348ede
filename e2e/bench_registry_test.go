//go:build linux

package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"

	"github.com/ferryhq/ferry/e2e/testbed"
)

const (
	// wanMinLatency and wanLatencySpread make the WAN mode's delay of each
	// request: 20 to 50 ms, as between a site and a cloud region.
	wanMinLatency    = 20 * time.Millisecond
	wanLatencySpread = 31 // milliseconds above the minimum: 0..30
	// tlsRecordType is the first byte of a TLS handshake record: how the
	// WAN front tells a TLS client from a plain one on the same port.
	tlsRecordType = 0x16
)

// benchCounts is what the bench's registries saw: TCP connections they
// accepted, connections clients opened to a WAN front, and requests by
// method. A contender's share is the difference of two snapshots.
type benchCounts struct {
	mu      sync.Mutex
	conns   int
	wanConn map[string]bool // client address at a WAN front
	methods map[string]int
}

func newBenchCounts() *benchCounts {
	return &benchCounts{wanConn: map[string]bool{}, methods: map[string]int{}}
}

// countsSnapshot is benchCounts at one moment, with this process's CPU
// (the registries, fronts and proxies run in it).
type countsSnapshot struct {
	conns, wanConns int
	methods         map[string]int
	cpu             time.Duration
}

func (c *benchCounts) snapshot() countsSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	m := make(map[string]int, len(c.methods))
	for k, v := range c.methods {
		m[k] = v
	}
	return countsSnapshot{conns: c.conns, wanConns: len(c.wanConn), methods: m,
		cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
}

// since is what happened between then and s.
func (s countsSnapshot) since(then countsSnapshot) countsSnapshot {
	d := countsSnapshot{conns: s.conns - then.conns, wanConns: s.wanConns - then.wanConns,
		methods: map[string]int{}, cpu: s.cpu - then.cpu}
	for k, v := range s.methods {
		if n := v - then.methods[k]; n != 0 {
			d.methods[k] = n
		}
	}
	return d
}

func (s countsSnapshot) requests() int {
	n := 0
	for _, v := range s.methods {
		n += v
	}
	return n
}

// benchConnCounter is a listener that counts the connections it accepts.
// The tests count with testbed.CountingProxy instead; the bench counts at
// the registry's own listener, as a proxy in front would add a hop and
// its own CPU to every request it times.
type benchConnCounter struct {
	net.Listener
	counts *benchCounts
}

func (l benchConnCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.counts.mu.Lock()
		l.counts.conns++
		l.counts.mu.Unlock()
	}
	return c, err
}

// benchRegistry is a distribution registry in this process, filesystem-
// backed like testbed.NewRegistry, whose listener and handler count into
// counts. Its CPU is this process's.
type benchRegistry struct {
	Host, URL string
	dir       string
	stop      func()
}

// drop stops the registry and deletes what it stored, so that the
// registries the contenders fill do not add up on disk.
func (r *benchRegistry) drop(t *testing.T) {
	t.Helper()
	r.stop()
	if err := os.RemoveAll(r.dir); err != nil {
		t.Fatal(err)
	}
}

func startBenchRegistry(t *testing.T, counts *benchCounts) *benchRegistry {
	t.Helper()
	logrus.SetLevel(logrus.FatalLevel) // as testbed.NewRegistry: no log per request
	dir := t.TempDir()
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem":  configuration.Parameters{"rootdirectory": dir},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
			"delete":      configuration.Parameters{"enabled": true},
		},
	}
	cfg.HTTP.Secret = "ferry-bench-secret"
	cfg.Catalog.MaxEntries = 1000
	cfg.Log.Level = "error"
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		counts.mu.Lock()
		counts.methods[r.Method]++
		counts.mu.Unlock()
		app.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: time.Minute}
	go func() { _ = srv.Serve(benchConnCounter{l, counts}) }()
	stop := sync.OnceFunc(func() {
		_ = srv.Close()
		cancel()
	})
	t.Cleanup(stop)
	host := l.Addr().String()
	return &benchRegistry{Host: host, URL: "http://" + host, dir: dir, stop: stop}
}

// wanProxy puts target behind a TLS fault proxy that delays every request
// by 20-50 ms and counts the client connections it serves.
func wanProxy(t *testing.T, target string, counts *benchCounts) *testbed.FaultProxy {
	t.Helper()
	p := testbed.NewTLSFaultProxy(t, target)
	p.OnRequest(func(n int64, r *http.Request) bool {
		counts.mu.Lock()
		counts.wanConn[r.RemoteAddr] = true
		counts.mu.Unlock()
		time.Sleep(wanLatency(n))
		return true
	})
	return p
}

// wanLatency is the delay of the n-th request: spread over the range by
// a hash, the same for every run.
func wanLatency(n int64) time.Duration {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h := sha256.Sum256(b[:])
	return wanMinLatency + time.Duration(binary.BigEndian.Uint64(h[:8])%wanLatencySpread)*time.Millisecond
}

// wanFront is one address for two paths: TLS clients go through a WAN
// proxy to a registry, plain HTTP ones straight to it. A release built
// through the plain path names the front's address in image-references,
// so that ferry pack of it over TLS goes through the proxy for every
// image.
type wanFront struct {
	Host  string
	Proxy *testbed.FaultProxy
}

func startWANFront(t *testing.T, reg *benchRegistry, counts *benchCounts) *wanFront {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &wanFront{Host: l.Addr().String()}
	// The proxy must send the front's address in Location headers: it
	// does, as it passes the client's Host header on.
	f.Proxy = wanProxy(t, reg.URL, counts)
	proxyHost := f.Proxy.Host
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	t.Cleanup(func() {
		// Clients keep idle connections: close them, or the relays wait.
		_ = l.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				relayByKind(c, proxyHost, reg.Host)
				mu.Lock()
				delete(open, c)
				mu.Unlock()
			}()
		}
	}()
	return f
}

// relayByKind peeks at c's first byte and relays the connection to tlsHost
// when it starts a TLS handshake, else to plainHost, until either side
// closes.
func relayByKind(c net.Conn, tlsHost, plainHost string) {
	defer c.Close()
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	to := plainHost
	if first[0] == tlsRecordType {
		to = tlsHost
	}
	up, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, up)
		closeWrite(c)
		close(done)
	}()
	// What the reader holds first, then the rest of the connection.
	_, _ = io.Copy(up, io.MultiReader(io.LimitReader(br, int64(br.Buffered())), c))
	closeWrite(up)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
