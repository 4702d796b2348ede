package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror"
)

// screen drives a display with a fake clock and width, and keeps what a
// terminal would show: the finished lines written so far, then the live
// lines of the last frame.
type screen struct {
	t        *testing.T
	d        *display
	now      time.Time
	width    int
	finished []string
	live     []string
	frames   []string
}

func newScreen(t *testing.T, width, rows int) *screen {
	s := &screen{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), width: width}
	s.d = newDisplay(&bytes.Buffer{}, displayOptions{now: func() time.Time { return s.now }, width: func() int { return s.width }, rows: rows})
	return s
}

func (s *screen) advance(d time.Duration) { s.now = s.now.Add(d) }

// refresh draws a frame and returns the whole screen.
func (s *screen) refresh() string {
	s.d.mu.Lock()
	finished, live := s.d.render()
	s.d.mu.Unlock()
	s.finished, s.live = append(s.finished, finished...), live
	for _, l := range live { // finished lines may wrap: they are above the redrawn part
		if n := utf8.RuneCountInString(l); n >= s.width {
			s.t.Errorf("a live line of %d columns on a terminal %d wide: %q", n, s.width, l)
		}
	}
	frame := strings.Join(append(append([]string{}, s.finished...), live...), "\n")
	s.frames = append(s.frames, frame)
	return frame
}

// overall is the live line of the running transfer phase.
func (s *screen) overall(name string) string {
	for _, l := range s.live {
		if strings.Contains(l, " "+name+" ") {
			return l
		}
	}
	s.t.Fatalf("no overall line for %q in:\n%s", name, strings.Join(s.live, "\n"))
	return ""
}

// rows counts the live rows of transfers (two-space indented).
func (s *screen) rows() int {
	n := 0
	for _, l := range s.live {
		if strings.HasPrefix(l, "  ") && !strings.Contains(l, "more") {
			n++
		}
	}
	return n
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: %q lacks %q", what, got, w)
		}
	}
}

// TestProgressFrames drives a pack's progress with a fake clock on a
// 100-column terminal and checks the frames: a spinner line per running
// step and a tick with its figure when done; one overall bar with the
// bytes, the blob count, the run's average rate and an ETA only once
// enough has moved; at most --parallel transfers in flight, oldest first,
// named by their image, each gone when done; counters that never pass
// their totals; "stalled" when nothing moves.
func TestProgressFrames(t *testing.T) {
	const parallel = 3
	s := newScreen(t, 100, parallel)
	d := s.d

	resolve := d.Step("resolving 1 release")
	s.advance(300 * time.Millisecond)
	if got := s.refresh(); !strings.Contains(got, "⠹ resolving 1 release  0.3s") {
		t.Errorf("running step: want a spinner and its time so far:\n%s", got)
	}
	s.advance(200 * time.Millisecond)
	resolve.Done("4.16.3-x86_64 sha256:0da6a1b2c3d4", nil)
	sigs := d.Step("fetching and verifying signatures")
	s.advance(1200 * time.Millisecond)
	sigs.Done("2 signatures verified for 1 release", nil)
	walk := d.Step("walking release 4.16.3-x86_64")
	s.advance(2100 * time.Millisecond)
	walk.Done("6 components; 7 images, 6 blobs", nil)
	mirror.BeginStep(d, "6 blobs to fetch (100.0 MiB)").Done("nothing left out", nil)
	s.refresh()
	for i, want := range []string{
		"✓ resolving 1 release: 4.16.3-x86_64 sha256:0da6a1b2c3d4 (0.5s)",
		"✓ fetching and verifying signatures: 2 signatures verified for 1 release (1.2s)",
		"✓ walking release 4.16.3-x86_64: 6 components; 7 images, 6 blobs (2.1s)",
		"✓ 6 blobs to fetch (100.0 MiB): nothing left out",
	} {
		if i >= len(s.finished) || s.finished[i] != want {
			t.Fatalf("finished line %d: want %q, have\n%s", i, want, strings.Join(s.finished, "\n"))
		}
	}

	const mib = 1 << 20
	sizes := []int64{40 * mib, 30 * mib, 10 * mib, 10 * mib, 6 * mib, 4 * mib}
	names := []string{"4.16.3-x86_64-etcd", "4.16.3-x86_64-installer", "4.16.3-x86_64", "4.16.3-x86_64-cli", "4.16.3-x86_64-etcd", "4.16.3-x86_64-console"}
	phase := d.Phase("fetch blobs", 100*mib, len(sizes))
	items := make([]mirror.ItemProgress, len(sizes))
	start := func(i int) {
		items[i] = phase.Item(mirror.ItemName(names[i], digest.Digest("sha256:"+fakeBlobHex(i))), sizes[i])
	}
	for i := range parallel {
		start(i)
	}
	s.advance(time.Second)
	items[0].Add(1 * mib)
	s.refresh()
	mustContain(t, "under 3% moved", s.overall("fetch blobs"), "1.0 MiB / 100.0 MiB", "0/6", "1.0 MiB/s", "ETA --")
	if s.rows() != parallel || !strings.Contains(s.live[1], "4.16.3-x86_64-etcd "+fakeBlobHex(0)[:12]) {
		t.Errorf("want %d rows, oldest first, named by image and short digest:\n%s", parallel, strings.Join(s.live, "\n"))
	}

	// 10 MiB (the third blob) done at 2 s; the fourth starts in its place.
	items[2].Add(10 * mib)
	items[2].Done(nil)
	start(3)
	items[0].Add(9 * mib)
	s.advance(time.Second)
	s.refresh()
	mustContain(t, "at 2s", s.overall("fetch blobs"), "20.0 MiB / 100.0 MiB", "1/6", "10.0 MiB/s", "ETA 8.0s")
	if strings.Contains(strings.Join(s.live, "\n"), "4.16.3-x86_64 "+fakeBlobHex(2)[:12]) {
		t.Errorf("a finished transfer is still shown:\n%s", strings.Join(s.live, "\n"))
	}
	if s.rows() > parallel {
		t.Errorf("%d rows, want at most %d", s.rows(), parallel)
	}

	// Two more seconds with nothing moving: the rate is the run's average
	// (20 MiB in 4 s), not a decayed rate of the last moments.
	s.advance(2 * time.Second)
	s.refresh()
	mustContain(t, "average", s.overall("fetch blobs"), "5.0 MiB/s", "ETA 16s")

	// A retry that read part of a blob again without a Reset, and a blob
	// added whole on top of what moved: neither passes its size.
	items[1].Add(20 * mib)
	items[1].Add(20 * mib)
	items[3].Add(10 * mib)
	items[3].Add(int(sizes[3]))
	items[3].Done(nil)
	s.refresh()
	mustContain(t, "clamped", s.overall("fetch blobs"), "60.0 MiB / 100.0 MiB", "2/6")
	mustContain(t, "clamped row", strings.Join(s.live, "\n"), "30.0 MiB / 30.0 MiB")

	// Nothing for progressStalledAfter + 5 s: stalled, no ETA.
	s.advance(progressStalledAfter + 5*time.Second)
	s.refresh()
	over := s.overall("fetch blobs")
	mustContain(t, "stalled", over, "stalled: no data for 20s")
	if strings.Contains(over, "ETA") {
		t.Errorf("stalled, yet an ETA: %q", over)
	}

	// A failed try is forgotten (Reset) and the rest finishes.
	items[0].Reset()
	items[0].Add(int(sizes[0]))
	items[0].Done(nil)
	items[1].Done(nil)
	start(4)
	start(5)
	for _, i := range []int{4, 5} {
		items[i].Add(int(sizes[i]))
		items[i].Done(nil)
	}
	s.advance(time.Second)
	phase.End()
	s.refresh()
	if len(s.live) != 0 {
		t.Errorf("after the last phase, live lines remain:\n%s", strings.Join(s.live, "\n"))
	}
	last := s.finished[len(s.finished)-1]
	if want := "✓ fetch blobs: 6 blobs, 100.0 MiB in 25s (4.0 MiB/s)"; last != want {
		t.Errorf("finished transfer line %q, want %q", last, want)
	}
	t.Logf("frames of a pack on a 100-column terminal:\n%s", strings.Join(s.frames, "\n\n----\n"))
}

// fakeBlobHex is a made-up blob digest, different for each i.
func fakeBlobHex(i int) string {
	return fmt.Sprintf("%02x", i) + strings.Repeat("3f2a1b9c", 8)[2:]
}

// TestProgressRowsAtMostParallel: more transfers in flight than --parallel
// (an engine that starts the next before the last is Done) show as
// --parallel rows and a count of the rest; a narrow terminal cuts lines.
func TestProgressRowsAtMostParallel(t *testing.T) {
	s := newScreen(t, 60, 2)
	phase := s.d.Phase("push blobs", 5000, 5)
	for i := range 5 {
		phase.Item(mirror.ItemName("4.16.3-x86_64-a-component-with-a-long-name", digest.Digest("sha256:"+fakeBlobHex(i))), 1000)
	}
	s.refresh()
	if s.rows() != 2 || !strings.Contains(s.live[len(s.live)-1], "… and 3 more") {
		t.Errorf("want 2 rows and a count of 3 more:\n%s", strings.Join(s.live, "\n"))
	}
	phase.End()
	s.refresh()
	mustContain(t, "a phase ended short", s.finished[0], "✗ push blobs: 0 of 5 blobs, 0 B of 4.9 KiB, stopped after")
}

// TestProgressStepFails: a failed step shows a cross, not its figure.
func TestProgressStepFails(t *testing.T) {
	s := newScreen(t, 80, 1)
	step := s.d.Step("applying to the cluster")
	s.advance(3 * time.Second)
	step.Done("4 objects", errors.New("forbidden"))
	s.refresh()
	if want := "✗ applying to the cluster: failed (3.0s)"; len(s.finished) != 1 || s.finished[0] != want {
		t.Errorf("finished %q, want %q", s.finished, want)
	}
}

// TestProgressLineSaysStalled: the plain progress line gives an ETA while
// bytes move and says "stalled" once none has moved for
// progressStalledAfter, rather than an ETA from a rate that is gone.
func TestProgressLineSaysStalled(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	x := &transferState{name: "fetch blobs", total: 1000, items: 2, start: t0, lastMove: t0.Add(10 * time.Second), bytes: 400}

	moving := x.statusLine(t0.Add(10*time.Second + progressStalledAfter - time.Second))
	if want := "fetch blobs: 400 B of 1000 B (40%), 0 of 2 blobs, 16 B/s, ETA 36s"; moving != want {
		t.Errorf("moving: %q, want %q", moving, want)
	}
	stalled := x.statusLine(t0.Add(60 * time.Second))
	if !strings.Contains(stalled, "stalled: no data for 50s") || strings.Contains(stalled, "ETA") {
		t.Errorf("stalled: %q; want how long nothing moved, no ETA", stalled)
	}
	x.bytes = 1000
	if done := x.statusLine(t0.Add(60 * time.Second)); strings.Contains(done, "stalled") {
		t.Errorf("finished: %q; nothing left to stall", done)
	}
}

// TestProgressPlainLines: in a log (not a terminal, or --json) a display
// prints one line per finished phase and nothing live.
func TestProgressPlainLines(t *testing.T) {
	s := newScreen(t, 80, 4)
	s.d.opts.plain = true
	phase := s.d.Phase("push blobs", 10, 1)
	s.d.Step("pushing 3 manifests").Done("3 pushed", nil)
	it := phase.Item("x", 10)
	it.Add(10)
	it.Done(nil)
	phase.End()
	s.refresh()
	if len(s.live) != 0 || len(s.finished) != 2 || !strings.HasPrefix(s.finished[0], "✓ pushing 3 manifests: 3 pushed") ||
		!strings.HasPrefix(s.finished[1], "✓ push blobs: 10 B in") {
		t.Errorf("finished %q, live %q", s.finished, s.live)
	}
}

// TestVerifyProgressTotal: the verify phase's total is what the scan
// counts (every byte of the volumes), so the bar ends at its total, and a
// scan that stops early ends the phase with a cross.
func TestVerifyProgressTotal(t *testing.T) {
	s := newScreen(t, 80, 1)
	progress, end := verifyProgress(s.d)
	progress(0, 3000)
	progress(2048, 3000)
	progress(3000, 3000)
	end(nil)
	s.refresh()
	if len(s.finished) != 1 || !strings.HasPrefix(s.finished[0], "✓ verify bundle: 2.9 KiB in") {
		t.Errorf("finished %q", s.finished)
	}
	progress, end = verifyProgress(s.d)
	progress(0, 3000)
	progress(1024, 3000)
	end(nil)
	s.refresh()
	if len(s.finished) != 2 || !strings.HasPrefix(s.finished[1], "✗ verify bundle: 1.0 KiB of 2.9 KiB, stopped after") {
		t.Errorf("finished %q", s.finished)
	}
}

// TestProgressRedrawsInPlace: on a terminal each frame goes back up over
// the live lines of the last one and clears them, and a log line written
// meanwhile lands above the live lines, not among them.
func TestProgressRedrawsInPlace(t *testing.T) {
	s := newScreen(t, 80, 2)
	var out bytes.Buffer
	s.d.out = &out
	phase := s.d.Phase("push blobs", 100, 2)
	phase.Item("a", 50)
	draw := func() string {
		out.Reset()
		s.d.mu.Lock()
		s.d.drawLocked()
		s.d.mu.Unlock()
		return out.String()
	}
	if first := draw(); !strings.HasPrefix(first, "\r\x1b[J⠋ push blobs") || strings.Count(first, "\n") != 2 {
		t.Errorf("first frame %q: want the overall line and one row, from a cleared line", first)
	}
	if second := draw(); !strings.HasPrefix(second, "\x1b[2A\r\x1b[J⠋ push blobs") {
		t.Errorf("second frame %q: want it to go up the 2 live lines first", second)
	}
	out.Reset()
	if _, err := s.d.Write([]byte("level=WARN msg=retrying\n")); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "\x1b[2A\r\x1b[Jlevel=WARN msg=retrying\n⠋ push blobs") {
		t.Errorf("a log line while drawing: %q; want it above the redrawn live lines", got)
	}
}
