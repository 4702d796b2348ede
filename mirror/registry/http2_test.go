package registry

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// h2Front is a TLS front offering HTTP/2, as quay.io and most registries
// behind TLS do, counting the connections it accepts and the requests
// that came over any other protocol.
type h2Front struct {
	host         string
	conns, other atomic.Int64
}

func newH2Front(t *testing.T, reg *testbed.Registry) *h2Front {
	t.Helper()
	u, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &h2Front{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			f.other.Add(1)
		}
		// As a TLS-terminating proxy says it: the registry then names
		// upload locations https://, not the http:// it was asked over.
		r.Header.Set("X-Forwarded-Proto", "https")
		proxy.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "https://")
	return f
}

// TestConcurrentOverHTTP2: against registries that speak HTTP/2 over
// TLS, every request goes over HTTP/2 and shares one connection per
// registry; more workers than the pool's cap on connections per host
// (2×parallel+2) all finish, as streams of that connection.
func TestConcurrentOverHTTP2(t *testing.T) {
	ctx := ctxT(t)
	fromReg, toReg := testbed.NewRegistry(t), testbed.NewRegistry(t)
	from, to := newH2Front(t, fromReg), newH2Front(t, toReg)
	var imgs []image
	for i := range 24 {
		img := makeImage(strconv.Itoa(i), "amd64")
		img.push(t, fromReg.URL, "ocp/art", "")
		imgs = append(imgs, img)
	}
	c := New(testOptions(t, nil)) // TLSVerify false: the fronts' certificates are their own
	src, err := c.Source(ctx, from.host+"/ocp/art")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := c.Destination(ctx, to.host+"/mirror/x")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	workers := 4*DefaultParallel + 2*idleHeadroom // beyond MaxConnsPerHost
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, img := range imgs {
		g.Go(func() error { return copyImage(gctx, src, dst, img) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		m, err := c.Resolve(ctx, to.host+"/mirror/x@"+img.digest.String())
		if err != nil || !bytes.Equal(m.Bytes, img.manifest) {
			t.Fatalf("%s: %v", img.digest, err)
		}
	}
	for name, f := range map[string]*h2Front{"source": from, "target": to} {
		if n := f.other.Load(); n != 0 {
			t.Errorf("%d requests to the %s came over HTTP/1, want all over HTTP/2", n, name)
		}
		if n := f.conns.Load(); n > 2 {
			t.Errorf("%d connections to the %s, want one (HTTP/2 multiplexes the workers' requests)", n, name)
		}
	}
}
