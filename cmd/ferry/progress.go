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
	p       *mpb.Progress
	overall *mpb.Bar
}

func newBarProgress(w io.Writer, verb string, total int64) *barProgress {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))
	overall := p.AddBar(total, mpb.BarPriority(-1),
		mpb.PrependDecorators(decor.Name(verb+" ", decor.WC{W: 6}), decor.CountersKibiByte("% .1f / % .1f")),
		mpb.AppendDecorators(decor.EwmaSpeed(decor.SizeB1024(0), " % .1f", 30), decor.Name(" ETA "), decor.EwmaETA(decor.ET_STYLE_GO, 30)))
	return &barProgress{p: p, overall: overall}
}

func (b *barProgress) item(name string, size int64) progressItem {
	bar := b.p.AddBar(size, mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Name("  "+name, decor.WC{W: 16, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")))
	return &barItem{bar: bar, overall: b.overall, start: time.Now()}
}

func (b *barProgress) finish() {
	b.overall.SetTotal(-1, true)
	b.p.Wait()
}

type barItem struct {
	bar, overall *mpb.Bar
	written      int64
	start        time.Time
}

func (i *barItem) add(n int) {
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
	stop     chan struct{}
	wg       sync.WaitGroup
}

func newLineProgress(w io.Writer, verb string, total int64, items int) *lineProgress {
	l := &lineProgress{w: w, verb: verb, total: total, items: items, start: time.Now(), stop: make(chan struct{})}
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
		case <-t.C:
			l.print()
		}
	}
}

func (l *lineProgress) print() {
	done := l.bytes.Load()
	elapsed := time.Since(l.start)
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(l.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if l.total > 0 {
		pct = 100 * float64(done) / float64(l.total)
	}
	fmt.Fprintf(l.w, "%s: %s of %s (%.0f%%), %d of %d blobs, %s/s, ETA %s\n", l.verb, formatBytes(done), formatBytes(l.total),
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

func (i *lineItem) add(n int) { i.written += int64(n); i.l.bytes.Add(int64(n)) }
func (i *lineItem) reset()    { i.l.bytes.Add(-i.written); i.written = 0 }
func (i *lineItem) done(err error) {
	if err == nil {
		i.l.finished.Add(1)
	}
}
