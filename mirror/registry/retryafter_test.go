package registry

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ferryhq/ferry/mirror/retry"
)

// TestRetryAfter: a registry's Retry-After, in seconds or as a date,
// lengthens the wait before the next try, up to the policy's Max; an
// answer without one, or one that asks for less than the backoff, leaves
// the backoff.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0}, {"7", 7 * time.Second}, {"-3", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"99999999999", retry.MaxAfter},
	} {
		if got := retryAfter(c.header, now); got != c.want {
			t.Errorf("Retry-After %q: %s, want %s", c.header, got, c.want)
		}
	}

	busy := func(after time.Duration) error {
		return fmt.Errorf("pushing blob: %w", classify(&StatusError{StatusCode: http.StatusTooManyRequests, Status: "429", RetryAfter: after}))
	}
	for _, c := range []struct {
		err       error
		wait, max time.Duration
		want      time.Duration
	}{
		{busy(5 * time.Second), time.Second, 30 * time.Second, 5 * time.Second},
		{busy(time.Minute), time.Second, 30 * time.Second, 30 * time.Second},
		{busy(time.Second), 4 * time.Second, 30 * time.Second, 4 * time.Second},
		{busy(0), time.Second, 30 * time.Second, time.Second},
		{fmt.Errorf("reset"), time.Second, 0, time.Second},
	} {
		if got := honourRetryAfter(c.err, c.wait, c.max); got != c.want {
			t.Errorf("%v, backoff %s, max %s: wait %s, want %s", c.err, c.wait, c.max, got, c.want)
		}
	}
}
