package retry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	flaky := errors.New("flaky")
	permanent := errors.New("permanent")
	onlyFlaky := If(func(err error) bool { return errors.Is(err, flaky) })
	p := Policy{Attempts: 3, Base: time.Microsecond, Max: time.Millisecond}

	calls := 0
	err := Do(t.Context(), p, "op", func(context.Context) error { calls++; return flaky }, onlyFlaky)
	var ex *ExhaustedError
	if calls != 3 || !errors.As(err, &ex) || ex.Attempts != 3 || err.Error() != "flaky (after 3 attempts)" {
		t.Errorf("transient: %d calls, %v; want 3 and the attempts noted", calls, err)
	}

	calls = 0
	if err := Do(t.Context(), p, "op", func(context.Context) error { calls++; return permanent }, onlyFlaky); calls != 1 || err != permanent {
		t.Errorf("permanent: %d calls, %v", calls, err)
	}

	calls = 0
	if err := Do(t.Context(), p, "op", func(context.Context) error { calls++; return permanent }); calls != 3 {
		t.Errorf("without If: %d calls, %v; want every failure retried", calls, err)
	}

	calls = 0
	if err := Do(t.Context(), Policy{}, "op", func(context.Context) error { calls++; return flaky }); calls != 1 || err != flaky {
		t.Errorf("zero policy: %d calls, %v; want one, its error as is", calls, err)
	}

	calls = 0
	if err := Do(t.Context(), p, "op", func(context.Context) error {
		if calls++; calls < 2 {
			return flaky
		}
		return nil
	}); err != nil || calls != 2 {
		t.Errorf("recovers: %d calls, %v", calls, err)
	}
}

func TestDoCancelledWhileWaiting(t *testing.T) {
	flaky := errors.New("flaky")
	cause := errors.New("stop")
	ctx, cancel := context.WithCancelCause(t.Context())
	var events []Event
	slow := Policy{Attempts: 5, Base: time.Hour, OnRetry: func(e Event) { events = append(events, e); cancel(cause) }}
	err := Do(ctx, slow, "op", func(context.Context) error { return flaky })
	if !errors.Is(err, cause) || !errors.Is(err, flaky) || !strings.Contains(err.Error(), "while waiting to retry") {
		t.Errorf("cancelled wait: %v; want the cause and the last failure", err)
	}
	if len(events) != 1 || events[0].Op != "op" || events[0].Attempt != 1 || events[0].Err != flaky || events[0].Wait < 30*time.Minute {
		t.Errorf("events %+v; want one for attempt 1 with its backoff", events)
	}
}

func TestDoWait(t *testing.T) {
	flaky := errors.New("flaky")
	tooLong := errors.New("asks too long")
	p := Policy{Attempts: 3, Base: time.Hour, Max: time.Hour} // a backoff would stall the test
	var waits []time.Duration
	p.OnRetry = func(e Event) { waits = append(waits, e.Wait) }
	calls := 0
	err := Do(t.Context(), p, "op", func(context.Context) error { calls++; return flaky },
		Wait(func(_ error, backoff time.Duration) (time.Duration, error) {
			if calls == 2 {
				return 0, tooLong
			}
			if backoff < 30*time.Minute {
				t.Errorf("backoff %s given to Wait, want the policy's", backoff)
			}
			return 0, nil
		}))
	if err != tooLong || calls != 2 || len(waits) != 1 || waits[0] != 0 {
		t.Errorf("Wait: %d calls, waits %v, %v; want the wait replaced once, then the retries ended", calls, waits, err)
	}
}

func TestBackoff(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 64: time.Second} {
		for range 50 {
			if got := p.Backoff(attempt); got < want/2 || got > want {
				t.Fatalf("Backoff(%d) = %s, want within [%s, %s]", attempt, got, want/2, want)
			}
		}
	}
	if got := (Policy{}).Backoff(3); got != 0 {
		t.Errorf("zero Base: %s", got)
	}
	if got := (Policy{Base: time.Second}).Backoff(200); got <= 0 {
		t.Errorf("no Max, attempt 200: %s; want a positive wait, not an overflow", got)
	}
}
