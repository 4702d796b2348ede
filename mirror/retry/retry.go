// Package retry is ferry's one retry policy: how many attempts an
// operation gets and how long to wait between them, with the loop that
// applies it (Do). Which failures are worth retrying, and whether a
// failure asks for a wait of its own (a Retry-After), is the business of
// the package that makes the errors; it says so with Do's options.
//
// The package never logs: a caller that wants retries reported sets
// Policy.OnRetry.
package retry

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults: five attempts, waiting about 1, 2, 4 and 8 s in between, so
// that a server restart or a load balancer hiccup of ~15 s is ridden out,
// while a server that is really down fails within a minute.
const (
	DefaultAttempts = 5
	DefaultBase     = time.Second
	DefaultMax      = 30 * time.Second
)

// Policy says how often and how patiently an operation is retried. The
// zero Policy tries once and never waits; start from Default, or from a
// package's own defaults (signature.DefaultRetry, graph.DefaultRetry), to
// retry. A Policy is a value: copy it freely.
type Policy struct {
	// Attempts is the total number of tries, first one included; values
	// below 1 mean 1.
	Attempts int
	// Base is the wait before the second try; each further wait doubles,
	// up to Max, and random jitter takes up to half of each wait off so
	// that parallel workers hit by one outage do not retry in step. 0
	// means no wait.
	Base time.Duration
	// Max caps one wait; 0 means no cap. Packages that honour a server's
	// Retry-After end the retries when it asks for longer than Max.
	Max time.Duration
	// OnRetry, when set, is called before each wait. It must be safe for
	// concurrent use when the Policy is used concurrently; the CLI uses it
	// to log retries.
	OnRetry func(Event)
}

// Event is one retry about to happen.
type Event struct {
	// Op names the operation, e.g. "pushing blob host/repo@sha256:…".
	Op string
	// Attempt is the attempt that failed, from 1.
	Attempt int
	// Err is its failure.
	Err error
	// Wait is the pause before the next attempt.
	Wait time.Duration
}

// Default returns the Policy the CLI uses for registries unless told
// otherwise.
func Default() Policy {
	return Policy{Attempts: DefaultAttempts, Base: DefaultBase, Max: DefaultMax}
}

// Backoff returns the wait after the given failed attempt (from 1): Base
// doubled per attempt, capped at Max, minus up to half of it at random.
func (p Policy) Backoff(attempt int) time.Duration {
	if p.Base <= 0 {
		return 0
	}
	d := p.Base
	for i := 1; i < attempt && (p.Max <= 0 || d < p.Max) && d <= math.MaxInt64/2; i++ {
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	return d - rand.N(d/2+1)
}

// Notify calls OnRetry, if set, with e.
func (p Policy) Notify(e Event) {
	if p.OnRetry != nil {
		p.OnRetry(e)
	}
}

// ExhaustedError is the last failure of an operation whose attempts ran
// out after more than one.
type ExhaustedError struct {
	Err      error
	Attempts int
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("%v (after %d attempts)", e.Err, e.Attempts)
}

func (e *ExhaustedError) Unwrap() error { return e.Err }

// An Option tells Do how the caller's failures behave.
type Option func(*rules)

type rules struct {
	transient func(error) bool
	wait      func(err error, backoff time.Duration) (time.Duration, error)
}

// If retries only the failures for which transient reports true; without
// it every failure is retried.
func If(transient func(error) bool) Option {
	return func(r *rules) { r.transient = transient }
}

// Wait lets a failure choose its own wait: wait is given the failure and
// the Policy's backoff and returns the wait to use, or an error that ends
// the retries (a server asking for a wait longer than the Policy allows).
func Wait(wait func(err error, backoff time.Duration) (time.Duration, error)) Option {
	return func(r *rules) { r.wait = wait }
}

// Do runs fn until it succeeds, fails with an error that is not to be
// retried (see If), ctx ends, or p.Attempts are spent, waiting as p says
// in between and calling p.OnRetry before each wait with op.
//
// It returns nil, or fn's last error: as is when it was not to be retried
// or there was one attempt only, as an *ExhaustedError ("… (after N
// attempts)") when the attempts ran out after retrying, the error of a
// Wait option that ended the retries, or context.Cause(ctx) with the last
// error when ctx ended during a wait.
func Do(ctx context.Context, p Policy, op string, fn func(ctx context.Context) error, opts ...Option) error {
	var r rules
	for _, o := range opts {
		o(&r)
	}
	attempts := max(p.Attempts, 1)
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || (r.transient != nil && !r.transient(err)) {
			return err
		}
		if attempt >= attempts {
			if attempt > 1 {
				return &ExhaustedError{Err: err, Attempts: attempt}
			}
			return err
		}
		wait := p.Backoff(attempt)
		if r.wait != nil {
			var werr error
			if wait, werr = r.wait(err, wait); werr != nil {
				return werr
			}
		}
		p.Notify(Event{Op: op, Attempt: attempt, Err: err, Wait: wait})
		if serr := Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (while waiting to retry after: %w)", serr, err)
		}
	}
}

// Sleep waits for d or until ctx ends, returning context.Cause(ctx) then.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
