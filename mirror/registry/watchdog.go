package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http/httptrace"
	"sync"
	"time"
)

// ErrStalled: a registry went silent. It accepted the connection but sent
// no answer within Timeouts.Response, or a blob body moved no byte within
// Timeouts.Stall. It is transient: the retry policy tries again.
var ErrStalled = errors.New("stalled")

// StallError is an attempt given up because the registry went silent. It
// satisfies errors.Is(err, ErrStalled).
type StallError struct {
	// Op is the operation, as retries name it: "reading blob host/repo@sha256:...".
	Op string
	// Host is the host:port the silent connection went to (a registry, its
	// token server or a CDN it redirected to); empty when none was opened.
	Host string
	// Bound is the bound that ran out.
	Bound time.Duration
	// Phase says what was awaited.
	Phase StallPhase
}

// StallPhase is what a StallError waited for.
type StallPhase int

const (
	// AwaitingAnswer: a request was sent (or its connection was being
	// opened) and no response came within Timeouts.Response.
	AwaitingAnswer StallPhase = iota
	// Receiving: a body being read moved no byte.
	Receiving
	// Sending: an upload's body was not taken by the registry.
	Sending
)

func (e *StallError) Error() string {
	from := ""
	if e.Host != "" {
		from = " from " + e.Host
	}
	switch e.Phase {
	case Receiving:
		return fmt.Sprintf("%s: no data%s for %s (stalled)", e.Op, from, e.Bound)
	case Sending:
		to := "the registry"
		if e.Host != "" {
			to = e.Host
		}
		return fmt.Sprintf("%s: %s took no data for %s (stalled)", e.Op, to, e.Bound)
	}
	return fmt.Sprintf("%s: no answer%s within %s (timed out)", e.Op, from, e.Bound)
}

// Is makes a StallError match ErrStalled.
func (e *StallError) Is(target error) bool { return target == ErrStalled }

// watchdog bounds one attempt of an operation. The transports (this
// package's and containers/image's) bound dialling at 30 s and the TLS
// handshake at 10 s, nothing after, but every request carries the context
// it is given: the watchdog gives it a context that it cancels when the
// attempt makes no progress for too long. Progress is seen through
// httptrace (a request sent, its answer's first byte) and through the
// blob streams this package hands out (each read, each chunk taken by an
// upload).
//
// The timer runs only inside sections (a call into containers/image, a
// blob Read): time a caller spends between two Reads of a blob, writing to
// a slow disk say, never counts as a stall.
type watchdog struct {
	t      Timeouts
	op     string
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	timer    *time.Timer // nil until first armed
	deadline time.Time   // when the armed timer means to fire
	sections int         // sections in progress
	reading  bool        // inside a blob Read: an answer's body is a blob
	phase    StallPhase
	bound    time.Duration
	host     string
	fired    *StallError
	stopped  bool
}

// watch returns a watchdog for one attempt of op and the context the
// attempt must use. Stop the watchdog when the attempt (and any stream it
// returned) is done. With zero Timeouts the watchdog never fires.
func watch(ctx context.Context, t Timeouts, op string) (*watchdog, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{t: t, op: op, cancel: cancel}
	return w, httptrace.WithClientTrace(ctx, w.trace())
}

func (w *watchdog) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(hostPort string) {
			w.mu.Lock()
			w.host = hostPort
			w.mu.Unlock()
			w.arm(AwaitingAnswer, w.t.Response)
		},
		TLSHandshakeDone: func(tls.ConnectionState, error) { w.arm(AwaitingAnswer, w.t.Response) },
		WroteRequest:     func(httptrace.WroteRequestInfo) { w.arm(AwaitingAnswer, w.t.Response) },
		GotFirstResponseByte: func() {
			w.mu.Lock()
			bound := w.t.Response // a small answer (manifest, token) is read whole
			if w.reading {
				bound = w.t.Stall // a blob reconnected by containers/image
			}
			w.mu.Unlock()
			w.arm(Receiving, bound)
		},
	}
}

// arm restarts the timer for phase with bound, if a section is in
// progress and bound is set.
func (w *watchdog) arm(phase StallPhase, bound time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.fired != nil || w.sections == 0 {
		return
	}
	w.phase, w.bound = phase, bound
	if bound <= 0 {
		w.deadline = time.Time{}
		if w.timer != nil {
			w.timer.Stop()
		}
		return
	}
	w.deadline = time.Now().Add(bound)
	if w.timer == nil {
		w.timer = time.AfterFunc(bound, w.fire)
	} else {
		w.timer.Reset(bound)
	}
}

// enter starts a section, armed for phase with bound.
func (w *watchdog) enter(phase StallPhase, bound time.Duration) {
	w.mu.Lock()
	w.sections++
	w.reading = phase == Receiving
	w.mu.Unlock()
	w.arm(phase, bound)
}

// leave ends a section; the timer stops with the last one.
func (w *watchdog) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sections--
	w.reading = false
	if w.sections == 0 {
		w.deadline = time.Time{}
		if w.timer != nil {
			w.timer.Stop()
		}
	}
}

// fire cancels the attempt, unless the deadline moved since the timer was
// set (a Reset racing with the timer's own firing).
func (w *watchdog) fire() {
	w.mu.Lock()
	if w.stopped || w.fired != nil || w.sections == 0 || w.deadline.IsZero() || time.Now().Before(w.deadline) {
		w.mu.Unlock()
		return
	}
	w.fired = &StallError{Op: w.op, Host: w.host, Bound: w.bound, Phase: w.phase}
	err := w.fired
	w.mu.Unlock()
	w.cancel(err)
}

// explain returns the StallError when the watchdog cancelled the attempt
// (the error containers/image gives is then only "context canceled"),
// else err.
func (w *watchdog) explain(err error) error {
	if err == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired != nil {
		return w.fired
	}
	return err
}

// stop releases the watchdog and cancels its context.
func (w *watchdog) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.cancel(context.Canceled)
}

// bounded runs fn as one section of an attempt of op under Timeouts t: the
// call is cancelled when the registry goes silent, and the error says so.
func bounded(ctx context.Context, t Timeouts, op string, fn func(ctx context.Context, w *watchdog) error) error {
	w, ctx := watch(ctx, t, op)
	defer w.stop()
	w.enter(AwaitingAnswer, t.Response)
	err := fn(ctx, w)
	w.leave()
	return w.explain(err)
}

// watchedBody is a blob stream whose reads feed its watchdog: a read that
// waits longer than Timeouts.Stall for a byte fails with a StallError.
// Closing it stops the watchdog.
type watchedBody struct {
	rc io.ReadCloser
	w  *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.enter(Receiving, b.w.t.Stall)
	n, err := b.rc.Read(p)
	b.w.leave()
	if err != nil && !errors.Is(err, io.EOF) {
		err = b.w.explain(err)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.w.stop()
	return err
}

// sendingReader is an upload's content: every chunk the transport takes
// counts as progress, and the wait for the next one is bounded by
// Timeouts.Stall (a registry that stops reading fills the socket buffers,
// and the transport stops asking).
type sendingReader struct {
	r io.Reader
	w *watchdog
}

func (s sendingReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.w.arm(Sending, s.w.t.Stall)
	return n, err
}
