package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferryhq/ferry/mirror/retry"
)

// Do retries the failures its caller calls transient and reports each
// retry through the policy's OnRetry.
func ExampleDo() {
	errBusy := errors.New("busy")
	p := retry.Policy{Attempts: 3, Base: time.Millisecond, Max: 10 * time.Millisecond,
		OnRetry: func(e retry.Event) { fmt.Printf("retrying %s after attempt %d: %v\n", e.Op, e.Attempt, e.Err) }}
	calls := 0
	err := retry.Do(context.Background(), p, "read", func(context.Context) error {
		if calls++; calls < 3 {
			return errBusy
		}
		return nil
	}, retry.If(func(err error) bool { return errors.Is(err, errBusy) }))
	fmt.Println(calls, "calls, error:", err)
	// Output:
	// retrying read after attempt 1: busy
	// retrying read after attempt 2: busy
	// 3 calls, error: <nil>
}
