package mirror

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror/sigstore"
)

// SigstoreReport is what a plan proved of its releases' Sigstore
// signatures.
type SigstoreReport struct {
	Mode sigstore.Mode
	sigstore.Result
}

// SigstoreSubjects lists the images of rel that rel's policies may cover:
// every manifest the cluster will run or resolve (the release, its list
// children, each component and its children), once per repository.
func (p *Plan) SigstoreSubjects(rel *Release) []sigstore.Subject {
	byKey := map[string]*Image{}
	for _, img := range p.Images {
		byKey[imageKey(img.Repository, img.Digest)] = img
	}
	var out []sigstore.Subject
	seen := map[string]bool{}
	add := func(repo string, d digest.Digest, name string) {
		img, ok := byKey[imageKey(repo, d)]
		if !ok || seen[imageKey(repo, d)] {
			return
		}
		seen[imageKey(repo, d)] = true
		out = append(out, sigstore.Subject{Repository: repo, Digest: d, Name: name})
		for _, c := range img.Children {
			if !seen[imageKey(repo, c)] {
				seen[imageKey(repo, c)] = true
				out = append(out, sigstore.Subject{Repository: repo, Digest: c, Name: name + " (" + ShortDigest(c) + ")"})
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
// payloads of the signature images the walk found. In Required mode a gap
// fails the plan with a *sigstore.RefusedImagesError.
func (w *walk) checkSigstore(ctx context.Context, plan *Plan) (*SigstoreReport, error) {
	mode := w.planner.SigstoreMode
	if mode == "" {
		mode = sigstore.Required
	}
	report := &SigstoreReport{Mode: mode}
	if mode == sigstore.Off {
		return report, nil
	}
	for _, rel := range plan.Releases {
		res, err := sigstore.Prove(ctx, rel.Policies, plan.SigstoreSubjects(rel), w.readSignatures, w.planner.parallel())
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", rel.Version, err)
		}
		report.Checked += res.Checked
		report.Gaps = append(report.Gaps, res.Gaps...)
	}
	if mode == sigstore.Required && len(report.Gaps) > 0 {
		return report, &sigstore.RefusedImagesError{Gaps: report.Gaps}
	}
	return report, nil
}

// readSignatures reads the payloads of the signature image the walk found
// for s, from its repository; none when it has no signature image.
func (w *walk) readSignatures(ctx context.Context, s sigstore.Subject) ([]sigstore.Signature, error) {
	w.mu.Lock()
	sig, ok := w.signatures[imageKey(s.Repository, s.Digest)]
	w.mu.Unlock()
	if !ok {
		return nil, nil
	}
	src, err := w.source(ctx, s.Repository)
	if err != nil {
		return nil, err
	}
	return sigstore.Signatures(sig.Manifest, sig.MediaType, func(d digest.Digest, size int64) ([]byte, error) {
		rc, err := src.VerifiedBlob(ctx, d, size)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, size))
	})
}
