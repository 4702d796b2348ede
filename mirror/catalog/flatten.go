package catalog

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/ferryhq/ferry/mirror/internal/layerio"
)

// OCI whiteout names: ".wh.<name>" removes <name> from the layers below;
// ".wh..wh..opq" in a directory removes everything the layers below hold
// in it. Other ".wh..wh." names are aufs bookkeeping, meaningless in an
// image.
const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."
	whiteoutOpaque     = ".wh..wh..opq"
)

// kind is what a layer above left at a path.
type kind uint8

const (
	kindDir      kind = iota + 1
	kindOther         // a file, a link, a device: anything but a directory
	kindWhiteout      // removed
)

// heldFile is a visible non-directory entry of the configs directory.
type heldFile struct {
	data []byte
	// unreadable says why ferry does not read the entry (a symbolic link,
	// a device, ...); empty for a regular file. opm would read through
	// it, so it fails the read unless .indexignore hides it.
	unreadable string
	mode       fs.FileMode
}

// flattener reads an image's layers from the top down and keeps what they
// leave visible under the configs directory: a path a layer holds hides
// the same path in the layers below, and a whiteout hides what it names.
// It tracks only the configs directory and its parents; everything else
// is streamed past.
type flattener struct {
	dir    string // the configs directory, relative; "" for the root
	limits limits
	budget inflateBudget
	held   int64 // bytes held: the files' data and the names tracked

	above  map[string]kind // what the layers read so far left at a path
	opaque map[string]bool // directories whose lower content they removed

	files   map[string]*heldFile // visible non-directories under dir
	dirs    map[string]bool      // visible directories under dir, dir included
	blocked map[string]string    // dir or a parent of it, visible as a non-directory
}

func newFlattener(dir string, l limits) *flattener {
	return &flattener{
		dir: dir, limits: l, budget: inflateBudget{limits: l},
		above: map[string]kind{}, opaque: map[string]bool{},
		files: map[string]*heldFile{}, dirs: map[string]bool{}, blocked: map[string]string{},
	}
}

// stagedEntry is one entry of the layer being read.
type stagedEntry struct {
	kind kind
	file *heldFile // for a non-directory under dir
	what string    // for a non-directory at dir or a parent: what it is
}

// stage is what the layer being read holds at tracked paths. It takes
// effect only once the layer has been read to its end (and so verified),
// and never on the layer's own entries: a whiteout hides only what lies
// below.
type stage struct {
	entries   map[string]stagedEntry
	whiteouts map[string]bool // paths removed from the layers below
	opaques   map[string]bool // directories emptied of the layers below
}

func (f *flattener) tracked(st *stage) int64 {
	return int64(len(f.above) + len(f.opaque) + len(st.entries) + len(st.whiteouts) + len(st.opaques))
}

// closed reports whether the layers read so far hide everything the
// layers below could hold in the configs directory, as an image rebuilt
// with a whiteout of it does.
func (f *flattener) closed() bool {
	return f.opaque[f.dir] || f.hiddenByAbove(f.dir)
}

// readLayer reads one layer and applies what it holds.
func (f *flattener) readLayer(ctx context.Context, open LayerOpener) (err error) {
	rc, err := open(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing layer: %w", cerr)
		}
	}()
	raw := bufio.NewReader(layerio.Reader(ctx, rc))
	r, closeDecomp, err := layerio.Decompress(raw, f.limits.zstdWindow)
	if err != nil {
		return err
	}
	defer closeDecomp()

	st := &stage{entries: map[string]stagedEntry{}, whiteouts: map[string]bool{}, opaques: map[string]bool{}}
	tr := tar.NewReader(f.budget.reader(r))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if err := f.budget.entry(); err != nil {
			return err
		}
		if err := f.stageEntry(st, tr, hdr); err != nil {
			return err
		}
	}
	// Read on to the end of the layer as it came, without inflating it:
	// the compression trailer, and anything after it, where a verifying
	// opener reports a mismatch. Only then does the layer count.
	if _, err := io.Copy(io.Discard, f.budget.reader(raw)); err != nil {
		return fmt.Errorf("reading to the end: %w", err)
	}
	return f.apply(st)
}

// stageEntry notes one tar entry in st if it is at a tracked path and not
// hidden by the layers above, reading its data if it is a file of the
// configs directory.
func (f *flattener) stageEntry(st *stage, tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // PAX defaults for the entries that follow, not a file
	}
	name := cleanName(hdr.Name)
	parent, base := splitPath(name)
	switch {
	case base == whiteoutOpaque:
		if f.tracks(parent) && !f.hiddenByAbove(parent) {
			return f.stageNote(st, st.opaques, parent)
		}
		return nil
	case strings.HasPrefix(base, whiteoutMetaPrefix):
		return nil
	case strings.HasPrefix(base, whiteoutPrefix):
		target := joinPath(parent, strings.TrimPrefix(base, whiteoutPrefix))
		if base == whiteoutPrefix || !f.tracks(target) {
			return nil
		}
		return f.stageRemoval(st, target)
	}
	if name == "" || !f.tracks(name) {
		return nil
	}
	if hdr.Typeflag == tar.TypeDir {
		if f.hiddenByAbove(name) {
			return nil
		}
		return f.stageEntryAt(st, name, stagedEntry{kind: kindDir})
	}
	if f.hiddenByParents(name) {
		return nil
	}
	if _, ok := f.above[name]; ok {
		// A non-directory where a layer above holds a directory: it is
		// not seen, but it removes what the layers below hold there.
		return f.stageRemoval(st, name)
	}
	entry := stagedEntry{kind: kindOther}
	if !under(name, f.dir) || name == f.dir {
		entry.what = describe(hdr)
		return f.stageEntryAt(st, name, entry)
	}
	file, err := f.readFile(st, tr, hdr, name)
	if err != nil {
		return err
	}
	entry.file = file
	return f.stageEntryAt(st, name, entry)
}

// stageRemoval notes that the layer removes target from the layers below,
// by a whiteout or by holding a non-directory where a layer above holds a
// directory.
func (f *flattener) stageRemoval(st *stage, target string) error {
	if f.hiddenByParents(target) {
		return nil
	}
	switch f.above[target] {
	case kindOther, kindWhiteout:
		return nil
	case kindDir:
		// Above, the directory is made anew: nothing the layers below
		// hold in it shows through.
		return f.stageNote(st, st.opaques, target)
	}
	return f.stageNote(st, st.whiteouts, target)
}

func (f *flattener) stageNote(st *stage, set map[string]bool, p string) error {
	if !set[p] {
		if err := f.track(st, p); err != nil {
			return err
		}
	}
	set[p] = true
	return nil
}

func (f *flattener) stageEntryAt(st *stage, p string, e stagedEntry) error {
	if _, ok := st.entries[p]; !ok {
		if err := f.track(st, p); err != nil {
			return err
		}
	}
	st.entries[p] = e // a later entry of the same layer replaces an earlier one
	return nil
}

// track counts one more tracked path against MaxFiles and its name against
// MaxCatalogBytes.
func (f *flattener) track(st *stage, p string) error {
	if f.tracked(st) >= f.limits.files {
		return &BoundError{Bound: "MaxFiles", Limit: f.limits.files}
	}
	return f.hold(int64(len(p)))
}

func (f *flattener) hold(n int64) error {
	f.held += n
	if f.held > f.limits.catalogBytes {
		return &BoundError{Bound: "MaxCatalogBytes", Limit: f.limits.catalogBytes}
	}
	return nil
}

// readFile reads the entry hdr, a non-directory under the configs
// directory: a regular file's data, or what ferry needs to refuse it.
func (f *flattener) readFile(st *stage, tr *tar.Reader, hdr *tar.Header, name string) (*heldFile, error) {
	switch hdr.Typeflag {
	case tar.TypeReg:
	case tar.TypeLink:
		// A hard link names an earlier entry of the same tar.
		if target, ok := st.entries[cleanName(hdr.Linkname)]; ok && target.file != nil && target.file.unreadable == "" {
			return target.file, nil
		}
		return &heldFile{unreadable: describe(hdr), mode: fs.ModeIrregular}, nil
	case tar.TypeSymlink:
		return &heldFile{unreadable: describe(hdr), mode: fs.ModeSymlink}, nil
	default:
		return &heldFile{unreadable: describe(hdr), mode: fs.ModeIrregular}, nil
	}
	if hdr.Size > f.limits.fileBytes {
		return nil, &BoundError{Bound: "MaxFileBytes", Limit: f.limits.fileBytes, Path: "/" + name}
	}
	if err := f.hold(hdr.Size); err != nil {
		return nil, err
	}
	data := make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, data); err != nil {
		return nil, fmt.Errorf("reading /%s: %w", name, err)
	}
	return &heldFile{data: data}, nil
}

// apply makes a layer read to its end take effect for the layers below.
func (f *flattener) apply(st *stage) error {
	for p, e := range st.entries {
		for q := range parents(p) {
			if a, ok := st.entries[q]; ok && a.kind != kindDir {
				return fmt.Errorf("the layer holds /%s under /%s, which it holds as a file", p, q)
			}
		}
		f.above[p] = e.kind
		f.markParents(p)
		switch {
		case e.kind == kindDir:
			f.setDir(p)
		case e.file != nil:
			f.files[p] = e.file
		default:
			f.blocked[p] = e.what
		}
	}
	for p := range st.whiteouts {
		switch k, ok := f.above[p]; {
		case !ok:
			f.above[p] = kindWhiteout
			f.markParents(p)
		case k == kindDir:
			// The layer removes the directory below and makes its own.
			f.opaque[p] = true
		}
	}
	for p := range st.opaques {
		f.opaque[p] = true
		if _, ok := f.above[p]; !ok {
			f.above[p] = kindDir
			f.setDir(p)
			f.markParents(p)
		}
	}
	if n := int64(len(f.above) + len(f.opaque)); n > f.limits.files {
		return &BoundError{Bound: "MaxFiles", Limit: f.limits.files}
	}
	return nil
}

// markParents records the parents of p, which a layer holds, as
// directories of that layer (a tar need not list them).
func (f *flattener) markParents(p string) {
	for q := range parents(p) {
		if _, ok := f.above[q]; ok {
			return
		}
		f.above[q] = kindDir
		f.setDir(q)
	}
}

// setDir records p as a visible directory if it is in the configs
// directory.
func (f *flattener) setDir(p string) {
	if under(p, f.dir) {
		f.dirs[p] = true
	}
}

// hiddenByParents reports whether a layer above removed p's lower content
// through a parent: an opaque directory, or a parent that is removed or
// not a directory.
func (f *flattener) hiddenByParents(p string) bool {
	for q := range parents(p) {
		if f.opaque[q] {
			return true
		}
		if k := f.above[q]; k == kindOther || k == kindWhiteout {
			return true
		}
	}
	return p != "" && f.opaque[""]
}

// hiddenByAbove reports whether a layer above holds or removed p itself,
// other than as a directory (directories of several layers merge).
func (f *flattener) hiddenByAbove(p string) bool {
	k := f.above[p]
	return k == kindOther || k == kindWhiteout || f.hiddenByParents(p)
}

// tracks reports whether p is the configs directory, under it, or one of
// its parents.
func (f *flattener) tracks(p string) bool {
	return under(p, f.dir) || p == "" || strings.HasPrefix(f.dir, p+"/")
}

// under reports whether p is dir or lies under it ("" is the root).
func under(p, dir string) bool {
	return dir == "" || p == dir || strings.HasPrefix(p, dir+"/")
}

// parents yields the parents of p, nearest first, the root ("") excluded.
func parents(p string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for {
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				return
			}
			p = p[:i]
			if !yield(p) {
				return
			}
		}
	}
}

// cleanName turns a tar entry name into a clean path relative to the root,
// accepting the "./" and "/" prefixes image builders use; the root is "".
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// splitPath splits a clean path into its parent ("" for the root) and base.
func splitPath(p string) (parent, base string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

func joinPath(parent, base string) string {
	if parent == "" {
		return base
	}
	return parent + "/" + base
}

// describe says what a non-regular tar entry is, for the error that
// refuses it.
func describe(hdr *tar.Header) string {
	switch hdr.Typeflag {
	case tar.TypeReg:
		return "a regular file"
	case tar.TypeSymlink:
		return fmt.Sprintf("a symbolic link to %s", hdr.Linkname)
	case tar.TypeLink:
		return fmt.Sprintf("a hard link to /%s, which ferry did not read", cleanName(hdr.Linkname))
	}
	return fmt.Sprintf("a tar entry of type %q", hdr.Typeflag)
}
