package graphdata

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Modes of the data layer's entries: readable by any user the init
// container runs as, writable by none but root.
const (
	layerDirMode  = 0o755
	layerFileMode = 0o644
)

// layerEntry is one entry of the data layer: a directory when its name
// ends in "/".
type layerEntry struct {
	name string
	data []byte
}

// writeLayer writes files under DataDir as a gzip tar layer, and returns
// it and its diff ID (the digest of the tar). The same files give the
// same bytes: entries in name order, each parent directory before what
// it holds (the parents of DataDir too, so that the layer stands on any
// base), uid and gid 0 without user or group names, one fixed time, and
// a gzip header with neither name nor time.
func writeLayer(files []File) ([]byte, digest.Digest, error) {
	root := strings.TrimPrefix(DataDir, "/")
	dirs := map[string]bool{}
	for d := root; d != "."; d = path.Dir(d) {
		dirs[d+"/"] = true
	}
	entries := make([]layerEntry, 0, len(files)+len(dirs)+3)
	for _, f := range files {
		name := path.Join(root, f.Name)
		dirs[path.Dir(name)+"/"] = true
		entries = append(entries, layerEntry{name: name, data: f.Data})
	}
	for d := range dirs {
		entries = append(entries, layerEntry{name: d})
	}
	slices.SortFunc(entries, func(a, b layerEntry) int { return strings.Compare(a.name, b.name) })

	var blob bytes.Buffer
	gz, err := gzip.NewWriterLevel(&blob, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	gz.Header = gzip.Header{OS: 255} // no name, no time, OS "unknown": as Go writes by default, but said
	diffID := digest.Canonical.Digester()
	tw := tar.NewWriter(io.MultiWriter(gz, diffID.Hash()))
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	if err := gz.Close(); err != nil {
		return nil, "", err
	}
	return blob.Bytes(), diffID.Digest(), nil
}

// writeEntry writes one entry of the data layer. Every entry has the Unix
// epoch as its time: the files' own times mean nothing (they are those of
// whoever unpacked the data) and would change the digest.
func writeEntry(tw *tar.Writer, e layerEntry) error {
	hdr := &tar.Header{Name: e.name, ModTime: time.Unix(0, 0), Typeflag: tar.TypeDir, Mode: layerDirMode}
	if !strings.HasSuffix(e.name, "/") {
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, layerFileMode, int64(len(e.data))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(e.data)
	return err
}
