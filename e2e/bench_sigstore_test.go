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

// sigstoreCost is what proving the Sigstore signatures adds to a pack.
type sigstoreCost struct {
	with, without time.Duration // medians
	cpuWith       time.Duration
	cpuWithout    time.Duration
	images        int
}

// benchSigstore packs the release with the proof (the default) and with
// --sigstore off, sigstoreRuns times each, alternating.
func benchSigstore(t *testing.T, dir string, rel *testbed.Release, keyFile, storeURL string) sigstoreCost {
	t.Helper()
	var with, without, cpuWith, cpuWithout []time.Duration
	out := filepath.Join(dir, "sigstore.tar")
	for range sigstoreRuns {
		for _, mode := range []string{"required", "off"} {
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
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	return c
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
}
