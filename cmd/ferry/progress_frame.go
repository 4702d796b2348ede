package main

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferryhq/ferry/internal/safetext"
)

// The marks of a phase line: a spinner while it runs, then a tick or a
// cross.
const (
	phaseDone   = "✓"
	phaseFailed = "✗"
)

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// spinnerStep is how long a spinner shows each frame: one frame per redraw.
const spinnerStep = terminalRefresh

// etaMinFraction is the share of the bytes that must have moved before an
// ETA is given: the first seconds (connections opening, the largest blobs
// only starting) say little about the rate of the rest.
const etaMinFraction = 0.03

// The overall bar takes what the line leaves, between these widths; a
// transfer row's bar is narrower, its name matters more.
const (
	minBarWidth     = 10
	maxBarWidth     = 30
	rowBarWidth     = 12
	maxRowNameWidth = 48
)

// spinner is the frame of a spinner started at start.
func spinner(now, start time.Time) string {
	n := int(max(now.Sub(start), 0) / spinnerStep)
	return spinnerFrames[n%len(spinnerFrames)]
}

// frame is the live part of the screen at now on a terminal width columns
// wide: the running steps, then the running transfer phase's overall line
// and its transfers in flight, oldest first, at most opts.rows of them.
func (d *display) frame(now time.Time, width int) []string {
	var lines []string
	for _, s := range d.steps {
		lines = append(lines, fit(spinner(now, s.start)+" "+safetext.Clean(s.name)+"  "+humanDuration(now.Sub(s.start)), width))
	}
	t := d.xfer
	if t == nil {
		return lines
	}
	lines = append(lines, t.overallLine(now, width))
	shown := t.inFlight[:min(len(t.inFlight), d.opts.rows)]
	for _, it := range shown {
		lines = append(lines, it.row(width))
	}
	if more := len(t.inFlight) - len(shown); more > 0 {
		lines = append(lines, fit(fmt.Sprintf("  … and %d more", more), width))
	}
	return lines
}

// moved is the bytes and items done, never past their totals.
func (t *transferState) moved() (int64, int) {
	return min(max(t.bytes, 0), t.total), min(t.done, t.items)
}

// rate is the phase's average since it began: bytes over time, not a
// decayed average of the last moments.
func (t *transferState) rate(now time.Time) float64 {
	done, _ := t.moved()
	elapsed := now.Sub(t.start).Seconds()
	if elapsed <= 0 {
		return 0
	}
	return float64(done) / elapsed
}

// eta is the time left at the average rate, how long nothing has moved
// once that is a stall, or "ETA --" while too little has moved to tell.
func (t *transferState) eta(now time.Time) string {
	done, _ := t.moved()
	if done >= t.total {
		return ""
	}
	if note := stalledNote(now, t.lastMove); note != "" {
		return note
	}
	rate := t.rate(now)
	if rate <= 0 || float64(done) < etaMinFraction*float64(t.total) {
		return "ETA --"
	}
	left := time.Duration(float64(t.total-done) / rate * float64(time.Second))
	return "ETA " + humanDuration(left)
}

// stalledNote says how long nothing has moved, or "" if something moved
// within progressStalledAfter.
func stalledNote(now, last time.Time) string {
	if idle := now.Sub(last); idle >= progressStalledAfter {
		return "stalled: no data for " + idle.Round(time.Second).String()
	}
	return ""
}

// overallLine is the running phase with its bar, bytes, items, average
// rate and ETA.
func (t *transferState) overallLine(now time.Time, width int) string {
	done, items := t.moved()
	head := spinner(now, t.start) + " " + t.name + " "
	tail := " " + formatBytes(done) + " / " + formatBytes(t.total)
	if t.items > 1 {
		tail += fmt.Sprintf("  %d/%d", items, t.items)
	}
	tail += "  " + formatBytes(int64(t.rate(now))) + "/s"
	if eta := t.eta(now); eta != "" {
		tail += "  " + eta
	}
	room := width - 1 - utf8.RuneCountInString(head) - utf8.RuneCountInString(tail)
	if room < minBarWidth {
		return fit(head+strings.TrimPrefix(tail, " "), width)
	}
	return fit(head+bar(done, t.total, min(room, maxBarWidth))+tail, width)
}

// row is one transfer in flight: its name, bar and bytes.
func (i *transferItem) row(width int) string {
	counts := fmt.Sprintf("%10s / %s", formatBytes(i.counted()), formatBytes(i.size))
	nameWidth := min(width-1-4-rowBarWidth-len(counts)-(10-len(formatBytes(i.size))), maxRowNameWidth)
	if nameWidth < 8 {
		return fit("  "+safetext.Clean(i.name), width)
	}
	name := fitMiddle(safetext.Clean(i.name), nameWidth)
	name += strings.Repeat(" ", nameWidth-utf8.RuneCountInString(name))
	return fit("  "+name+" "+bar(i.counted(), i.size, rowBarWidth)+" "+counts, width)
}

// doneLine is the finished phase: a tick with what moved and the rate, or
// a cross with how far it got.
func (t *transferState) doneLine(now time.Time) string {
	done, items := t.moved()
	elapsed := now.Sub(t.start)
	count := ""
	if t.items > 1 {
		count = fmt.Sprintf("%d blobs, ", items)
	}
	if t.failed == 0 && items >= t.items {
		return fmt.Sprintf("%s %s: %s%s in %s (%s/s)", phaseDone, t.name, count, formatBytes(done), humanDuration(elapsed),
			formatBytes(int64(t.rate(now))))
	}
	if t.items > 1 {
		count = fmt.Sprintf("%d of %d blobs, ", items, t.items)
	}
	return fmt.Sprintf("%s %s: %s%s of %s, stopped after %s", phaseFailed, t.name, count, formatBytes(done), formatBytes(t.total),
		humanDuration(elapsed))
}

// statusLine is the periodic line of a log: what moved, at what average
// rate, and the ETA or the stall.
func (t *transferState) statusLine(now time.Time) string {
	done, items := t.moved()
	pct := 100.0
	if t.total > 0 {
		pct = 100 * float64(done) / float64(t.total)
	}
	eta := t.eta(now)
	if eta == "" {
		eta = "done"
	}
	return fmt.Sprintf("%s: %s of %s (%.0f%%), %d of %d blobs, %s/s, %s", t.name, formatBytes(done), formatBytes(t.total),
		pct, items, t.items, formatBytes(int64(t.rate(now))), eta)
}

// instantStep is the time under which a finished step shows none: it did
// nothing worth timing (a figure worked out from what was known).
const instantStep = 50 * time.Millisecond

// stepLine is a finished step: a tick, its figure and the time it took, or
// a cross.
func stepLine(name, figure string, err error, elapsed time.Duration) string {
	line := phaseDone + " " + safetext.Clean(name)
	if err != nil {
		line = phaseFailed + " " + safetext.Clean(name) + ": failed"
	} else if figure != "" {
		line += ": " + safetext.Clean(figure)
	}
	if elapsed >= instantStep {
		line += " (" + humanDuration(elapsed) + ")"
	}
	return line
}

// bar draws done of total in width columns, brackets included.
func bar(done, total int64, width int) string {
	inner := width - 2
	filled := inner
	if total > 0 {
		filled = int(float64(inner) * float64(min(done, total)) / float64(total))
	}
	if filled >= inner {
		return "[" + strings.Repeat("=", inner) + "]"
	}
	return "[" + strings.Repeat("=", filled) + ">" + strings.Repeat(" ", inner-filled-1) + "]"
}

// humanDuration prints d as people read a time taken: tenths of a second
// while it is short, whole seconds after.
func humanDuration(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs", max(d, 0).Seconds())
	}
	return d.Round(time.Second).String()
}

// fit cuts s to a terminal line: one column short of width, since writing
// the last column makes some terminals wrap.
func fit(s string, width int) string {
	limit := max(width-1, 1)
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}

// fitMiddle cuts s to width by its middle, keeping the start (the image)
// and the end (the digest).
func fitMiddle(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	keepEnd := (width - 1) / 2
	return string(r[:width-1-keepEnd]) + "…" + string(r[len(r)-keepEnd:])
}
