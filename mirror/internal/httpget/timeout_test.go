package httpget

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/mirror/retry"
)

// silent accepts the request and never answers: it returns when the client
// goes away.
func silent(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// halfThenSilent sends the headers of body (its whole length announced)
// and its first half, then nothing until the client goes away.
func halfThenSilent(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = io.WriteString(w, body[:len(body)/2])
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}
}

// trickle sends one byte of an endless body per millisecond, until the
// client goes away: never silent long, never done.
func trickle(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		if _, err := io.WriteString(w, "x"); err != nil || rc.Flush() != nil {
			return
		}
	}
}

// retriesSeen records the errors OnRetry is called with.
func retriesSeen(g *Getter) *[]error {
	var seen []error
	g.Retry.OnRetry = func(e retry.Event) { seen = append(seen, e.Err) }
	return &seen
}

func TestGetTimeoutWithoutAnswer(t *testing.T) {
	t.Parallel()
	s := newServer(t, silent)
	g := s.getter()
	g.Timeout = 50 * time.Millisecond
	retries := retriesSeen(g)
	_, tries, err := g.Get(context.Background(), s.url())
	var te *TimeoutError
	if !errors.As(err, &te) || te.Stalled || !strings.Contains(err.Error(), "(timed out)") || !strings.Contains(err.Error(), s.srv.Listener.Addr().String()) {
		t.Fatalf("Get of a server that never answers: %v; want a timeout naming the server", err)
	}
	if tries != quick.Attempts || s.requests() != quick.Attempts || len(*retries) != quick.Attempts-1 {
		t.Errorf("%d tries, %d requests, %d retries logged; want %d tries, each retried", tries, s.requests(), len(*retries), quick.Attempts)
	}
}

func TestGetStallRetried(t *testing.T) {
	t.Parallel()
	const doc = "0123456789abcdef"
	s := newServer(t, halfThenSilent(doc), ok(doc))
	g := s.getter()
	g.StallTimeout = 20 * time.Millisecond
	retries := retriesSeen(g)
	data, tries, err := g.Get(context.Background(), s.url())
	if err != nil || string(data) != doc || tries != 2 {
		t.Fatalf("Get after one stalled body: %q, %d tries, %v", data, tries, err)
	}
	var te *TimeoutError
	if len(*retries) != 1 || !errors.As((*retries)[0], &te) || !te.Stalled || !strings.Contains((*retries)[0].Error(), "no data for 20ms (stalled)") {
		t.Errorf("retries logged: %v; want one stall", *retries)
	}
}

func TestGetStallForEver(t *testing.T) {
	t.Parallel()
	s := newServer(t, halfThenSilent("0123456789abcdef"))
	g := s.getter()
	g.StallTimeout = 20 * time.Millisecond
	_, tries, err := g.Get(context.Background(), s.url())
	var te *TimeoutError
	if !errors.As(err, &te) || !te.Stalled || tries != quick.Attempts {
		t.Fatalf("Get of a body that always stalls: %d tries, %v", tries, err)
	}
}

// TestGetTrickleBounded: a server that never pauses long enough to stall
// but never finishes fails each try at Timeout, and the whole Get within
// its bound, with every retry logged.
func TestGetTrickleBounded(t *testing.T) {
	t.Parallel()
	s := newServer(t, trickle)
	g := s.getter()
	g.MaxBody = 1 << 20
	g.Timeout = 50 * time.Millisecond
	g.StallTimeout = time.Minute
	retries := retriesSeen(g)
	_, _, err := g.Get(context.Background(), s.url())
	var te *TimeoutError
	if !errors.As(err, &te) || te.Stalled {
		t.Fatalf("Get of a trickle: %v; want a timeout", err)
	}
	if len(*retries) == 0 {
		t.Error("no retry was logged")
	}
	for _, r := range *retries {
		if !errors.As(r, &te) || te.Stalled || te.AllTries {
			t.Errorf("retry after %v; want the try's timeout", r)
		}
	}
}
