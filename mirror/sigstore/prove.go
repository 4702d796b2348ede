package sigstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// Mode says what a caller does about images a policy covers that lack a
// signature the node accepts.
type Mode string

const (
	// Required refuses: the default, since the nodes would refuse too.
	Required Mode = "required"
	// BestEffort carries what exists and records each gap.
	BestEffort Mode = "best-effort"
	// Off checks nothing (callers record the choice).
	Off Mode = "off"
)

// ParseMode reads a mode as flags and ferry.yaml spell it; empty is
// Required.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return Required, nil
	case Required, BestEffort, Off:
		return m, nil
	}
	return "", fmt.Errorf("sigstore mode %q: want required, best-effort or off", s)
}

// Subject is one image a release's policies may cover, named by the
// repository the cluster pulls it from.
type Subject struct {
	Repository string        `json:"repository"`
	Digest     digest.Digest `json:"digest"`
	// Name says what the image is: "release 4.21.0", "component etcd".
	Name string `json:"name"`
}

// Gap is an image in scope that the node would refuse to run.
type Gap struct {
	Subject
	Unsigned bool   `json:"unsigned,omitempty"`
	Reason   string `json:"reason"`
}

// Result is what Prove found.
type Result struct {
	// Checked counts the subjects in some policy's scope.
	Checked int
	// Gaps are those the node would refuse, by name.
	Gaps []Gap
}

// SignatureReader returns the signatures carried for s: none when it has
// no signature image, an error when they cannot be read.
type SignatureReader func(ctx context.Context, s Subject) ([]Signature, error)

// Prove checks every subject in the policies' scope, reading signatures
// with read, at most parallel at once. An error of read ends it.
func Prove(ctx context.Context, policies []Policy, subjects []Subject, read SignatureReader, parallel int) (*Result, error) {
	res := &Result{}
	if len(policies) == 0 {
		return res, nil
	}
	v, err := NewVerifier(policies)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for _, s := range subjects {
		if !v.InScope(s.Repository, s.Digest) {
			continue
		}
		g.Go(func() error {
			sigs, err := read(ctx, s)
			if err != nil {
				return fmt.Errorf("signatures of %s (%s@%s): %w", s.Name, s.Repository, s.Digest, err)
			}
			gap := gapOf(s, v.Check(s.Repository, s.Digest, sigs))
			mu.Lock()
			defer mu.Unlock()
			res.Checked++
			if gap != nil {
				res.Gaps = append(res.Gaps, *gap)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(res.Gaps, func(i, j int) bool {
		a, b := res.Gaps[i], res.Gaps[j]
		return a.Name+a.Repository+a.Digest.String() < b.Name+b.Repository+b.Digest.String()
	})
	return res, nil
}

func gapOf(s Subject, err error) *Gap {
	if err == nil {
		return nil
	}
	gap := &Gap{Subject: s, Reason: err.Error()}
	var refused *RefusedError
	if errors.As(err, &refused) {
		gap.Unsigned, gap.Reason = refused.Unsigned, strings.Join(refused.Reasons, "; ")
	}
	return gap
}

// RefusedImagesError lists the gaps that refuse a pack or an apply in
// Required mode.
type RefusedImagesError struct {
	Gaps []Gap
}

// maxGapsShown caps the images an error names one by one.
const maxGapsShown = 10

func (e *RefusedImagesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d images the release's image policy covers would not run on the cluster's nodes:", len(e.Gaps))
	for i, g := range e.Gaps {
		if i == maxGapsShown {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Gaps)-maxGapsShown)
			break
		}
		fmt.Fprintf(&b, "\n  %s (%s@%s): %s", g.Name, g.Repository, g.Digest, g.Reason)
	}
	return b.String()
}
