package bundle

import (
	"encoding/hex"
	"fmt"
	"hash"
)

// Slot is a reserved entry whose data is written in place, in order, by
// one goroutine at a time; different slots may be filled concurrently.
// The data is hashed as it is written and checked by Commit.
type Slot struct {
	w      *Writer
	vol    *volume
	name   string
	offset int64
	size   int64
	want   string // expected sha256 hex, or empty

	h        hash.Hash
	n        int64
	overflow bool
	// handed is the volume offset up to which the data went to the
	// volume's cacheDropper; 0 before the first hand-on.
	handed int64

	// guarded by w.mu
	committed bool
	sum       string
}

// Name returns the entry's name.
func (s *Slot) Name() string { return s.name }

// Size returns the number of bytes reserved.
func (s *Slot) Size() int64 { return s.size }

// Write writes the next bytes of the entry. Writing past the reserved size
// writes nothing, returns an error and makes Commit fail until Reset.
func (s *Slot) Write(p []byte) (int, error) {
	if s.overflow || int64(len(p)) > s.size-s.n {
		s.overflow = true
		return 0, fmt.Errorf("writing %s: more than the %d bytes reserved", s.name, s.size)
	}
	n, err := s.vol.f.WriteAt(p, s.offset+s.n)
	s.h.Write(p[:n])
	s.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing %s to volume %s: %w", s.name, s.vol.name, err)
	}
	if s.offset+s.n-max(s.handed, s.offset) >= writebackChunk {
		return n, s.handOn(s.offset + s.n)
	}
	return n, nil
}

// handOn gives the whole pages of the data written up to volume offset
// end, and not handed on yet, to the volume's cacheDropper. A writeback
// failure fails the writer: the data may be lost, and the final fsync
// need not report it again.
func (s *Slot) handOn(end int64) error {
	if s.vol.cache == nil {
		return nil
	}
	sp := span{max(s.handed, pageUp(s.offset)), pageDown(end)}
	if sp.end <= sp.off {
		return nil
	}
	s.handed = sp.end
	if err := s.vol.cache.done(sp); err != nil {
		err = fmt.Errorf("writing %s to volume %s: %w", s.name, s.vol.name, err)
		s.w.mu.Lock()
		defer s.w.mu.Unlock()
		return s.w.fail(err)
	}
	return nil
}

// Reset rewinds the slot so that its data can be written again (a retried
// download); a committed slot becomes uncommitted.
func (s *Slot) Reset() {
	s.n = 0
	s.handed = 0
	s.overflow = false
	s.h.Reset()
	s.w.mu.Lock()
	s.committed = false
	s.w.mu.Unlock()
}

// Commit checks that exactly the reserved size was written and that its
// sha256 is the expected one, and marks the slot done. A failed Commit
// leaves the slot open for Reset and another try; a digest mismatch wraps
// ErrDigestMismatch.
func (s *Slot) Commit() error {
	if s.overflow {
		return fmt.Errorf("%s: more than the %d bytes reserved were written", s.name, s.size)
	}
	if s.n != s.size {
		return fmt.Errorf("%s: %d of %d bytes written", s.name, s.n, s.size)
	}
	sum := hex.EncodeToString(s.h.Sum(nil))
	if s.want != "" && sum != s.want {
		return fmt.Errorf("%s: %w: expected sha256 %s, got %s", s.name, ErrDigestMismatch, s.want, sum)
	}
	if err := s.handOn(s.offset + s.size); err != nil {
		return fmt.Errorf("committing %s: %w", s.name, err)
	}
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if err := s.w.usable(); err != nil {
		return fmt.Errorf("committing %s: %w", s.name, err)
	}
	s.committed, s.sum = true, sum
	return nil
}
