package main

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/mirror"
)

// plainProgressInterval is how often progress is printed when stderr is not
// a terminal: often enough to show life in a CI log, rarely enough to read.
const plainProgressInterval = 10 * time.Second

// progressStalledAfter is how long no byte may move before the progress
// says "stalled" instead of an ETA: longer than the pauses of a healthy
// transfer (opening the next blob, a short retry wait), well before
// --stall-timeout (1 min by default) gives up, so a user sees it coming.
const progressStalledAfter = 15 * time.Second

// terminalRefresh is how often the screen is redrawn on a terminal: fast
// enough for a spinner to turn smoothly, slow enough to cost nothing.
const terminalRefresh = 120 * time.Millisecond

// defaultTerminalWidth is the width assumed when the terminal cannot say:
// the classic 80 columns every terminal has.
const defaultTerminalWidth = 80

// displayOptions say how a display draws. Tests set every field; a zero
// refresh draws only when render is called (a manual refresh).
type displayOptions struct {
	now   func() time.Time
	width func() int
	// rows is the most transfers shown in flight (--parallel).
	rows int
	// plain prints a line per finished phase and a status line every
	// refresh instead of redrawing a screen.
	plain   bool
	refresh time.Duration
}

// display is the progress of one command: a line per phase, a spinner
// while it runs and a tick with its figure when done; under the running
// transfer phase one overall bar and a row per transfer in flight. It is a
// mirror.Progress and a mirror.Stepper; every method may be called from
// any goroutine.
type display struct {
	mu   sync.Mutex
	out  io.Writer
	opts displayOptions

	steps   []*stepState   // running, oldest first
	xfer    *transferState // the running transfer phase, or nil
	pending []string       // finished phase lines not yet written
	drawn   int            // live lines on the terminal now

	stop     chan struct{} // closes the redraw loop; nil when none runs
	loopDone chan struct{}
}

func newDisplay(out io.Writer, opts displayOptions) *display {
	if opts.rows < 1 {
		opts.rows = 1
	}
	return &display{out: out, opts: opts}
}

// setRows makes rows the most transfers shown in flight: each phase's
// --parallel.
func (d *display) setRows(rows int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opts.rows = max(rows, 1)
}

// Write prints p (log lines) above the live lines on a terminal, as is
// elsewhere.
func (d *display) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opts.plain || d.drawn == 0 {
		return d.out.Write(p)
	}
	d.pending = append(d.pending, strings.TrimSuffix(string(p), "\n"))
	d.drawLocked()
	return len(p), nil
}

// Step begins a step that moves no bytes of its own.
func (d *display) Step(name string) mirror.Step {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &stepState{d: d, name: name, start: d.opts.now()}
	d.steps = append(d.steps, s)
	d.startLoopLocked()
	return s
}

// Phase begins a phase that moves bytes in items transfers.
func (d *display) Phase(name string, bytes int64, items int) mirror.PhaseProgress {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.opts.now()
	t := &transferState{d: d, name: name, total: max(bytes, 0), items: items, start: now, lastMove: now}
	d.xfer = t
	d.startLoopLocked()
	return t
}

// finishLocked writes a finished phase's line and stops the redraw loop
// when nothing runs any more; the caller closes the returned channel (if
// any) and waits for the loop after unlocking.
func (d *display) finishLocked(line string) (stop, done chan struct{}) {
	d.pending = append(d.pending, line)
	if d.opts.refresh > 0 {
		d.drawLocked()
	}
	if len(d.steps) > 0 || d.xfer != nil || d.stop == nil {
		return nil, nil
	}
	stop, done = d.stop, d.loopDone
	d.stop, d.loopDone = nil, nil
	return stop, done
}

// stopLoop ends the redraw loop finishLocked detached.
func stopLoop(stop, done chan struct{}) {
	if stop != nil {
		close(stop)
		<-done
	}
}

// startLoopLocked starts redrawing (a terminal) or printing status lines
// (a log) while something runs; a zero refresh is a test's manual one.
func (d *display) startLoopLocked() {
	if d.stop != nil || d.opts.refresh <= 0 {
		return
	}
	d.stop, d.loopDone = make(chan struct{}), make(chan struct{})
	go d.loop(d.stop, d.loopDone)
}

func (d *display) loop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(d.opts.refresh)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			d.mu.Lock()
			if d.opts.plain {
				if d.xfer != nil {
					_, _ = io.WriteString(d.out, d.xfer.statusLine(d.opts.now())+"\n")
				}
			} else {
				d.drawLocked()
			}
			d.mu.Unlock()
		}
	}
}

// render returns the finished phase lines not yet written and the live
// lines under them, as they stand now.
func (d *display) render() (finished, live []string) {
	finished, d.pending = d.pending, nil
	if d.opts.plain {
		return finished, nil
	}
	return finished, d.frame(d.opts.now(), d.opts.width())
}

// drawLocked writes what render returns: on a terminal over the live
// lines drawn last, in a log only the finished lines.
func (d *display) drawLocked() {
	finished, live := d.render()
	var b strings.Builder
	if !d.opts.plain {
		if d.drawn > 0 {
			b.WriteString("\x1b[" + strconv.Itoa(d.drawn) + "A") // up to the first live line
		}
		b.WriteString("\r\x1b[J") // and clear from there down
	}
	for _, l := range finished {
		b.WriteString(l + "\n")
	}
	for _, l := range live {
		b.WriteString(l + "\n")
	}
	d.drawn = len(live)
	_, _ = io.WriteString(d.out, b.String())
}

// stepState is a running step.
type stepState struct {
	d     *display
	name  string
	start time.Time
}

func (s *stepState) Done(figure string, err error) {
	d := s.d
	d.mu.Lock()
	for i, r := range d.steps {
		if r == s {
			d.steps = append(d.steps[:i], d.steps[i+1:]...)
			break
		}
	}
	stop, done := d.finishLocked(stepLine(s.name, figure, err, d.opts.now().Sub(s.start)))
	d.mu.Unlock()
	stopLoop(stop, done)
}

// transferState is the running transfer phase. bytes counts each item up
// to its size only, so it never passes total however an engine counts
// (a retry read again, a skipped blob added whole).
type transferState struct {
	d               *display
	name            string
	total           int64
	items           int
	start, lastMove time.Time
	bytes           int64
	done, failed    int
	inFlight        []*transferItem // oldest first
}

func (t *transferState) Item(name string, size int64) mirror.ItemProgress {
	d := t.d
	d.mu.Lock()
	defer d.mu.Unlock()
	it := &transferItem{t: t, name: name, size: max(size, 0)}
	t.inFlight = append(t.inFlight, it)
	return it
}

func (t *transferState) End() {
	d := t.d
	d.mu.Lock()
	if d.xfer == t {
		d.xfer = nil
	}
	stop, done := d.finishLocked(t.doneLine(d.opts.now()))
	d.mu.Unlock()
	stopLoop(stop, done)
}

// transferItem is one transfer of a phase.
type transferItem struct {
	t           *transferState
	name        string
	size, moved int64
	ended       bool
}

// counted is what the item adds to its phase's bytes: what it moved, up to
// its size.
func (i *transferItem) counted() int64 { return min(i.moved, i.size) }

func (i *transferItem) Add(n int) {
	d := i.t.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if i.ended || n <= 0 {
		return
	}
	before := i.counted()
	i.moved += int64(n)
	i.t.bytes += i.counted() - before
	i.t.lastMove = d.opts.now()
}

func (i *transferItem) Reset() {
	d := i.t.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if i.ended {
		return
	}
	i.t.bytes -= i.counted()
	i.moved = 0
}

// Done takes the item off the screen; a finished item counts whole, a
// failed one what it moved.
func (i *transferItem) Done(err error) {
	d := i.t.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if i.ended {
		return
	}
	i.ended = true
	t := i.t
	if err == nil {
		t.bytes += i.size - i.counted()
		t.done++
	} else {
		t.failed++
	}
	for k, f := range t.inFlight {
		if f == i {
			t.inFlight = append(t.inFlight[:k], t.inFlight[k+1:]...)
			break
		}
	}
}
