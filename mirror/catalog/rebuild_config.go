package catalog

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// imageJSON is a platform image's config, parsed so that every field
// survives a rewrite.
type imageJSON struct {
	obj     jsonObject
	created time.Time // zero when the config has none
}

// parseConfigs parses the configs of images, in their order.
func parseConfigs(images []PlatformImage) ([]*imageJSON, error) {
	out := make([]*imageJSON, 0, len(images))
	for _, img := range images {
		obj, err := parseObject(img.Config)
		if err != nil {
			return nil, fmt.Errorf("image %s: parsing config: %w", img.Digest, err)
		}
		c := &imageJSON{obj: obj}
		if _, err := obj.get("created", &c.created); err != nil {
			return nil, fmt.Errorf("image %s: config: %w", img.Digest, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// configEdit is what a rebuild changes in every platform's config.
type configEdit struct {
	created         time.Time
	diffID          digest.Digest // the new layer's
	entrypoint, cmd []string
	labels          map[string]string
	createdBy       string
}

// apply returns c with the edit made, for a manifest of layers layers
// (which the config's diff IDs must match).
func (e configEdit) apply(c *imageJSON, layers int) ([]byte, error) {
	obj := maps.Clone(c.obj)
	if err := obj.set("created", e.created); err != nil {
		return nil, err
	}
	if err := e.extendRootFS(obj, layers); err != nil {
		return nil, err
	}
	// A config without history stays without: one entry for the new
	// layer alone would not line up with the layers it describes.
	var history []json.RawMessage
	if ok, err := obj.get("history", &history); err != nil {
		return nil, err
	} else if ok {
		entry, err := marshalJSON(map[string]any{"created": e.created, "created_by": e.createdBy, "comment": "ferry"})
		if err != nil {
			return nil, err
		}
		if err := obj.set("history", append(history, entry)); err != nil {
			return nil, err
		}
	}
	if err := e.editRunConfig(obj); err != nil {
		return nil, err
	}
	data, err := marshalJSON(obj)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("rebuilt config is %d bytes: %w", len(data), &BoundError{Bound: "MaxConfigBytes", Limit: MaxConfigBytes})
	}
	return data, nil
}

// extendRootFS appends the new layer's diff ID to rootfs.diff_ids.
func (e configEdit) extendRootFS(obj jsonObject, layers int) error {
	var rootfs jsonObject
	if err := require(obj, "rootfs", &rootfs); err != nil {
		return err
	}
	var diffIDs []digest.Digest
	if _, err := rootfs.get("diff_ids", &diffIDs); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if len(diffIDs) != layers {
		return fmt.Errorf("config lists %d diff IDs for the manifest's %d layers", len(diffIDs), layers)
	}
	rootfs = maps.Clone(rootfs)
	if err := rootfs.set("diff_ids", append(diffIDs, e.diffID)); err != nil {
		return err
	}
	return obj.set("rootfs", rootfs)
}

// editRunConfig sets the labels and the command in the config's "config"
// object (the same key in OCI and Docker configs).
func (e configEdit) editRunConfig(obj jsonObject) error {
	var run jsonObject
	if err := require(obj, "config", &run); err != nil {
		return err
	}
	run = maps.Clone(run)
	labels := map[string]string{}
	if _, err := run.get("Labels", &labels); err != nil {
		return err
	}
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, e.labels)
	if err := run.set("Labels", labels); err != nil {
		return err
	}
	for key, want := range map[string][]string{"Entrypoint": e.entrypoint, "Cmd": e.cmd} {
		var have []string
		if _, err := run.get(key, &have); err != nil {
			return err
		}
		if !slices.Equal(have, want) {
			if err := run.set(key, want); err != nil {
				return err
			}
		}
	}
	return obj.set("config", run)
}

// cacheAtStart returns the image's command (entrypoint and cmd) with opm
// serve's cache flags removed, so that opm builds its cache from the
// catalog it serves each time it starts.
//
// What opm serve does (operator-registry v1.61.0, cmd/opm/serve/serve.go):
// without --cache-dir it makes a temporary directory (os.MkdirTemp, in
// $TMPDIR or /tmp) and loads or rebuilds its cache there before it
// serves. With --cache-dir and without --cache-only,
// --cache-enforce-integrity defaults to true: a cache that is missing, or
// was built from another catalog, is then a fatal "integrity check
// failed" at every start. That is the crash loop of filtered catalogs
// that keep the image's pre-built cache under a new /configs. So:
//
//   - --cache-dir goes (both "--cache-dir=X" and "--cache-dir X");
//   - --cache-enforce-integrity goes: without --cache-dir opm refuses it;
//   - --cache-only goes: with it opm builds the cache and exits.
//
// Building the cache at start costs a filtered catalog seconds; the other
// way, a cache ferry builds, would have to be what opm builds, byte for
// byte (opm checks a digest over its own encoding), for every opm version
// an image may carry.
//
// The command must run `opm serve` (opm found by its base name, global
// flags allowed before serve) with configsDir as its one positional
// argument: otherwise ferry cannot know how the image serves its catalog,
// nor that the catalog it writes is the one served.
func cacheAtStart(entrypoint, cmd []string, configsDir string) (newEntrypoint, newCmd []string, err error) {
	argv := slices.Concat(entrypoint, cmd)
	serve := serveIndex(argv)
	if serve < 0 {
		return nil, nil, fmt.Errorf("the image's command %q runs no `opm serve`: ferry cannot tell how it serves its catalog", argv)
	}
	drop := make([]bool, len(argv))
	var positional []string
	for i := serve + 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			positional = append(positional, argv[i+1:]...)
			i = len(argv)
		case a == "--cache-dir":
			drop[i] = true
			if i+1 < len(argv) {
				drop[i+1] = true
				i++
			}
		case isCacheFlag(a):
			drop[i] = true
		case takesValue(a):
			i++ // its value
		case strings.HasPrefix(a, "-"):
		default:
			positional = append(positional, a)
		}
	}
	if len(positional) != 1 {
		return nil, nil, fmt.Errorf("the image's command %q gives opm serve %d directories, not one", argv, len(positional))
	}
	if served := positional[0]; !path.IsAbs(served) || path.Clean(served) != configsDir {
		return nil, nil, fmt.Errorf("the image's command serves %q, but its label %s says the catalog is in %s", served, LabelConfigsDir, configsDir)
	}
	for i, a := range argv {
		if drop[i] {
			continue
		}
		if i < len(entrypoint) {
			newEntrypoint = append(newEntrypoint, a)
		} else {
			newCmd = append(newCmd, a)
		}
	}
	return newEntrypoint, newCmd, nil
}

// serveIndex is the index of "serve" in argv after an opm binary and its
// global (boolean) flags, or -1.
func serveIndex(argv []string) int {
	for i, a := range argv {
		if path.Base(a) != "opm" {
			continue
		}
		j := i + 1
		for j < len(argv) && strings.HasPrefix(argv[j], "-") {
			j++
		}
		if j < len(argv) && argv[j] == "serve" {
			return j
		}
	}
	return -1
}

// takesValue reports opm serve's flags that take the next argument as
// their value when written without "=" (operator-registry v1.61.0,
// cmd/opm/serve): the scan steps over it to find the positional argument.
func takesValue(flag string) bool {
	switch flag {
	case "--termination-log", "-t", "--port", "-p", "--pprof-addr":
		return true
	}
	return false
}

// isCacheFlag reports the cache flags written as one argument.
func isCacheFlag(a string) bool {
	name, _, _ := strings.Cut(a, "=")
	switch name {
	case "--cache-dir":
		return strings.Contains(a, "=")
	case "--cache-only", "--cache-enforce-integrity":
		return true
	}
	return false
}
