package graphdata

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Bounds on the graph data. The real tarball is about 2 MB compressed
// and 10 MB unpacked, some 4,000 entries (mostly blocked-edges files); the
// bounds leave room for years of growth and still stop a broken or
// hostile source from making ferry hold or unpack much more.
const (
	// MaxCompressedSize caps the tarball as downloaded or read from a
	// file: it is held in memory while it is unpacked.
	MaxCompressedSize = 32 << 20
	// MaxUncompressedSize caps the bytes the tarball unpacks to, every
	// entry counted (the kept files are held in memory), and the kept
	// files of a directory: it stops a gzip bomb.
	MaxUncompressedSize = 128 << 20
	// MaxEntries caps the entries of a tarball, or of the channels/ and
	// blocked-edges/ directories of a directory: it stops an archive of
	// millions of empty files from costing minutes of CPU.
	MaxEntries = 32 << 10
)

// readArchive unpacks a gzip tarball of the graph data (see readTar).
func readArchive(ctx context.Context, compressed []byte) (map[string][]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, &MalformedError{Err: fmt.Errorf("not a gzip tarball: %w", err)}
	}
	files, err := readTar(ctx, gz)
	if cerr := gz.Close(); cerr != nil && err == nil {
		err = &MalformedError{Err: cerr}
	}
	return files, err
}

// readTar reads a tar stream of the graph data, within MaxUncompressedSize
// and MaxEntries, to its very end (so that a gzip stream's checksum is
// checked), and returns the kept files by their path relative to the
// data's root.
//
// The archive may hold the data at its root ("channels/...", as
// api.openshift.com serves it) or under one top-level directory (as
// GitHub serves a repository: "cincinnati-graph-data-<sha>/channels/...").
// Any link, device, absolute path or ".." refuses the whole archive, kept
// or not: the real data has none.
func readTar(ctx context.Context, r io.Reader) (map[string][]byte, error) {
	bounded := &boundedReader{r: r, left: MaxUncompressedSize,
		err: &BoundError{Bound: "MaxUncompressedSize", Limit: MaxUncompressedSize}}
	tr := tar.NewReader(bounded)
	candidates := map[string][]byte{} // by the entry's clean name
	tops := map[string]bool{}         // first path components
	for entries := 0; ; entries++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, tarError(err)
		}
		if entries >= MaxEntries {
			return nil, &BoundError{Bound: "MaxEntries", Limit: MaxEntries}
		}
		name, err := entryName(hdr)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue // the archive's own root, or a pax global header
		}
		top, rest, _ := strings.Cut(name, "/")
		tops[top] = true
		if hdr.Typeflag == tar.TypeDir || !(kept(name) || kept(rest)) {
			continue
		}
		if _, dup := candidates[name]; dup {
			return nil, &MalformedError{File: name, Err: errors.New("appears twice in the archive")}
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, tarError(err)
		}
		candidates[name] = data
	}
	if _, err := io.Copy(io.Discard, bounded); err != nil {
		return nil, tarError(err)
	}
	return rootFiles(candidates, tops), nil
}

// entryName is the clean name of an entry that is a directory or a
// regular file, without a leading "./" and a trailing "/"; "" for the
// archive's root directory and for a pax global header. Anything else is
// an *UnsafeEntryError.
func entryName(hdr *tar.Header) (string, error) {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return "", nil
	case tar.TypeSymlink, tar.TypeLink:
		return "", &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("a link (to %q); the graph data has none", hdr.Linkname)}
	case tar.TypeReg, tar.TypeDir:
	default:
		return "", &UnsafeEntryError{Name: hdr.Name, Reason: fmt.Sprintf("tar type %q is neither a regular file nor a directory", hdr.Typeflag)}
	}
	name := hdr.Name
	for strings.HasPrefix(name, "./") {
		name = name[len("./"):]
	}
	if hdr.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
		if name == "" || name == "." {
			return "", nil
		}
	}
	if strings.HasPrefix(name, "/") {
		return "", &UnsafeEntryError{Name: hdr.Name, Reason: "an absolute path"}
	}
	for part := range strings.SplitSeq(name, "/") {
		switch part {
		case "..":
			return "", &UnsafeEntryError{Name: hdr.Name, Reason: `a path through ".."`}
		case "", ".":
			return "", &UnsafeEntryError{Name: hdr.Name, Reason: "not a clean relative path"}
		}
	}
	return name, nil
}

// rootFiles picks the kept files from candidates: at the archive's root,
// or under its one top-level directory when every entry is in the same
// one and that is not a directory of the data itself.
func rootFiles(candidates map[string][]byte, tops map[string]bool) map[string][]byte {
	prefix := ""
	if len(tops) == 1 {
		for top := range tops {
			if top != channelsDir && top != blockedEdgesDir && top != "raw" && top != versionFile {
				prefix = top + "/"
			}
		}
	}
	files := map[string][]byte{}
	for name, data := range candidates {
		rel, ok := strings.CutPrefix(name, prefix)
		if ok && kept(rel) {
			files[rel] = data
		}
	}
	return files
}

// tarError keeps a bound's error as it is and calls anything else a
// malformed archive.
func tarError(err error) error {
	if _, ok := errors.AsType[*BoundError](err); ok {
		return err
	}
	return &MalformedError{Err: err}
}

// boundedReader reads at most left bytes from r and then fails with err
// when r has more.
type boundedReader struct {
	r    io.Reader
	left int64
	err  error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			return 0, b.err
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
