package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Do runs fn until it succeeds, fails with an error that is not transient
// (see IsTransient), ctx ends, or p.Attempts are spent, waiting with
// exponential backoff and jitter in between. op names the operation for
// p.OnRetry. When it gives up after retrying, the last error is returned
// with the number of attempts appended.
func Do(ctx context.Context, p RetryPolicy, op string, fn func(ctx context.Context) error) error {
	attempts := max(p.Attempts, 1)
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !IsTransient(err) {
			return err
		}
		if attempt >= attempts {
			if attempt > 1 {
				return fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return err
		}
		wait := p.wait(attempt, err)
		if p.OnRetry != nil {
			p.OnRetry(op, attempt, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting to retry after: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// wait is the pause before retrying after the given failed attempt: none
// for a stale token, whose client has just been replaced (waiting would
// only let the new token age), else the backoff.
func (p RetryPolicy) wait(attempt int, err error) time.Duration {
	if _, ok := errors.AsType[*staleTokenError](err); ok {
		return 0
	}
	return p.backoff(attempt)
}

// backoff returns the wait after the given failed attempt: Base doubled per
// attempt, capped at Max, minus up to half of it at random so that parallel
// workers hit by the same outage do not retry in lockstep.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	if p.Base <= 0 {
		return 0
	}
	d := p.Base
	for i := 1; i < attempt && (p.Max <= 0 || d < p.Max); i++ {
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	return d - rand.N(d/2+1)
}
