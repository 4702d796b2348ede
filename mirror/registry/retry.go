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
	return retry.Do(ctx, p, op, fn, retry.If(IsTransient), retry.Wait(staleTokenWait))
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
