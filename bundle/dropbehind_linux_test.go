package bundle

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// TestWriterBoundsPageCache writes more than cacheWindow through
// concurrent slots (one of them reset half-way, as a retried download)
// and checks that the volume keeps at most cacheWindow of whole pages in
// the page cache once the slots are committed, and that what reached the
// disk is what was written.
func TestWriterBoundsPageCache(t *testing.T) {
	const (
		slots    = 4
		slotSize = cacheWindow / 2 // twice the window in all
	)
	path := filepath.Join(t.TempDir(), "bundle.tar")
	w, err := Create(path, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Abort() }()
	var g errgroup.Group
	for i := range slots {
		s, err := w.Reserve(fmt.Sprintf("mirror/test/%d", i), slotSize+int64(i)*1001, "")
		if err != nil {
			t.Fatal(err)
		}
		g.Go(func() error {
			if i == 0 {
				if err := writeRandom(s, uint64(i), s.Size()/2); err != nil {
					return err
				}
				s.Reset()
			}
			if err := writeRandom(s, uint64(i), s.Size()); err != nil {
				return err
			}
			return s.Commit()
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	cached := residentBytes(t, path+partialSuffix)
	// Besides the window: the pages each entry shares with a header or a
	// neighbour, and the volume's start.
	if limit := int64(cacheWindow + (slots+2)*2*os.Getpagesize()); cached > limit {
		t.Errorf("%d bytes of the volume are in the page cache after writing %d; want at most %d", cached, slots*slotSize, limit)
	}
	if err := w.Finish(&Index{Tool: Tool{Name: "ferry"}}); err != nil {
		t.Fatal(err)
	}
	rep, err := openVerify(t, path, ReadOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v, %+v", err, rep)
	}
}

// writeRandom writes n bytes of a random megabyte, again and again, into
// s, in writes that are not multiples of a page.
func writeRandom(s *Slot, seed uint64, n int64) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	buf := make([]byte, 1<<20)
	for i := 0; i+8 <= len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
	}
	for n > 0 {
		chunk := buf[:min(n, int64(len(buf)-rng.IntN(5000)))]
		if _, err := s.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

// residentBytes is how much of the file at path is in the page cache.
func residentBytes(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(m) }()
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatalf("mincore %s: %v", path, errno)
	}
	var n int64
	for _, v := range vec {
		if v&1 != 0 {
			n += int64(page)
		}
	}
	return n
}
