package bundle

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

const (
	// verifyConcurrency bounds the volumes hashed at once: enough to keep a
	// few disks or CPU cores busy, few enough not to thrash one disk.
	verifyConcurrency = 4
	// maxFaults caps a report: past that the bundle is plainly broken and
	// a hostile one must not make the report grow without bound.
	maxFaults = 1000
	// progressStep is how many bytes pass between progress calls.
	progressStep = 4 << 20
	// scanBufferSize is the read buffer per volume being verified.
	scanBufferSize = 1 << 20
	// sideHashMin is the smallest entry hashed beside the scan, from the
	// volume at its offset, by one of GOMAXPROCS hashers: sha256 is most
	// of a verify's CPU, and one scan would hash on one core only. The
	// scan skips such an entry's data (scanReader.Seek): it checks the
	// tar around it, and every byte is still read once.
	sideHashMin = 1 << 20
	// sideHashBuffer is each side hasher's read buffer.
	sideHashBuffer = 256 << 10
)

// Fault is one problem found by Verify.
type Fault struct {
	// Volume is the volume's number, -1 when the fault is about the
	// bundle's content rather than a place in a volume.
	Volume     int
	VolumeName string
	// File is the entry or file concerned, if any.
	File string
	// Offset is the byte position in the volume, -1 when unknown.
	Offset int64
	Msg    string
}

func (f Fault) String() string {
	var b strings.Builder
	if f.Volume >= 0 {
		fmt.Fprintf(&b, "volume %d (%s)", f.Volume, f.VolumeName)
		if f.Offset >= 0 {
			fmt.Fprintf(&b, " at offset %d", f.Offset)
		}
		b.WriteString(": ")
	}
	if f.File != "" {
		// Names from a hostile tar may hold anything; show them escaped.
		if q := strconv.Quote(f.File); q[1:len(q)-1] != f.File {
			b.WriteString(q)
		} else {
			b.WriteString(f.File)
		}
		b.WriteString(": ")
	}
	b.WriteString(f.Msg)
	return b.String()
}

// Report is the outcome of Verify: every fault found, not just the first.
type Report struct {
	Volumes int
	// Files is the number of files whose bytes were hashed and matched.
	Files int
	// Bytes is the number of bytes read.
	Bytes  int64
	Faults []Fault
	// Omitted counts the faults left out past the report's cap.
	Omitted int
}

// OK reports whether no fault was found.
func (r *Report) OK() bool { return len(r.Faults) == 0 && r.Omitted == 0 }

// Err returns nil for a sound bundle, else an error listing the faults.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "bundle verification failed with %d faults:", len(r.Faults)+r.Omitted)
	for _, f := range r.Faults {
		b.WriteString("\n  ")
		b.WriteString(f.String())
	}
	if r.Omitted > 0 {
		fmt.Fprintf(&b, "\n  ... and %d more", r.Omitted)
	}
	return errors.New(b.String())
}

func (r *Report) add(f Fault) {
	if len(r.Faults) >= maxFaults {
		r.Omitted++
		return
	}
	r.Faults = append(r.Faults, f)
}

// Verify reads every volume as a tar stream and checks it against the
// index (docs/design.md, "Verifying"), then checks that every manifest
// parses and references only blobs that are present. Volumes are read
// concurrently, each once, with one buffer each. progress, if not nil, is
// called (never concurrently) with the bytes read so far and the total.
// The error is only for a cancelled ctx; faults are in the Report.
func (r *Reader) Verify(ctx context.Context, progress func(done, total int64)) (*Report, error) {
	prog := &progressTracker{fn: progress}
	for _, v := range r.vols {
		prog.total += v.size
	}
	prog.flush()
	results := make([]*volumeScan, len(r.vols))
	hashers := newSideHashers(runtime.GOMAXPROCS(0))
	var g errgroup.Group
	g.SetLimit(verifyConcurrency)
	for i := range r.vols {
		g.Go(func() error {
			results[i] = r.scanVolume(ctx, i, prog, hashers)
			return nil
		})
	}
	_ = g.Wait() // scans report faults, not errors
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("verifying bundle: %w", err)
	}
	prog.flush()
	rep := &Report{Volumes: len(r.vols), Bytes: prog.done}
	for _, s := range results {
		rep.Files += s.files
		for _, f := range s.faults {
			rep.add(f)
		}
		rep.Omitted += s.omitted
	}
	r.checkContent(rep)
	return rep, nil
}

// progressTracker serialises progress calls from the volume scans.
type progressTracker struct {
	fn          func(done, total int64)
	mu          sync.Mutex
	total, done int64
	last        int64
}

func (p *progressTracker) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.fn != nil && p.done-p.last >= progressStep {
		p.last = p.done
		p.fn(p.done, p.total)
	}
}

// flush reports the current state whatever the step.
func (p *progressTracker) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fn != nil {
		p.last = p.done
		p.fn(p.done, p.total)
	}
}

// scanReader counts the bytes tar.Reader consumes (so the position after a
// header is its data's offset), stops on cancellation, and checks that the
// bytes of a watched range, the padding no checksum covers, are zero.
type scanReader struct {
	ctx  context.Context
	r    *bufio.Reader
	prog *progressTracker
	n    int64
	// f and size are the volume, where Seek moves the stream to.
	f    io.ReaderAt
	size int64

	zeroFrom, zeroTo int64
	nonZeroAt        int64 // first non-zero byte in the watched range, or -1

	// The header blocks of the next entry, captured from recFrom, so that
	// the padding of PAX records (which tar.Reader skips) can be checked.
	recFrom int64
	rec     []byte
}

// Seek moves the stream on: tar.Reader skips the data of an entry nobody
// read this way (an entry hashed beside the scan, unlisted, or faulted),
// reading only its last byte, and then its padding, which Read still
// checks. Only SeekCurrent forwards, which is all tar.Reader asks.
func (c *scanReader) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 || c.n > math.MaxInt64-offset {
		return c.n, errors.New("scan: only forward seeks from the current position")
	}
	to := c.n + offset
	if skip := to - c.n; skip <= int64(c.r.Buffered()) {
		_, _ = c.r.Discard(int(skip)) // buffered: cannot fail
	} else {
		from := min(to, c.size)
		c.r.Reset(io.NewSectionReader(c.f, from, c.size-from))
	}
	c.prog.add(max(min(to, c.size)-c.n, 0))
	c.n = to
	return c.n, nil
}

func (c *scanReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.checkZeros(p[:n])
	c.capture(p[:n])
	c.n += int64(n)
	c.prog.add(int64(n))
	return n, err
}

// maxHeaderCapture bounds the header bytes kept per entry; ferry's own
// extended headers take one or two blocks.
const maxHeaderCapture = 64 << 10

func (c *scanReader) capture(p []byte) {
	end := c.n + int64(len(p))
	if end <= c.recFrom || len(c.rec) >= maxHeaderCapture {
		return
	}
	start := max(c.recFrom+int64(len(c.rec))-c.n, 0)
	if start >= int64(len(p)) {
		return
	}
	take := p[start:]
	if room := maxHeaderCapture - len(c.rec); len(take) > room {
		take = take[:room]
	}
	c.rec = append(c.rec, take...)
}

// record starts capturing the header blocks that begin at from.
func (c *scanReader) record(from int64) {
	c.recFrom, c.rec = from, c.rec[:0]
}

// extHeaderPadding returns the position of a non-zero byte in the padding
// of the extended headers (PAX, GNU long names) that open a captured header
// region, or -1.
func extHeaderPadding(region []byte, at int64) int64 {
	for len(region) > blockSize {
		switch region[156] { // typeflag
		case tar.TypeXHeader, tar.TypeXGlobalHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		default:
			return -1
		}
		size, err := strconv.ParseInt(strings.Trim(string(region[124:136]), " \x00"), 8, 64)
		if err != nil || size < 0 || blockSize+paddedSize(size) > int64(len(region)) {
			return -1
		}
		for i := blockSize + size; i < blockSize+paddedSize(size); i++ {
			if region[i] != 0 {
				return at + i
			}
		}
		next := blockSize + paddedSize(size)
		region, at = region[next:], at+next
	}
	return -1
}

func (c *scanReader) checkZeros(p []byte) {
	lo, hi := max(c.n, c.zeroFrom), min(c.n+int64(len(p)), c.zeroTo)
	for i := lo; i < hi && c.nonZeroAt < 0; i++ {
		if p[i-c.n] != 0 {
			c.nonZeroAt = i
		}
	}
}

// watch makes [from, to) the range that must be zero.
func (c *scanReader) watch(from, to int64) {
	c.zeroFrom, c.zeroTo, c.nonZeroAt = from, to, -1
}

// volumeScan is the state of one volume's verification.
type volumeScan struct {
	r        *Reader
	num      int
	v        *openVolume
	expected map[string]File  // the files the index puts in this volume
	seen     map[string]int64 // listed names found, and where
	faults   []Fault
	omitted  int
	files    int
	sawIndex bool
	// sawIndexSig: the index signature was seen, after the index
	sawIndexSig bool
	buf         []byte
	// ctx ends the side hashes; hashers are the Verify's side hashers,
	// sideHashes those of this volume's entries, in entry order.
	ctx        context.Context
	hashers    sideHashers
	sideHashes []*sideHash
	hashing    sync.WaitGroup
}

func (s *volumeScan) fault(file string, off int64, format string, args ...any) {
	if len(s.faults) >= maxFaults {
		s.omitted++
		return
	}
	s.faults = append(s.faults, Fault{Volume: s.num, VolumeName: s.r.idx.Volumes[s.num].Name,
		File: file, Offset: off, Msg: fmt.Sprintf(format, args...)})
}

func (r *Reader) scanVolume(ctx context.Context, num int, prog *progressTracker, hashers sideHashers) *volumeScan {
	s := &volumeScan{r: r, num: num, v: r.vols[num], expected: map[string]File{}, seen: map[string]int64{},
		ctx: ctx, hashers: hashers}
	for _, f := range r.idx.Files {
		if f.Volume == num {
			s.expected[f.Name] = f
		}
	}
	if want := r.idx.Volumes[num].Size; num > 0 && want != s.v.size {
		s.fault("", -1, "the volume is %d bytes, the index says %d", s.v.size, want)
	}
	cr := &scanReader{ctx: ctx, prog: prog, nonZeroAt: -1, f: s.v.f, size: s.v.size,
		r: bufio.NewReaderSize(io.NewSectionReader(s.v.f, 0, s.v.size), scanBufferSize)}
	complete := s.scanEntries(cr)
	s.settleSideHashes()
	if ctx.Err() != nil {
		return s
	}
	s.reportMissing(complete)
	return s
}

// scanEntries reads the tar stream to its end and reports whether it was
// read to a proper end of archive.
func (s *volumeScan) scanEntries(cr *scanReader) bool {
	tr := tar.NewReader(cr)
	var lastEnd int64
	lastName := ""
	for {
		hdr, err := tr.Next()
		s.checkPadding(cr, lastName)
		if err == io.EOF {
			s.checkEnd(cr, lastEnd)
			return true
		}
		if err != nil {
			if cr.ctx.Err() == nil {
				s.fault(lastName, min(lastEnd, cr.n), "the tar is damaged or truncated after this entry: %v", err)
			}
			return false
		}
		off := cr.n
		if isSparse(hdr) {
			// Its size is not the bytes it takes: positions are lost.
			s.fault(hdr.Name, off, "a sparse file; the rest of the volume cannot be checked")
			return false
		}
		if off-cr.recFrom == int64(len(cr.rec)) {
			if at := extHeaderPadding(cr.rec, cr.recFrom); at >= 0 {
				s.fault(hdr.Name, at, "non-zero bytes in the padding of its extended header")
			}
		}
		if hdr.Size <= maxOffset && off <= maxOffset {
			lastEnd = off + paddedSize(hdr.Size)
			cr.watch(off+hdr.Size, lastEnd)
			cr.record(lastEnd)
		}
		lastName = hdr.Name
		s.entry(tr, hdr, off)
	}
}

// checkPadding reports non-zero bytes in the padding just skipped.
func (s *volumeScan) checkPadding(cr *scanReader, entry string) {
	if cr.nonZeroAt >= 0 {
		s.fault(entry, cr.nonZeroAt, "non-zero bytes in the padding after the data")
		cr.nonZeroAt = -1
	}
}

// checkEnd checks the end-of-archive blocks and that nothing but zeros
// follows them.
func (s *volumeScan) checkEnd(cr *scanReader, lastEnd int64) {
	if cr.n-lastEnd < endOfArchive {
		s.fault("", lastEnd, "the volume ends without a tar end-of-archive: truncated")
		return
	}
	if s.num == 0 && !s.sawIndex {
		s.fault(IndexName, -1, "the index entry was not found")
	}
	cr.watch(cr.n, math.MaxInt64)
	if _, err := io.Copy(io.Discard, cr); err != nil {
		s.fault("", cr.n, "reading after the end of archive: %v", err)
	}
	if cr.nonZeroAt >= 0 {
		s.fault("", cr.nonZeroAt, "unexpected data after the end of archive")
	}
}

// entry checks one tar entry whose data starts at off.
func (s *volumeScan) entry(tr *tar.Reader, hdr *tar.Header, off int64) {
	name := hdr.Name
	if why := irregular(hdr); why != "" {
		s.fault(name, off, "%s", why)
		return
	}
	if s.num == 0 && name == IndexName {
		s.indexEntry(hdr, off)
		return
	}
	if s.num == 0 && name == IndexSignatureName {
		s.indexSignatureEntry(off)
		return
	}
	if err := checkName(name); err != nil {
		s.fault(name, off, "unsafe name: %v", err)
		return
	}
	if s.sawIndex {
		s.fault(name, off, "entry after the index")
	}
	if first, dup := s.seen[name]; dup {
		s.fault(name, off, "the same name again (first at offset %d)", first)
		return
	}
	want, listed := s.expected[name]
	if !listed {
		s.unlisted(name, off)
		return
	}
	s.seen[name] = off
	if want.Offset != off || want.Size != hdr.Size {
		s.fault(name, off, "%d bytes at offset %d, the index says %d bytes at offset %d", hdr.Size, off, want.Size, want.Offset)
		return
	}
	if off+hdr.Size > s.v.size {
		s.fault(name, off, "%d bytes run past the end of the volume (%d bytes): truncated", hdr.Size, s.v.size)
		return
	}
	s.hash(tr, want, off)
}

// irregular says why an entry is not a plain regular file, or "".
func irregular(hdr *tar.Header) string {
	if hdr.Typeflag != tar.TypeReg {
		what := fmt.Sprintf("type %q", hdr.Typeflag)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			what = "a symbolic link to " + hdr.Linkname
		case tar.TypeLink:
			what = "a hard link to " + hdr.Linkname
		case tar.TypeDir:
			what = "a directory"
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			what = "a device or fifo"
		}
		return "not a regular file: " + what
	}
	return ""
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func (s *volumeScan) indexEntry(hdr *tar.Header, off int64) {
	if s.sawIndex || off != s.r.indexOffset || hdr.Size != s.r.indexSize {
		s.fault(IndexName, off, "another index entry (the index read is at offset %d)", s.r.indexOffset)
		return
	}
	s.sawIndex = true
}

// indexSignatureEntry accepts the index signature only where the reader
// found it, right after the index; its bytes are checked by whoever holds
// the keys.
func (s *volumeScan) indexSignatureEntry(off int64) {
	if sig := s.r.indexSig; sig == nil || !s.sawIndex || s.sawIndexSig || off != sig.offset {
		s.fault(IndexSignatureName, off, "an index signature out of place (it may only follow the index, once)")
		return
	}
	s.sawIndexSig = true
}

func (s *volumeScan) unlisted(name string, off int64) {
	if f, ok := s.r.files[name]; ok && name != VolumeMarkerName {
		s.fault(name, off, "found here, but the index puts it in volume %d (%s) at offset %d",
			f.Volume, s.r.idx.Volumes[f.Volume].Name, f.Offset)
		return
	}
	s.fault(name, off, "not in the index")
}

// hash compares the sha256 of an entry's data with the index: beside the
// scan when the entry is large and a side hasher is free (the tar reader
// then skips the data: scanReader.Seek), else here.
func (s *volumeScan) hash(tr *tar.Reader, want File, off int64) {
	if want.Size >= sideHashMin {
		select {
		case buf := <-s.hashers:
			h := &sideHash{want: want, off: off, faultsBefore: len(s.faults)}
			s.sideHashes = append(s.sideHashes, h)
			s.hashing.Go(func() {
				defer func() { s.hashers <- buf }()
				h.sum, h.err = sumAt(s.ctx, s.v.f, off, want.Size, buf)
			})
			return
		default:
		}
	}
	if s.buf == nil {
		s.buf = make([]byte, 32<<10)
	}
	h := sha256.New()
	_, err := io.CopyBuffer(h, tr, s.buf)
	s.judge(want, off, hex.EncodeToString(h.Sum(nil)), err)
}

// judge counts an entry whose data hashed to sum, or reports the fault.
func (s *volumeScan) judge(want File, off int64, sum string, err error) {
	switch {
	case err != nil:
		s.fault(want.Name, off, "reading: %v", err)
	case sum == want.SHA256:
		s.files++
	case strings.HasPrefix(want.Name, blobDir):
		s.fault(want.Name, off, "content has digest sha256:%s, not the one its name says", sum)
	default:
		s.fault(want.Name, off, "sha256 %s, the index says %s", sum, want.SHA256)
	}
}

// sideHashers hands out a read buffer per hash running beside the scans
// of one Verify: taking one is taking a hasher.
type sideHashers chan []byte

func newSideHashers(n int) sideHashers {
	h := make(sideHashers, n)
	for range n {
		h <- make([]byte, sideHashBuffer)
	}
	return h
}

// sideHash is an entry hashed beside the scan: what it must be and, once
// done, what it was.
type sideHash struct {
	want File
	off  int64
	// faultsBefore is how many faults the scan had found when the entry
	// was reached: its own fault goes there, so that the report lists
	// faults in volume order whoever hashed the entry.
	faultsBefore int
	sum          string
	err          error
}

// sumAt is the sha256 of size bytes of f at off, read in buf's size.
func sumAt(ctx context.Context, f io.ReaderAt, off, size int64, buf []byte) (string, error) {
	h := sha256.New()
	sr := io.NewSectionReader(f, off, size)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := sr.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// settleSideHashes waits for the volume's side hashes and puts their
// verdicts among the scan's faults, in entry order.
func (s *volumeScan) settleSideHashes() {
	s.hashing.Wait()
	if len(s.sideHashes) == 0 {
		return
	}
	scanned, omitted := s.faults, s.omitted
	s.faults, s.omitted = nil, 0
	next := 0
	for _, h := range s.sideHashes {
		s.faults = append(s.faults, scanned[next:h.faultsBefore]...)
		next = h.faultsBefore
		s.judge(h.want, h.off, h.sum, h.err)
	}
	s.faults = append(s.faults, scanned[next:]...)
	s.omitted += omitted
	if extra := len(s.faults) - maxFaults; extra > 0 {
		s.faults = s.faults[:maxFaults]
		s.omitted += extra
	}
}

// reportMissing reports the listed files the scan did not find.
func (s *volumeScan) reportMissing(complete bool) {
	why := "listed in the index but not in the volume"
	if !complete {
		why = "not reached: the volume is damaged before it"
	}
	for _, f := range s.r.idx.Files {
		if f.Volume != s.num {
			continue
		}
		if _, ok := s.seen[f.Name]; !ok {
			s.fault(f.Name, f.Offset, "%s", why)
		}
	}
}
