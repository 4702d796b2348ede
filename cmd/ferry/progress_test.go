package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8/decor"
)

// TestProgressLineSaysStalled: the plain progress line gives an ETA while
// bytes move and says "stalled" once none has moved for
// progressStalledAfter, rather than an ETA from a rate that is gone.
func TestProgressLineSaysStalled(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &lineProgress{verb: "pack", total: 1000, items: 2, start: t0, lastMove: newLastMove(t0)}
	l.bytes.Store(400)
	l.lastMove.set(t0.Add(10 * time.Second))

	moving := l.status(t0.Add(10*time.Second + progressStalledAfter - time.Second))
	if !strings.Contains(moving, "ETA ") || strings.Contains(moving, "stalled") {
		t.Errorf("moving: %q; want an ETA", moving)
	}
	stalled := l.status(t0.Add(60 * time.Second))
	if !strings.Contains(stalled, "stalled: no data for 50s") || strings.Contains(stalled, "ETA") {
		t.Errorf("stalled: %q; want how long nothing moved, no ETA", stalled)
	}
	l.bytes.Store(1000)
	if done := l.status(t0.Add(60 * time.Second)); strings.Contains(done, "stalled") {
		t.Errorf("finished: %q; nothing left to stall", done)
	}
}

// TestProgressBarSaysStalled: the bar's ETA gives way to "stalled" the same
// way, and comes back when bytes move again.
func TestProgressBarSaysStalled(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	last := newLastMove(t0)
	eta := stalledOr{Decorator: decor.Name("1m30s"), last: last, now: func() time.Time { return now }}
	show := func(s decor.Statistics) string { str, _ := eta.Decor(s); return str }

	if got := show(decor.Statistics{}); got != "1m30s" {
		t.Errorf("fresh: %q, want the ETA", got)
	}
	now = t0.Add(progressStalledAfter + 5*time.Second)
	if got := show(decor.Statistics{}); got != "stalled: no data for 20s" {
		t.Errorf("after %s without a byte: %q", now.Sub(t0), got)
	}
	if got := show(decor.Statistics{Completed: true}); got != "1m30s" {
		t.Errorf("completed: %q, want the wrapped decorator", got)
	}
	last.set(now)
	if got := show(decor.Statistics{}); got != "1m30s" {
		t.Errorf("moving again: %q, want the ETA", got)
	}
	if eta.Unwrap() == nil {
		t.Error("the ETA decorator is hidden from mpb")
	}
}
