package mirror

import "github.com/opencontainers/go-digest"

// Progress receives what a long operation is doing, as data: the library
// never draws. A command implements it (bars on a terminal, periodic lines
// otherwise); NoProgress discards it.
type Progress interface {
	// Phase begins a phase that moves bytes in items transfers, e.g.
	// ("push", 1<<30, 612). The caller Ends it.
	Phase(name string, bytes int64, items int) PhaseProgress
}

// PhaseProgress tracks one phase's transfers. Item may be called from many
// goroutines.
type PhaseProgress interface {
	// Item starts one transfer of size bytes, named for people.
	Item(name string, size int64) ItemProgress
	End()
}

// ItemProgress tracks one transfer; one goroutine at a time uses it.
type ItemProgress interface {
	// Add counts n more bytes moved.
	Add(n int)
	// Reset forgets what was moved: a retry starts over.
	Reset()
	// Done ends the transfer; err is nil on success.
	Done(err error)
}

// NoProgress discards every report.
var NoProgress Progress = noProgress{}

type noProgress struct{}

func (noProgress) Phase(string, int64, int) PhaseProgress { return noProgress{} }
func (noProgress) Item(string, int64) ItemProgress        { return noProgress{} }
func (noProgress) End()                                   {}
func (noProgress) Add(int)                                {}
func (noProgress) Reset()                                 {}
func (noProgress) Done(error)                             {}

// ShortDigest is the first 12 hex digits of d: how a progress line names a
// blob.
func ShortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}
