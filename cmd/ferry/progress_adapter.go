package main

import (
	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror"
)

// engineProgress draws an engine's mirror.Progress with the CLI's progress
// (bars on a terminal, periodic lines otherwise, nothing with --quiet),
// which starts when the engine says how much it will move.
type engineProgress struct {
	env   *environment
	quiet bool
	verb  string
	drawn progress // set by Start
}

func newEngineProgress(env *environment, quiet bool, verb string) *engineProgress {
	return &engineProgress{env: env, quiet: quiet, verb: verb}
}

func (e *engineProgress) Start(total int64, items int) {
	e.drawn = newProgress(e.env, e.quiet, e.verb, total, items)
}

func (e *engineProgress) Item(name string, size int64) mirror.ProgressItem {
	return engineItem{e.drawn.item(name, size)}
}

func (e *engineProgress) Finish() { e.drawn.finish() }

// engineItem is one line of an engineProgress.
type engineItem struct{ line progressItem }

func (i engineItem) Add(n int)      { i.line.add(n) }
func (i engineItem) Reset()         { i.line.reset() }
func (i engineItem) Done(err error) { i.line.done(err) }

// shortDigest is the first 12 hex digits of d, for a progress line.
func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}
