package graphdata

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
	"gopkg.in/yaml.v3"
)

// The files of the graph data the update service reads, relative to the
// data's root (see openshift/cincinnati's secondary-metadata parser).
const (
	versionFile     = "version"
	rawMetadataFile = "raw/metadata.json"
	channelsDir     = "channels"
	blockedEdgesDir = "blocked-edges"
	yamlExt         = ".yaml"
)

// Data is the graph data the update service reads.
type Data struct {
	// Source is where it was read from: the URL (its password masked) or
	// the file:// URL of a tarball or directory.
	Source string
	// Files are the files kept, sorted by Name: every channels/*.yaml and
	// blocked-edges/*.yaml, raw/metadata.json and version.
	Files []File
	// Version is the data's schema version, the version file without
	// surrounding space (e.g. "1.1.0").
	Version string
	// Channels are the channels the data defines, sorted by name.
	Channels []Channel
	// Versions are the release versions the channels name, each once,
	// oldest first by semantic-versioning precedence.
	Versions []string
}

// File is one file of the graph data.
type File struct {
	// Name is the path relative to the data's root, slash-separated:
	// "version", "raw/metadata.json", "channels/stable-4.15.yaml".
	Name string
	Data []byte
}

// Channel is one channels/*.yaml file: the releases a channel offers.
type Channel struct {
	// File is the file it was read from, e.g. "channels/stable-4.15.yaml".
	File string
	// Name is the channel's name, e.g. "stable-4.15".
	Name string
	// Versions are the releases, in the file's order.
	Versions []string
}

// kept reports whether the update service reads the file at name, a
// clean slash-separated path relative to the data's root. Like the
// service, only the .yaml files directly in channels/ and blocked-edges/
// count.
func kept(name string) bool {
	if name == versionFile || name == rawMetadataFile {
		return true
	}
	dir, base := path.Split(name)
	if dir != channelsDir+"/" && dir != blockedEdgesDir+"/" {
		return false
	}
	return strings.HasSuffix(base, yamlExt) && len(base) > len(yamlExt)
}

// newData checks the kept files, by name relative to the data's root,
// and lists the channels and versions they hold.
func newData(source string, files map[string][]byte) (*Data, error) {
	d := &Data{Source: source}
	for name, content := range files {
		d.Files = append(d.Files, File{Name: name, Data: content})
	}
	slices.SortFunc(d.Files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })

	version, ok := files[versionFile]
	if !ok {
		return nil, &MalformedError{File: versionFile, Err: errors.New("missing: the update service needs the data's schema version")}
	}
	d.Version = strings.TrimSpace(string(version))
	if _, err := semver.Parse(d.Version); err != nil {
		return nil, &MalformedError{File: versionFile, Err: fmt.Errorf("%q is not a schema version: %w", d.Version, err)}
	}
	raw, ok := files[rawMetadataFile]
	if !ok {
		return nil, &MalformedError{File: rawMetadataFile, Err: errors.New("missing: the update service needs it")}
	}
	var metadata map[string]map[string]string
	if err := json.Unmarshal(raw, &metadata); err != nil {
		return nil, &MalformedError{File: rawMetadataFile, Err: err}
	}

	names := map[string]string{} // channel name → file
	parsed := map[string]semver.Version{}
	for _, f := range d.Files {
		if path.Dir(f.Name) != channelsDir {
			continue
		}
		c, err := parseChannel(f.Name, f.Data, parsed)
		if err != nil {
			return nil, err
		}
		if other, dup := names[c.Name]; dup {
			return nil, &MalformedError{File: f.Name, Err: fmt.Errorf("channel %q is also defined by %s", c.Name, other)}
		}
		names[c.Name] = f.Name
		d.Channels = append(d.Channels, c)
	}
	if len(d.Channels) == 0 {
		return nil, &MalformedError{File: channelsDir + "/", Err: errors.New("no channel files (*.yaml)")}
	}
	slices.SortFunc(d.Channels, func(a, b Channel) int { return strings.Compare(a.Name, b.Name) })
	d.Versions = sortedVersions(parsed)
	return d, nil
}

// parseChannel reads a channel file as the update service does: one YAML
// document with a name and a list of semantic versions, which it adds to
// parsed. Other keys (the real files have some, e.g. feeder) are left
// alone.
func parseChannel(file string, data []byte, parsed map[string]semver.Version) (Channel, error) {
	var doc struct {
		Name     string   `yaml:"name"`
		Versions []string `yaml:"versions"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty")
		}
		return Channel{}, &MalformedError{File: file, Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Channel{}, &MalformedError{File: file, Err: errors.New("more than one YAML document")}
	}
	if doc.Name == "" {
		return Channel{}, &MalformedError{File: file, Err: errors.New("no channel name")}
	}
	for i, v := range doc.Versions {
		sv, err := semver.Parse(v)
		if err != nil {
			return Channel{}, &MalformedError{File: file, Err: fmt.Errorf("versions[%d] %q: %w", i, v, err)}
		}
		parsed[v] = sv
	}
	return Channel{File: file, Name: doc.Name, Versions: doc.Versions}, nil
}

// sortedVersions lists the versions oldest first; versions of equal
// precedence (differing in build metadata only) are ordered as strings.
func sortedVersions(parsed map[string]semver.Version) []string {
	versions := make([]string, 0, len(parsed))
	for v := range parsed {
		versions = append(versions, v)
	}
	slices.SortFunc(versions, func(a, b string) int {
		return cmp.Or(parsed[a].Compare(parsed[b]), strings.Compare(a, b))
	})
	return versions
}
