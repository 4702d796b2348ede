package e2e

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// sigstoreRuns is how many packs of each kind the Sigstore cost is the
// median of: the difference is a small part of a pack's wall time.
const sigstoreRuns = 3

// sigstoreCost is what proving the Sigstore signatures adds to a pack,
// and to an apply that has nothing left to push (so that what remains is
// the proof from the bundle and the nodes' check through the mirror).
type sigstoreCost struct {
	with, without time.Duration // medians
	cpuWith       time.Duration
	cpuWithout    time.Duration
	applyWith     time.Duration
	applyWithout  time.Duration
	images        int
}

// benchSigstore packs the release with the proof (the default) and with
// --sigstore off, sigstoreRuns times each, alternating.
func benchSigstore(t *testing.T, dir string, rel *testbed.Release, keyFile, storeURL string) sigstoreCost {
	t.Helper()
	var with, without, cpuWith, cpuWithout []time.Duration
	out := filepath.Join(dir, "sigstore.tar")
	for range sigstoreRuns {
		for _, mode := range []string{"off", "required"} {
			var sum struct{}
			s := timeFerry(t, &sum, "pack", rel.PullSpec, "-o", out, "--no-self", "--src-tls-verify=false", "--force",
				"--keyring", keyFile, "--signature-store", storeURL, "--quiet", "--json", "--sigstore", mode)
			if mode == "off" {
				without, cpuWithout = append(without, s.wall), append(cpuWithout, s.cpu)
			} else {
				with, cpuWith = append(with, s.wall), append(cpuWith, s.cpu)
			}
			settle()
		}
	}
	c := sigstoreCost{with: median(with), without: median(without), cpuWith: median(cpuWith), cpuWithout: median(cpuWithout)}
	c.images = inScope(rel)
	c.applyWith, c.applyWithout = benchSigstoreApply(t, dir, out, keyFile)
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	return c
}

// benchSigstoreApply applies bundlePath once, then again with and without
// the Sigstore proof (medians): the reruns push nothing.
func benchSigstoreApply(t *testing.T, dir, bundlePath, keyFile string) (with, without time.Duration) {
	t.Helper()
	dst := testbed.StartDockerRegistry(t)
	args := func(mode string) []string {
		return []string{"apply", bundlePath, "--to", dst.Host + "/" + targetRepo, "--dest-tls-verify=false", "--keyring", keyFile,
			"--no-cluster", "--quiet", "--json", "--output-dir", filepath.Join(dir, "sigstore-manifests"), "--sigstore", mode}
	}
	var sum struct{}
	timeFerry(t, &sum, args("required")...)
	var withRuns, withoutRuns []time.Duration
	for range sigstoreRuns {
		withoutRuns = append(withoutRuns, timeFerry(t, &sum, args("off")...).wall)
		withRuns = append(withRuns, timeFerry(t, &sum, args("required")...).wall)
	}
	return median(withRuns), median(withoutRuns)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func printSigstoreCost(w io.Writer, c sigstoreCost) {
	fmt.Fprintf(w, "\n--- SIGSTORE: what proving every signature under the payload's image policy adds to a pack (median of %d)\n", sigstoreRuns)
	fmt.Fprintf(w, "pack (proof, the default) %s, CPU %s; pack --sigstore off %s, CPU %s; the proof adds %s wall, %s CPU for %d images in scope\n",
		c.with.Round(time.Millisecond), c.cpuWith.Round(time.Millisecond), c.without.Round(time.Millisecond), c.cpuWithout.Round(time.Millisecond),
		(c.with - c.without).Round(time.Millisecond), (c.cpuWith - c.cpuWithout).Round(time.Millisecond), c.images)
	fmt.Fprintf(w, "apply with nothing left to push: %s with the proof from the bundle and the nodes' check through the mirror, %s with --sigstore off: %s more\n",
		c.applyWith.Round(time.Millisecond), c.applyWithout.Round(time.Millisecond), (c.applyWith - c.applyWithout).Round(time.Millisecond))
}
