package httpget_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry/mirror/internal/httpget"
	"github.com/ferryhq/ferry/mirror/retry"
)

// A Getter rides out a transient failure, and reports how many tries the
// document took.
func ExampleGetter_Get() {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"version": 1}`)
	}))
	defer srv.Close()

	g := &httpget.Getter{
		Client:  srv.Client(),
		Header:  http.Header{"User-Agent": {"example"}},
		MaxBody: 1 << 10,
		Retry:   retry.Policy{Attempts: 2, Base: time.Millisecond, Max: 10 * time.Millisecond},
	}
	u, _ := url.Parse(srv.URL + "/graph")
	body, tries, err := g.Get(context.Background(), u)
	fmt.Printf("%s after %d tries, error %v\n", body, tries, err)
	// Output: {"version": 1} after 2 tries, error <nil>
}
