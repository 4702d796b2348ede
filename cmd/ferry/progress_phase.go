package main

import (
	"errors"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/ferryhq/ferry/mirror"
)

// progressMode is how a command shows its progress.
type progressMode int

const (
	// progressAuto redraws a screen on a terminal, prints lines otherwise.
	progressAuto progressMode = iota
	// progressPlain prints lines, for --json: whatever reads the output
	// is a program, and a redrawn screen is noise in a log.
	progressPlain
	// progressSilent shows nothing (--quiet).
	progressSilent
)

// progressFor is the mode the --quiet and --json flags ask for.
func progressFor(quiet, asJSON bool) progressMode {
	switch {
	case quiet:
		return progressSilent
	case asJSON:
		return progressPlain
	}
	return progressAuto
}

// newPhaseProgress is the command's progress display, drawing on stderr
// what the library reports: one display per run, shared by every phase so
// that they stack on one screen; rows is --parallel, the most transfers in
// flight at once.
func newPhaseProgress(env *environment, mode progressMode, rows int) mirror.Progress {
	if mode == progressSilent {
		return mirror.NoProgress
	}
	if d := env.display.Load(); d != nil {
		d.setRows(rows)
		return d
	}
	opts := displayOptions{now: time.Now, width: func() int { return defaultTerminalWidth }, rows: rows, plain: true,
		refresh: plainProgressInterval}
	if f, ok := env.stderr.(*os.File); ok && mode == progressAuto && term.IsTerminal(int(f.Fd())) {
		opts.plain, opts.refresh = false, terminalRefresh
		opts.width = func() int {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
				return w
			}
			return defaultTerminalWidth
		}
	}
	d := newDisplay(env.stderr, opts)
	env.display.Store(d)
	return d
}

// beginStep shows a step of the command's own (resolving, rendering) on
// its progress display.
func beginStep(p mirror.Progress, name string) mirror.Step { return mirror.BeginStep(p, name) }

// verifyProgress reports a bundle's verification as one transfer phase;
// the caller calls end with Verify's error once it returns. The phase's
// total is the one the scan reports, every byte of the volumes (tar
// headers, padding and the index included), not the sum of the index's
// files: that is smaller than what the scan counts, so the bar ended past
// its total (303.3 MiB / 303.0 MiB).
func verifyProgress(p mirror.Progress) (progress func(done, total int64), end func(error)) {
	var phase mirror.PhaseProgress
	var item mirror.ItemProgress
	var last, size int64
	progress = func(done, total int64) {
		if phase == nil {
			phase, size = p.Phase("verify bundle", total, 1), total
			item = phase.Item("bundle", total)
		}
		item.Add(int(done - last))
		last = done
	}
	end = func(err error) {
		if phase == nil {
			return
		}
		if err == nil && last < size {
			err = errors.New("the scan stopped early")
		}
		item.Done(err)
		phase.End()
	}
	return progress, end
}

// logOutput is stderr for the log: through the progress display once there
// is one, so that on a terminal a log line lands above the live lines
// rather than in them.
type logOutput struct{ env *environment }

func (l logOutput) Write(p []byte) (int, error) {
	if d := l.env.display.Load(); d != nil {
		return d.Write(p)
	}
	return l.env.stderr.Write(p)
}
