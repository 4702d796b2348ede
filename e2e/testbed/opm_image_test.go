package testbed

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func layerOf(t *testing.T, files ...tarFile) []byte {
	t.Helper()
	gz, _, err := smallLayer(files)
	if err != nil {
		t.Fatal(err)
	}
	return gz
}

// tree lists what root holds, directories with a trailing slash, sorted.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestApplyLayersWhiteouts: an opaque whiteout empties its directory of
// what the layers below hold and a plain one removes what it names, while
// the entries of their own layer stay, whatever their order in the tar.
func TestApplyLayersWhiteouts(t *testing.T) {
	empty := []byte{}
	base := layerOf(t,
		tarFile{name: "configs/"}, tarFile{name: "configs/old/"}, tarFile{name: "configs/old/catalog.json", data: []byte("old")},
		tarFile{name: "tmp/"}, tarFile{name: "tmp/cache/"}, tarFile{name: "tmp/cache/digest", data: []byte("stale")},
		tarFile{name: "bin/"}, tarFile{name: "bin/opm", data: []byte("opm")},
	)
	top := layerOf(t,
		tarFile{name: "configs/"}, tarFile{name: "configs/new/"}, tarFile{name: "configs/new/catalog.json", data: []byte("new")},
		tarFile{name: "configs/.wh..wh..opq", data: empty}, // after the new entries: it still spares them
		tarFile{name: "tmp/"}, tarFile{name: "tmp/.wh.cache", data: empty},
	)
	root := ExtractRootfs(t, base, top)
	want := []string{"bin/", "bin/opm", "configs/", "configs/new/", "configs/new/catalog.json", "tmp/"}
	if got := tree(t, root); !slices.Equal(got, want) {
		t.Errorf("rootfs %q, want %q", got, want)
	}
	if data, err := os.ReadFile(filepath.Join(root, "configs/new/catalog.json")); err != nil || string(data) != "new" {
		t.Errorf("configs/new/catalog.json: %q %v", data, err)
	}
}

// TestApplyLayersRefusesEscapes: a name that leaves the root is refused.
func TestApplyLayersRefusesEscapes(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"../escape", "a/../../escape", "/abs"} {
		err := applyLayer(root, layerOf(t, tarFile{name: name, data: []byte("x")}))
		if err == nil || !strings.Contains(err.Error(), "not a clean relative path") {
			t.Errorf("%s: %v, want it refused", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escape")); err == nil {
		t.Error("a file was written outside the root")
	}
}

// TestImageArgs: the image's opm is dropped for the real one and its
// absolute paths, alone or as flag values, moved under the root.
func TestImageArgs(t *testing.T) {
	got := imageArgs(t, "/r", []string{"/bin/opm"}, []string{"serve", "/configs", "--cache-dir=/tmp/cache", "--termination-log", "/dev/log", "-p", "50051", "--x=rel"})
	want := []string{"serve", "/r/configs", "--cache-dir=/r/tmp/cache", "--termination-log", "/r/dev/log", "-p", "50051", "--x=rel"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
