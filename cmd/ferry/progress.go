package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// plainProgressInterval is how often progress is printed when stderr is not
// a terminal: often enough to show life in a CI log, rarely enough to read.
const plainProgressInterval = 10 * time.Second

// progressStalledAfter is how long no byte may move before the progress
// says "stalled" instead of an ETA: longer than the pauses of a healthy
// transfer (opening the next blob, a short retry wait), well before
// --stall-timeout (1 min by default) gives up, so a user sees it coming.
const progressStalledAfter = 15 * time.Second

// progress reports a long transfer: bars on a terminal, periodic lines
// otherwise, nothing with --quiet.
type progress interface {
	// item starts one blob's line.
	item(name string, size int64) progressItem
	finish()
}

type progressItem interface {
	add(n int)
	// reset forgets what this item has transferred (a retry starts over).
	reset()
	done(err error)
}

func newProgress(env *environment, quiet bool, verb string, total int64, items int) progress {
	if quiet {
		return silentProgress{}
	}
	if f, ok := env.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return newBarProgress(f, verb, total)
	}
	return newLineProgress(env.stderr, verb, total, items)
}

type silentProgress struct{}

func (silentProgress) item(string, int64) progressItem { return silentItem{} }
func (silentProgress) finish()                         {}

type silentItem struct{}

func (silentItem) add(int)    {}
func (silentItem) reset()     {}
func (silentItem) done(error) {}

// barProgress draws an overall bar with rate and ETA, and one line per blob
// in flight.
type barProgress struct {
	p        *mpb.Progress
	overall  *mpb.Bar
	lastMove *lastMove
}

func newBarProgress(w io.Writer, verb string, total int64) *barProgress {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))
	last := newLastMove(time.Now())
	eta := stalledOr{Decorator: decor.EwmaETA(decor.ET_STYLE_GO, 30), last: last, now: time.Now}
	overall := p.AddBar(total, mpb.BarPriority(-1),
		mpb.PrependDecorators(decor.Name(verb+" ", decor.WC{W: 6}), decor.CountersKibiByte("% .1f / % .1f")),
		mpb.AppendDecorators(decor.EwmaSpeed(decor.SizeB1024(0), " % .1f", 30), decor.Name(" ETA "), eta))
	return &barProgress{p: p, overall: overall, lastMove: last}
}

// lastMove is when a byte last moved, for telling a stall from a pause.
type lastMove struct{ unixNano atomic.Int64 }

func newLastMove(t time.Time) *lastMove {
	l := &lastMove{}
	l.set(t)
	return l
}

func (l *lastMove) set(t time.Time) { l.unixNano.Store(t.UnixNano()) }
func (l *lastMove) get() time.Time  { return time.Unix(0, l.unixNano.Load()) }

// stalledNote says how long nothing has moved, or "" if something moved
// within progressStalledAfter.
func stalledNote(now, last time.Time) string {
	if idle := now.Sub(last); idle >= progressStalledAfter {
		return "stalled: no data for " + idle.Round(time.Second).String()
	}
	return ""
}

// stalledOr shows the wrapped decorator (the ETA) unless the transfer has
// stalled: an ETA computed from bytes that stopped moving is invented.
type stalledOr struct {
	decor.Decorator
	last *lastMove
	now  func() time.Time
}

func (d stalledOr) Decor(s decor.Statistics) (string, int) {
	if note := stalledNote(d.now(), d.last.get()); note != "" && !s.Completed && !s.Aborted {
		return d.Format(note)
	}
	return d.Decorator.Decor(s)
}

// Unwrap lets mpb find the EWMA decorator underneath to feed it.
func (d stalledOr) Unwrap() decor.Decorator { return d.Decorator }

func (b *barProgress) item(name string, size int64) progressItem {
	bar := b.p.AddBar(size, mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Name("  "+name, decor.WC{W: 16, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")))
	return &barItem{bar: bar, overall: b.overall, start: time.Now(), lastMove: b.lastMove}
}

func (b *barProgress) finish() {
	b.overall.SetTotal(-1, true)
	b.p.Wait()
}

type barItem struct {
	bar, overall *mpb.Bar
	written      int64
	start        time.Time
	lastMove     *lastMove
}

func (i *barItem) add(n int) {
	if n > 0 {
		i.lastMove.set(time.Now())
	}
	i.written += int64(n)
	i.bar.IncrBy(n)
	i.overall.EwmaIncrBy(n, time.Since(i.start))
	i.start = time.Now()
}

func (i *barItem) reset() {
	i.overall.IncrInt64(-i.written)
	i.written = 0
	i.bar.SetCurrent(0)
}

func (i *barItem) done(err error) {
	if err != nil {
		i.bar.Abort(true)
		return
	}
	i.bar.SetTotal(-1, true)
}

// lineProgress prints one status line every plainProgressInterval.
type lineProgress struct {
	w        io.Writer
	verb     string
	total    int64
	items    int
	bytes    atomic.Int64
	finished atomic.Int64
	start    time.Time
	lastMove *lastMove
	stop     chan struct{}
	wg       sync.WaitGroup
}

func newLineProgress(w io.Writer, verb string, total int64, items int) *lineProgress {
	now := time.Now()
	l := &lineProgress{w: w, verb: verb, total: total, items: items, start: now, lastMove: newLastMove(now), stop: make(chan struct{})}
	l.wg.Add(1)
	go l.loop()
	return l
}

func (l *lineProgress) loop() {
	defer l.wg.Done()
	t := time.NewTicker(plainProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-t.C:
			fmt.Fprintln(l.w, l.status(now))
		}
	}
}

// status is the line printed at now: what moved, at what average rate, and
// the ETA, or how long nothing has moved once that is long enough to be a
// stall rather than a pause.
func (l *lineProgress) status(now time.Time) string {
	done := l.bytes.Load()
	elapsed := now.Sub(l.start)
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	eta := "ETA ?"
	if note := stalledNote(now, l.lastMove.get()); note != "" && done < l.total {
		eta = note
	} else if rate > 0 {
		eta = "ETA " + time.Duration(float64(l.total-done)/rate*float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if l.total > 0 {
		pct = 100 * float64(done) / float64(l.total)
	}
	return fmt.Sprintf("%s: %s of %s (%.0f%%), %d of %d blobs, %s/s, %s", l.verb, formatBytes(done), formatBytes(l.total),
		pct, l.finished.Load(), l.items, formatBytes(int64(rate)), eta)
}

func (l *lineProgress) item(string, int64) progressItem { return &lineItem{l: l} }

func (l *lineProgress) finish() {
	close(l.stop)
	l.wg.Wait()
}

type lineItem struct {
	l       *lineProgress
	written int64
}

func (i *lineItem) add(n int) {
	if n > 0 {
		i.l.lastMove.set(time.Now())
	}
	i.written += int64(n)
	i.l.bytes.Add(int64(n))
}
func (i *lineItem) reset() { i.l.bytes.Add(-i.written); i.written = 0 }
func (i *lineItem) done(err error) {
	if err == nil {
		i.l.finished.Add(1)
	}
}
