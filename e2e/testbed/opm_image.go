package testbed

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Running a catalog image's own command with the real opm, without a
// container runtime: its layers are applied to a directory as a runtime
// applies them (whiteouts included), and its command runs with opm in
// place of the image's /bin/opm and its absolute paths under that
// directory (no chroot).

// maxRootfsLayerBytes bounds what one layer given to ApplyLayers may
// inflate to, held whole: test-bed catalog layers are a few KB to MB.
const maxRootfsLayerBytes = 64 << 20

// OCI whiteouts, as ApplyLayers honours them.
const (
	rootfsWhiteoutPrefix = ".wh."
	rootfsWhiteoutOpaque = ".wh..wh..opq"
)

// ExtractRootfs applies layers (gzip'd tars, base first) to a new
// directory, as ApplyLayers does, and returns it.
func ExtractRootfs(t testing.TB, layers ...[]byte) string {
	t.Helper()
	root := t.TempDir()
	ApplyLayers(t, root, layers...)
	return root
}

// ApplyLayers applies layers (gzip'd tars, base first) to the directory
// root as a container runtime does: a whiteout ".wh.<name>" removes <name>
// from what lies below, an opaque whiteout ".wh..wh..opq" everything below
// in its directory, and neither touches what its own layer holds. Files,
// directories, symbolic and hard links are made; owners are not (the test
// runs unprivileged), and every file and directory stays writable by the
// test. Any other entry, or a name leaving root, fails the test.
func ApplyLayers(t testing.TB, root string, layers ...[]byte) {
	t.Helper()
	for i, l := range layers {
		if err := applyLayer(root, l); err != nil {
			t.Fatalf("applying layer %d of %d to %s: %v", i+1, len(layers), root, err)
		}
	}
}

func applyLayer(root string, layer []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxRootfsLayerBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxRootfsLayerBytes {
		return fmt.Errorf("inflates to more than %d bytes", maxRootfsLayerBytes)
	}
	// Whiteouts first, over the layers below only; then the entries.
	for _, pass := range []func(string, *tar.Header, io.Reader) error{applyWhiteout, applyEntry} {
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if err := pass(root, hdr, tr); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		}
	}
	return nil
}

// rootfsPath is the host path of the layer entry name under root.
func rootfsPath(root, name string) (string, error) {
	clean := path.Clean("/" + name)
	if clean != "/"+strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/") && clean != "/" {
		return "", errors.New("not a clean relative path")
	}
	return filepath.Join(root, filepath.FromSlash(clean)), nil
}

func applyWhiteout(root string, hdr *tar.Header, _ io.Reader) error {
	dir, base := path.Split(hdr.Name)
	if !strings.HasPrefix(base, rootfsWhiteoutPrefix) {
		return nil
	}
	parent, err := rootfsPath(root, dir)
	if err != nil {
		return err
	}
	if base != rootfsWhiteoutOpaque {
		return os.RemoveAll(filepath.Join(parent, strings.TrimPrefix(base, rootfsWhiteoutPrefix)))
	}
	children, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, c := range children {
		if err := os.RemoveAll(filepath.Join(parent, c.Name())); err != nil {
			return err
		}
	}
	return nil
}

func applyEntry(root string, hdr *tar.Header, r io.Reader) error {
	if strings.HasPrefix(path.Base(hdr.Name), rootfsWhiteoutPrefix) {
		return nil
	}
	target, err := rootfsPath(root, hdr.Name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
			if err := os.Remove(target); err != nil {
				return err
			}
		}
		return os.MkdirAll(target, 0o755)
	}
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_EXCL, hdr.FileInfo().Mode().Perm()|0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		return errors.Join(err, f.Close())
	case tar.TypeSymlink:
		return os.Symlink(hdr.Linkname, target)
	case tar.TypeLink:
		from, err := rootfsPath(root, hdr.Linkname)
		if err != nil {
			return err
		}
		return os.Link(from, target)
	}
	return fmt.Errorf("tar entry type %q is not supported here", hdr.Typeflag)
}

// imageArgs is an image's command (entrypoint then cmd) as opm's
// arguments run over rootfs: the first word must be an opm binary, which
// the real opm replaces; every absolute path, alone or as a flag's
// "--flag=/value", is moved under rootfs.
func imageArgs(t testing.TB, rootfs string, entrypoint, cmd []string) []string {
	t.Helper()
	argv := slices.Concat(entrypoint, cmd)
	if len(argv) == 0 || path.Base(argv[0]) != "opm" {
		t.Fatalf("the image's command %q does not start with opm", argv)
	}
	args := make([]string, 0, len(argv)-1)
	for _, a := range argv[1:] {
		if flag, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(flag, "-") && path.IsAbs(value) {
			a = flag + "=" + filepath.Join(rootfs, value)
		} else if path.IsAbs(a) {
			a = filepath.Join(rootfs, a)
		}
		args = append(args, a)
	}
	return args
}

// imageEnv points opm's temporary files (its cache, when the command
// names none) at the image's own /tmp, which must be there as it must in
// a container.
func imageEnv(t testing.TB, rootfs string) []string {
	t.Helper()
	tmp := filepath.Join(rootfs, "tmp")
	if fi, err := os.Stat(tmp); err != nil || !fi.IsDir() {
		t.Fatalf("the image has no directory /tmp, where opm makes its temporary files (%v)", err)
	}
	return []string{"TMPDIR=" + tmp}
}

// StartImage runs a catalog image's command (entrypoint and cmd as its
// config gives them) over rootfs with the real opm (see imageArgs), on a
// free port, with no pprof endpoint and the termination log in a test
// directory, and waits until it serves. It returns an *OPMServeError when
// opm exits first: a catalog image that would crash-loop.
func StartImage(t testing.TB, rootfs string, entrypoint, cmd []string) (*OPMServer, error) {
	t.Helper()
	return startOPMServe(t, t.TempDir(), imageEnv(t, rootfs), imageArgs(t, rootfs, entrypoint, cmd)...)
}

// ServeImage is StartImage failing the test when opm does not serve.
func ServeImage(t testing.TB, rootfs string, entrypoint, cmd []string) *OPMServer {
	t.Helper()
	s, err := StartImage(t, rootfs, entrypoint, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// BuildImageCache runs the image's command over rootfs with --cache-only
// added, as the `RUN opm serve ... --cache-only` step of a catalog's
// Dockerfile does: opm builds its cache where the command says, and exits.
func BuildImageCache(t testing.TB, rootfs string, entrypoint, cmd []string) {
	t.Helper()
	args := append(imageArgs(t, rootfs, entrypoint, cmd), "--cache-only", "--pprof-addr", "",
		"--termination-log", filepath.Join(t.TempDir(), "termination.log"))
	if out, err := runOPM(t, imageEnv(t, rootfs), args...); err != nil {
		t.Fatalf("opm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
