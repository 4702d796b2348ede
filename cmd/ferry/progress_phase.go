package main

import "github.com/ferryhq/ferry/mirror"

// phaseProgress draws the library's progress reports with the CLI's
// progress (bars on a terminal, periodic lines otherwise, nothing with
// --quiet).
type phaseProgress struct {
	env   *environment
	quiet bool
}

func newPhaseProgress(env *environment, quiet bool) mirror.Progress {
	return phaseProgress{env: env, quiet: quiet}
}

func (p phaseProgress) Phase(name string, bytes int64, items int) mirror.PhaseProgress {
	return phaseDrawing{newProgress(p.env, p.quiet, name, bytes, items)}
}

type phaseDrawing struct{ p progress }

func (d phaseDrawing) Item(name string, size int64) mirror.ItemProgress {
	return itemDrawing{d.p.item(name, size)}
}

func (d phaseDrawing) End() { d.p.finish() }

type itemDrawing struct{ i progressItem }

func (d itemDrawing) Add(n int)      { d.i.add(n) }
func (d itemDrawing) Reset()         { d.i.reset() }
func (d itemDrawing) Done(err error) { d.i.done(err) }
