package registry

import (
	"context"
	"errors"
	"time"

	"github.com/ferryhq/ferry/mirror/retry"
)

// Do runs fn under p (see retry.Do), retrying the failures IsTransient
// calls transient. op names the operation for p.OnRetry. When it gives up
// after retrying, the last error is returned as a *retry.ExhaustedError:
// "… (after N attempts)".
func Do(ctx context.Context, p RetryPolicy, op string, fn func(ctx context.Context) error) error {
	return retry.Do(ctx, p, op, fn, retry.If(IsTransient), retry.Wait(func(err error, backoff time.Duration) (time.Duration, error) {
		wait, werr := staleTokenWait(err, backoff)
		return honourRetryAfter(err, wait, p.Max), werr
	}))
}

// honourRetryAfter lengthens wait to the Retry-After of a 429 or 503
// answer (as containers/image does), up to max when set: a registry that
// asks for longer is tried again at max, as any other failure would be.
func honourRetryAfter(err error, wait, max time.Duration) time.Duration {
	se, ok := errors.AsType[*StatusError](err)
	if !ok || se.RetryAfter <= wait {
		return wait
	}
	if max > 0 && se.RetryAfter > max {
		return max
	}
	return se.RetryAfter
}

// staleTokenWait skips the wait after a stale token, whose client has just
// been replaced (waiting would only let the new token age), and after a
// refused monolithic upload, whose next try is chunked; other failures
// wait the backoff.
func staleTokenWait(err error, backoff time.Duration) (time.Duration, error) {
	if _, ok := errors.AsType[*staleTokenError](err); ok {
		return 0, nil
	}
	if isMonolithicRefusal(err) {
		return 0, nil // the next try is chunked
	}
	return backoff, nil
}
