package testbed

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ocilayout "go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/types"
)

const (
	skopeoBin = "/usr/bin/skopeo"
	// skopeoTimeout bounds one skopeo run (the test's deadline too, if sooner).
	skopeoTimeout = 5 * time.Minute
)

// Skopeo runs Debian's skopeo with args and returns its standard output,
// failing the test (with skopeo's stderr) if it fails. See RunSkopeo.
func Skopeo(t testing.TB, args ...string) []byte {
	t.Helper()
	out, stderr, err := RunSkopeo(t, args...)
	if err != nil {
		t.Fatalf("skopeo %q: %v\n%s", args, err, stderr)
	}
	return out
}

// RunSkopeo runs skopeo with args, for tests that expect it to fail. It is
// isolated from the host's configuration: an accept-anything policy
// (--policy, unless args give one), empty registries.conf and auth file
// (override with --registries-conf, --authfile). Plain-HTTP registries still
// need --tls-verify=false. Without skopeo the test is skipped, or fails
// when CI is set.
func RunSkopeo(t testing.TB, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	bin := needTool(t, skopeoBin, "skopeo")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	conf := filepath.Join(dir, "registries.conf")
	files := map[string]string{
		policy: `{"default": [{"type": "insecureAcceptAnything"}]}`,
		conf:   "",
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatalf("skopeo config: %v", err)
		}
	}
	var global []string
	if !slices.ContainsFunc(args, func(a string) bool { return a == "--policy" || strings.HasPrefix(a, "--policy=") }) {
		global = append(global, "--policy", policy)
	}
	ctx, cancel := context.WithTimeout(t.Context(), skopeoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(global, args...)...)
	cmd.Env = append(os.Environ(),
		"CONTAINERS_REGISTRIES_CONF="+conf,
		"REGISTRY_AUTH_FILE="+filepath.Join(dir, "auth.json"),
		"TMPDIR="+dir,
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// ReadLayoutManifest reads a tagged manifest out of an OCI layout (an
// unpacked bundle's mirror/oci): with Debian's skopeo for OCI media types,
// and with containers/image's own oci transport (what current skopeo runs)
// for Docker media types, which skopeo 1.9 does not look up in an OCI
// index.
func ReadLayoutManifest(t testing.TB, layout, tag, mediaType string) []byte {
	t.Helper()
	if strings.HasPrefix(mediaType, "application/vnd.oci.") {
		return bytes.TrimSuffix(Skopeo(t, "inspect", "--raw", "oci:"+layout+":"+tag), []byte("\n"))
	}
	ref, err := ocilayout.NewReference(layout, tag)
	if err != nil {
		t.Fatal(err)
	}
	src, err := ref.NewImageSource(context.Background(), &types.SystemContext{})
	if err != nil {
		t.Fatalf("open %s in the OCI layout: %v", tag, err)
	}
	defer src.Close()
	raw, _, err := src.GetManifest(context.Background(), nil)
	if err != nil {
		t.Fatalf("read %s from the OCI layout: %v", tag, err)
	}
	return raw
}
