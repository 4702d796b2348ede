// Package admission asks, before a cluster updates, the question every node
// of it will ask at each container start from OpenShift 4.21 on: under the
// release's Sigstore image policies (ClusterImagePolicy, ImagePolicy), may
// this image run, pulled through this mirror?
//
// It answers with the code the node runs: containers/image's policy engine
// (signature.PolicyContext with sigstoreSigned requirements, which is what
// CRI-O evaluates), a registries.conf that sends the image's source to one
// mirror and nowhere else (so a check can never pass on the strength of the
// source registry), and registries.d with use-sigstore-attachments, so the
// sha256-<hex>.sig tags are read from the mirror repository the node pulls
// from, while identities are matched against the source name the cluster
// uses. For a manifest list the list and each of its images must be
// admitted, as a node pulling it checks both.
//
// Check answers for every image and for every mirror the node may use for
// it: nodes try mirrors in order and run the image from the first that
// serves it, so each mirror that holds an image must also hold its
// signatures.
package admission

import (
	"context"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// DefaultParallel is how many (image, mirror) checks run at once. Each is
// a handful of small requests (token, manifest, signature manifest and
// payloads): a few at a time hide the round trips of a slow link, and a
// mirror registry is not asked for more than a pull of a few images would.
const DefaultParallel = 4

// MaxInstances caps the images of one manifest list that are checked. A
// multi-arch release names four or five architectures and the widest
// public images about fifteen platforms; a list naming more is not one a
// node would be asked to run.
const MaxInstances = 64

// Image is one image the cluster runs, named as the cluster names it.
type Image struct {
	// Source is the repository the cluster names (host/path), which the
	// mirror sets route to mirrors.
	Source string        `json:"source"`
	Digest digest.Digest `json:"digest"`
}

func (i Image) String() string { return i.Source + "@" + i.Digest.String() }

// Status is the answer for one image through one mirror.
type Status string

// The answers.
const (
	// Allowed: every manifest of the image is admitted through the mirror.
	Allowed Status = "allowed"
	// Refused: the node would refuse to run the image from this mirror (no
	// signature there, a signature by another key, for another digest or
	// identity, or an image of a list missing). Reason says why.
	Refused Status = "refused"
	// Absent: the mirror does not hold the image; the node tries its next
	// mirror, and the source last unless the mirror set forbids it.
	Absent Status = "absent"
	// Unprovable: a policy that applies has a root of trust ferry cannot
	// check (Fulcio, PKI, a Rekor key); the policies it can check allowed
	// the image.
	Unprovable Status = "unprovable"
	// Failed: the mirror could not be read; Err holds the error.
	Failed Status = "failed"
	// OutOfScope: no policy applies to the image; the node runs it unsigned.
	OutOfScope Status = "out-of-scope"
	// NoMirror: no mirror set routes the image; the node pulls it from its
	// source.
	NoMirror Status = "no-mirror"
)

// Result is the answer for one image through one mirror.
type Result struct {
	Image Image `json:"image"`
	// Mirror is the repository the node pulls the image from (host/path);
	// empty for OutOfScope and NoMirror.
	Mirror string `json:"mirror,omitempty"`
	Status Status `json:"status"`
	// Reason says why the image is not Allowed, in the engine's own words;
	// for a manifest list, naming each manifest refused.
	Reason string `json:"reason,omitempty"`
	// Refused are the manifests refused: the image's own digest, and for a
	// manifest list each image of it that was refused.
	Refused []digest.Digest `json:"refused,omitempty"`
	// Policies name the policies that apply to the image.
	Policies []string `json:"policies,omitempty"`
	// Err is the error behind Failed, for callers that classify it
	// (registry.ErrUnauthorized, registry.ErrTLS, ...).
	Err error `json:"-"`
}

// Options say how to reach the mirrors.
type Options struct {
	// Registry gives credentials, TLS settings, retries and time bounds, as
	// for every other registry access of ferry.
	Registry registry.Options
	// Parallel bounds the checks run at once; 0 means DefaultParallel.
	Parallel int
}

// Check answers, for each image and each mirror a node would use for it
// (MirrorsFor), whether the node admits the image under policies. Results
// come in the order of images, then of mirrors. Images outside every
// policy's scope are OutOfScope and images no set routes are NoMirror;
// neither contacts a registry. A failure to reach one mirror is that
// result's (Failed), not Check's: Check fails only when it cannot run at
// all (a policy the engine refuses, no temporary directory) or ctx ends.
func Check(ctx context.Context, policies []sigstore.Policy, sets []MirrorSet, images []Image, opts Options) (results []Result, err error) {
	if opts.Parallel < 0 {
		return nil, fmt.Errorf("admission check: parallel %d is negative", opts.Parallel)
	}
	if opts.Parallel == 0 {
		opts.Parallel = DefaultParallel
	}
	policy, err := enginePolicy(policies)
	if err != nil {
		return nil, fmt.Errorf("admission check: %w", err)
	}
	results, tasks := plan(policies, sets, images)
	if len(tasks) == 0 {
		return results, nil
	}
	node, err := newNodeConfig(tasks, results, opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("admission check: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(node.dir); rmErr != nil && err == nil {
			err = fmt.Errorf("admission check: removing %s: %w", node.dir, rmErr)
		}
	}()
	c := &checker{policy: policy, policies: policies, node: node, opts: opts}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for _, t := range tasks {
		g.Go(func() error {
			c.check(gctx, &results[t.result], t.route)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("admission check: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("admission check: %w", err)
	}
	return results, nil
}

// task is one (image, mirror) pair to check: results[result], through the
// registries.conf of route (the mirror's position in the image's list).
type task struct {
	result int
	route  int
}

// plan lays out the results, answering what needs no registry, and the
// tasks that do.
func plan(policies []sigstore.Policy, sets []MirrorSet, images []Image) ([]Result, []task) {
	var (
		results []Result
		tasks   []task
	)
	for _, img := range images {
		applicable := sigstore.Applicable(policies, img.Source, img.Digest)
		if len(applicable) == 0 {
			results = append(results, Result{Image: img, Status: OutOfScope})
			continue
		}
		ids := policyIDs(applicable)
		mirrors := MirrorsFor(sets, img.Source)
		if len(mirrors) == 0 {
			results = append(results, Result{Image: img, Status: NoMirror, Policies: ids})
			continue
		}
		for route, m := range mirrors {
			r := Result{Image: img, Mirror: m, Policies: ids}
			unprovable := unprovableIDs(applicable)
			switch err := checkNames(img.Source, m); {
			case err != nil:
				r.Status, r.Reason, r.Err = Failed, err.Error(), err
			case len(unprovable) == len(applicable):
				r.Status, r.Reason = Unprovable, unprovableReason(unprovable)
			default:
				tasks = append(tasks, task{result: len(results), route: route})
			}
			results = append(results, r)
		}
	}
	return results, tasks
}

func policyIDs(policies []sigstore.Policy) []string {
	ids := make([]string, len(policies))
	for i := range policies {
		ids[i] = policies[i].ID()
	}
	return ids
}

func unprovableIDs(policies []sigstore.Policy) []string {
	var ids []string
	for i := range policies {
		if !provable(&policies[i]) {
			ids = append(ids, policies[i].ID()+" ("+policies[i].RootOfTrust+")")
		}
	}
	return ids
}

func unprovableReason(ids []string) string {
	return fmt.Sprintf("ferry cannot check the signatures %v require: only PublicKey policies can be checked without Fulcio, Rekor or a PKI", ids)
}

// checkNames accepts a source and mirror that are fully qualified
// repository names, as registries.conf needs them.
func checkNames(source, mirror string) error {
	for _, name := range []string{source, mirror} {
		named, err := reference.ParseNamed(name)
		if err != nil {
			return fmt.Errorf("%q is not a fully qualified repository: %w", name, err)
		}
		if !reference.IsNameOnly(named) {
			return fmt.Errorf("%q names a tag or digest, not a repository", name)
		}
	}
	return nil
}
