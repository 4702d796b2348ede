package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sync"
	"time"
)

// errAlreadyRead is what opening a file of a memFS a second time gives:
// its data was let go when it was first closed.
var errAlreadyRead = errors.New("already read once; ferry holds each file of the catalog until it is read")

// memFS is the flattened configs directory as an fs.FS, for
// operator-registry's walk (which honours .indexignore as opm does). Each
// file's data is let go when the file is closed, so that the catalog's
// bytes shrink while its parsed form grows: the walk opens every file
// once. It is safe for concurrent use, as the walk lists directories in
// one goroutine and reads files in another.
type memFS struct {
	root  string // the directory in the image, for errors
	mu    sync.Mutex
	nodes map[string]*memNode // by path relative to the root; the root is "."
}

type memNode struct {
	name     string
	isDir    bool
	children []string // a directory's entries, sorted
	file     *heldFile
	size     int64
	read     bool // opened and closed: data let go
}

// newMemFS builds the tree of files and dirs, whose paths are relative to
// the root. A path that is both a file and a directory is refused.
func newMemFS(root string, files map[string]*heldFile, dirs []string) (*memFS, error) {
	m := &memFS{root: root, nodes: map[string]*memNode{".": {name: ".", isDir: true}}}
	for _, d := range dirs {
		if err := m.addDir(d); err != nil {
			return nil, err
		}
	}
	for p, f := range files {
		parent, base := splitPath(p)
		if err := m.addDir(parent); err != nil {
			return nil, err
		}
		if n, ok := m.nodes[p]; ok && n.isDir {
			return nil, fmt.Errorf("%s is both a file and a directory", p)
		}
		m.nodes[p] = &memNode{name: base, file: f, size: int64(len(f.data))}
		m.link(parent, base)
	}
	for _, n := range m.nodes {
		slices.Sort(n.children)
	}
	return m, nil
}

// addDir adds the directory p ("" or "." for the root) and its parents.
func (m *memFS) addDir(p string) error {
	if p == "" || p == "." {
		return nil
	}
	if n, ok := m.nodes[p]; ok {
		if !n.isDir {
			return fmt.Errorf("%s is both a file and a directory", p)
		}
		return nil
	}
	parent, base := splitPath(p)
	if err := m.addDir(parent); err != nil {
		return err
	}
	m.nodes[p] = &memNode{name: base, isDir: true}
	m.link(parent, base)
	return nil
}

func (m *memFS) link(parent, base string) {
	if parent == "" {
		parent = "."
	}
	m.nodes[parent].children = append(m.nodes[parent].children, base)
}

func (m *memFS) lookup(op, name string) (*memNode, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, ok := m.nodes[name]
	if !ok {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return n, nil
}

// Open opens a file for reading, or a directory for listing. A file that
// ferry does not read (a symbolic link, a device) fails to open, saying
// what it is.
func (m *memFS) Open(name string) (fs.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if n.isDir {
		return &memDir{fsys: m, path: name, node: n}, nil
	}
	switch {
	case n.file.unreadable != "":
		return nil, &fs.PathError{Op: "open", Path: path.Join(m.root, name), Err: fmt.Errorf("it is %s; ferry reads only regular files in a catalog", n.file.unreadable)}
	case n.read:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errAlreadyRead}
	}
	return &memFile{fsys: m, path: name, node: n, r: bytes.NewReader(n.file.data)}, nil
}

// ReadDir lists a directory, sorted by name.
func (m *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.isDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return m.entries(name, n), nil
}

func (m *memFS) entries(dir string, n *memNode) []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(n.children))
	for _, c := range n.children {
		p := c
		if dir != "." {
			p = dir + "/" + c
		}
		out = append(out, fs.FileInfoToDirEntry(m.nodes[p].info()))
	}
	return out
}

// Stat describes a file or directory.
func (m *memFS) Stat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return n.info(), nil
}

// release lets go of a file's data once it has been read.
func (m *memFS) release(n *memNode) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n.read = true
	n.file = &heldFile{unreadable: n.file.unreadable, mode: n.file.mode}
}

func (n *memNode) info() fs.FileInfo {
	mode := fs.FileMode(0o444)
	switch {
	case n.isDir:
		mode = fs.ModeDir | 0o555
	case n.file.mode != 0:
		mode |= n.file.mode
	}
	return fileInfo{name: n.name, size: n.size, mode: mode}
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }

type memFile struct {
	fsys *memFS
	path string
	node *memNode
	r    *bytes.Reader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.fsys.Stat(f.path) }
func (f *memFile) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *memFile) Close() error {
	f.r = bytes.NewReader(nil)
	f.fsys.release(f.node)
	return nil
}

type memDir struct {
	fsys *memFS
	path string
	node *memNode
	off  int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return d.fsys.Stat(d.path) }
func (d *memDir) Close() error               { return nil }

func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errors.New("is a directory")}
}

// ReadDir lists the directory n entries at a time, as fs.ReadDirFile
// says.
func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	d.fsys.mu.Lock()
	all := d.fsys.entries(d.path, d.node)
	d.fsys.mu.Unlock()
	rest := all[d.off:]
	if n <= 0 {
		d.off = len(all)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.off += len(rest)
	return rest, nil
}
