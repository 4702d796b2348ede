package mirror

import (
	"path"

	"github.com/opencontainers/go-digest"
)

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

// Stepper is the optional capability of a Progress to show the steps of
// an operation that move no bytes of their own (resolving, walking,
// pushing manifests), each a line that ends with what it came to.
type Stepper interface {
	// Step begins a step, named for people as what it does ("walking
	// release 4.16.3-x86_64"). The caller ends it with Done.
	Step(name string) Step
}

// Step is one step under way.
type Step interface {
	// Done ends the step with what it came to ("190 components, 612
	// blobs"); err is nil on success, and then figure is shown.
	Done(figure string, err error)
}

// BeginStep begins a step on p when p can show steps; otherwise (nil, or
// a Progress without Stepper) the step is not shown.
func BeginStep(p Progress, name string) Step {
	if s, ok := p.(Stepper); ok {
		return s.Step(name)
	}
	return noStep{}
}

type noStep struct{}

func (noStep) Done(string, error) {}

// BlobOwner is an image as the progress of its blobs names it.
type BlobOwner struct {
	// Name is how people know the image: its first tag (a component's tag
	// ends in its name), else its repository's last element.
	Name     string
	Children []digest.Digest
	Blobs    []digest.Digest
	Digest   digest.Digest
}

// OwnerName is a BlobOwner's Name for an image of repository with tags.
func OwnerName(repository string, tags []string) string {
	if len(tags) > 0 {
		return tags[0]
	}
	return path.Base(repository)
}

// BlobOwners names every blob of owners after the first image it belongs
// to; a manifest list's children without a name of their own take the
// list's.
func BlobOwners(owners []BlobOwner) map[digest.Digest]string {
	parent := map[digest.Digest]string{}
	for _, o := range owners {
		for _, c := range o.Children {
			if _, ok := parent[c]; !ok {
				parent[c] = o.Name
			}
		}
	}
	names := map[digest.Digest]string{}
	for _, o := range owners {
		name := o.Name
		if p, ok := parent[o.Digest]; ok {
			name = p
		}
		for _, b := range o.Blobs {
			if _, ok := names[b]; !ok {
				names[b] = name
			}
		}
	}
	return names
}

// ItemName is how a progress line names a blob: the image it belongs to
// and its short digest, or the short digest alone.
func ItemName(owner string, d digest.Digest) string {
	if owner == "" {
		return ShortDigest(d)
	}
	return owner + " " + ShortDigest(d)
}

// ShortDigest is the first 12 hex digits of d: how a progress line names a
// blob.
func ShortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}
