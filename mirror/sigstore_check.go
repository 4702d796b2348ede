package mirror

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/mirror/sigstore"
)

// SigstoreMode says what a plan does about the cosign signatures its
// releases' image policies demand.
type SigstoreMode string

const (
	// SigstoreRequired refuses the plan when an image in a policy's scope
	// lacks a signature the node would accept. The default.
	SigstoreRequired SigstoreMode = "required"
	// SigstoreBestEffort carries what exists and records each gap.
	SigstoreBestEffort SigstoreMode = "best-effort"
	// SigstoreOff checks nothing (the choice is recorded).
	SigstoreOff SigstoreMode = "off"
)

// ParseSigstoreMode reads a mode as flags and ferry.yaml spell it; empty
// is SigstoreRequired.
func ParseSigstoreMode(s string) (SigstoreMode, error) {
	switch m := SigstoreMode(s); m {
	case "":
		return SigstoreRequired, nil
	case SigstoreRequired, SigstoreBestEffort, SigstoreOff:
		return m, nil
	}
	return "", fmt.Errorf("sigstore mode %q: want required, best-effort or off", s)
}

// SigstoreSubject is one image a policy puts in scope: a release image, a
// release list's child, a component or a component list's child, in the
// repository the cluster names it by.
type SigstoreSubject struct {
	Repository string
	Digest     digest.Digest
	// Name says what the image is: "release 4.21.0", "component etcd".
	Name string
}

// SigstoreGap is an image in scope that the node would refuse to run.
type SigstoreGap struct {
	SigstoreSubject
	Unsigned bool
	Reason   string
}

// SigstoreReport is what a plan proved of its releases' Sigstore signatures.
type SigstoreReport struct {
	Mode SigstoreMode
	// Checked counts the images in some policy's scope; Gaps are those
	// the node would refuse.
	Checked int
	Gaps    []SigstoreGap
}

// SigstoreRefusedError fails a plan in SigstoreRequired mode.
type SigstoreRefusedError struct {
	Gaps []SigstoreGap
}

func (e *SigstoreRefusedError) Error() string {
	const shown = 10
	var b strings.Builder
	fmt.Fprintf(&b, "%d images the release's image policy covers would not run on the cluster's nodes:", len(e.Gaps))
	for i, g := range e.Gaps {
		if i == shown {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Gaps)-shown)
			break
		}
		fmt.Fprintf(&b, "\n  %s (%s@%s): %s", g.Name, g.Repository, g.Digest, g.Reason)
	}
	return b.String()
}

// SigstoreSubjects lists the images of rel that rel's policies cover:
// every manifest the cluster will run or resolve (the release, its list
// children, each component and its children), once per repository.
func (p *Plan) SigstoreSubjects(rel *Release) []SigstoreSubject {
	byKey := map[string]*Image{}
	for _, img := range p.Images {
		byKey[imageKey(img.Repository, img.Digest)] = img
	}
	var out []SigstoreSubject
	seen := map[string]bool{}
	add := func(repo string, d digest.Digest, name string) {
		img, ok := byKey[imageKey(repo, d)]
		if !ok || seen[imageKey(repo, d)] {
			return
		}
		seen[imageKey(repo, d)] = true
		out = append(out, SigstoreSubject{Repository: repo, Digest: d, Name: name})
		for _, c := range img.Children {
			if !seen[imageKey(repo, c)] {
				seen[imageKey(repo, c)] = true
				out = append(out, SigstoreSubject{Repository: repo, Digest: c, Name: name + " (" + ShortDigest(c) + ")"})
			}
		}
	}
	add(rel.Repository, rel.Digest, "release "+rel.Version)
	for _, c := range rel.Components {
		add(c.Repository, c.Digest, "component "+c.Name)
	}
	return out
}

// checkSigstore proves, for each release with image policies, that every
// image in their scope carries a signature the node accepts, reading the
// payloads of the signature images the walk found.
func (w *walk) checkSigstore(ctx context.Context, plan *Plan) (*SigstoreReport, error) {
	mode := w.planner.SigstoreMode
	if mode == "" {
		mode = SigstoreRequired
	}
	report := &SigstoreReport{Mode: mode}
	if mode == SigstoreOff {
		return report, nil
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(w.planner.parallel())
	for _, rel := range plan.Releases {
		if len(rel.Policies) == 0 {
			continue
		}
		v, err := sigstore.NewVerifier(rel.Policies)
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", rel.Version, err)
		}
		for _, s := range plan.SigstoreSubjects(rel) {
			if !v.InScope(s.Repository, s.Digest) {
				continue
			}
			g.Go(func() error {
				gap, err := w.checkSubject(gctx, v, s)
				mu.Lock()
				defer mu.Unlock()
				report.Checked++
				if gap != nil {
					report.Gaps = append(report.Gaps, *gap)
				}
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(report.Gaps, func(i, j int) bool { return report.Gaps[i].Name < report.Gaps[j].Name })
	if mode == SigstoreRequired && len(report.Gaps) > 0 {
		return report, &SigstoreRefusedError{Gaps: report.Gaps}
	}
	return report, nil
}

// checkSubject reads the signatures of s and checks them: a gap when the
// node would refuse s, an error when they cannot be read.
func (w *walk) checkSubject(ctx context.Context, v *sigstore.Verifier, s SigstoreSubject) (*SigstoreGap, error) {
	var sigs []sigstore.Signature
	w.mu.Lock()
	sigImage, ok := w.signatures[imageKey(s.Repository, s.Digest)]
	w.mu.Unlock()
	if ok {
		src, err := w.source(ctx, s.Repository)
		if err != nil {
			return nil, err
		}
		sigs, err = sigstore.Signatures(sigImage.Manifest, sigImage.MediaType, func(d digest.Digest, size int64) ([]byte, error) {
			rc, err := src.VerifiedBlob(ctx, d, size)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(io.LimitReader(rc, size))
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	if err := v.Check(s.Repository, s.Digest, sigs); err != nil {
		refused, _ := err.(*sigstore.RefusedError)
		gap := &SigstoreGap{SigstoreSubject: s, Reason: err.Error()}
		if refused != nil {
			gap.Unsigned, gap.Reason = refused.Unsigned, strings.Join(refused.Reasons, "; ")
		}
		return gap, nil
	}
	return nil, nil
}
