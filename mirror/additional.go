package mirror

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
	"golang.org/x/sync/errgroup"
)

// AdditionalImage is an image the packer names to carry besides releases
// and catalogs (must-gather, tools, the site's own images): by tag or
// digest, every platform of a list, with its .sig tag.
type AdditionalImage struct {
	// Ref is the pull spec, by tag or digest.
	Ref string
	// TargetRepo replaces the repository path under the target the image
	// goes to (default: its source path, so that ITMS keeps its tag);
	// TargetTag the tag it gets there (default: its source tag).
	TargetRepo string
	TargetTag  string
	// Platforms, when set, narrow a list to these platforms' images: the
	// image carried is a rewritten list with its own digest.
	Platforms []Platform
}

// Additional is what an additional image resolved to.
type Additional struct {
	AdditionalImage
	Repository string
	// Tag is the source tag Ref names ("" for a digest reference); Digest
	// what is carried: what it named when packed or, narrowed to
	// Platforms, the rewritten list, and then SourceDigest what it named.
	Tag          string
	Digest       digest.Digest
	SourceDigest digest.Digest
	// Target is the repository path under the target it goes to, and
	// TargetTag its tag there ("" for a digest reference).
	Target    string
	TargetTag string
	// AlreadyCarried names the role of the same image when a release or
	// catalog carries it already: it is not carried twice.
	AlreadyCarried string
	// MovedFrom is the manifest an inventory (pack --since) says the
	// mirror holds under Target:TargetTag, when it is not Digest: the tag
	// moved since, and apply will move it in the mirror too.
	MovedFrom digest.Digest
}

// Blocked is an image a blockedImages pattern left out.
type Blocked struct {
	Ref     string
	Pattern string
}

// BlockedError is a blockedImages pattern that matches an image a
// release or a catalog needs: leaving it out would break them.
type BlockedError struct {
	Ref, Pattern, Why string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("blocked image pattern %q matches %s, which %s needs: a release or catalog cannot be carried without it", e.Pattern, e.Ref, e.Why)
}

// blockedBy is the first pattern matching ref, or "".
func blockedBy(patterns []*regexp.Regexp, ref string) string {
	for _, p := range patterns {
		if p.MatchString(ref) {
			return p.String()
		}
	}
	return ""
}

// checkBlocked refuses a plan whose releases or catalogs need an image a
// pattern matches.
func checkBlocked(patterns []*regexp.Regexp, plan *Plan) error {
	if len(patterns) == 0 {
		return nil
	}
	for _, r := range plan.Releases {
		for _, c := range r.Components {
			if p := blockedBy(patterns, c.Image); p != "" {
				return &BlockedError{Ref: c.Image, Pattern: p, Why: "release " + r.Version + " (component " + c.Name + ")"}
			}
		}
	}
	for _, c := range plan.Catalogs {
		for _, im := range c.Images {
			if p := blockedBy(patterns, im.Ref); p != "" {
				return &BlockedError{Ref: im.Ref, Pattern: p, Why: "catalog " + c.Selection.Catalog + " (bundle " + im.Sources[0].Bundle + "; drop its package from the selection instead)"}
			}
		}
	}
	return nil
}

// additionalImages resolves and walks every additional image not blocked,
// concurrently.
func (w *walk) additionalImages(ctx context.Context) ([]Additional, []Blocked, error) {
	var todo []AdditionalImage
	var blocked []Blocked
	for _, ai := range w.planner.Images {
		if p := blockedBy(w.planner.Blocked, ai.Ref); p != "" {
			blocked = append(blocked, Blocked{Ref: ai.Ref, Pattern: p})
			continue
		}
		todo = append(todo, ai)
	}
	out := make([]Additional, len(todo))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(w.planner.parallel())
	for i, ai := range todo {
		g.Go(func() error {
			a, err := w.additionalImage(ctx, ai)
			if err != nil {
				return fmt.Errorf("additional image %s: %w", ai.Ref, err)
			}
			out[i] = a
			return nil
		})
	}
	return out, blocked, g.Wait()
}

func (w *walk) additionalImage(ctx context.Context, ai AdditionalImage) (Additional, error) {
	named, err := reference.ParseNormalizedNamed(ai.Ref)
	if err != nil {
		return Additional{}, fmt.Errorf("not an image reference: %w", err)
	}
	a := Additional{AdditionalImage: ai, Repository: reference.TrimNamed(named).String(), Target: reference.Path(named)}
	if ai.TargetRepo != "" {
		a.Target = ai.TargetRepo
	}
	src, err := w.source(ctx, a.Repository)
	if err != nil {
		return Additional{}, err
	}
	a.Tag = tagOf(named)
	a.TargetTag = a.Tag
	m, err := resolveRef(ctx, src, named)
	if errors.Is(err, errNoTagOrDigest) {
		return Additional{}, fmt.Errorf("%w (say :latest if that is meant)", err)
	}
	if err != nil {
		return Additional{}, err
	}
	if ai.TargetTag != "" {
		a.TargetTag = ai.TargetTag
	}
	if len(ai.Platforms) > 0 {
		a.SourceDigest = m.Digest
		if m, err = narrowList(m, ai.Platforms); err != nil {
			return Additional{}, err
		}
	}
	a.Digest = m.Digest
	key := imageKey(a.Repository, m.Digest)
	w.mu.Lock()
	prior, carried := w.images[key]
	w.mu.Unlock()
	if carried {
		a.AlreadyCarried = prior.Role
		return a, nil
	}
	if a.SourceDigest != "" {
		w.mu.Lock()
		w.rebuilt[key] = true // no registry holds it: no signature to look up
		w.mu.Unlock()
	}
	img, err := w.addImage(ctx, src, a.Repository, m, RoleAdditional, a.TargetTag)
	if err != nil {
		return Additional{}, err
	}
	w.setTarget(img, a.Target)
	return a, nil
}

// setTarget sends img and its children to the repository path target.
// A registry takes a manifest only with its blobs in its own repository:
// pack.LeaveOut leaves their blobs out only where the inventory says that
// repository holds them.
func (w *walk) setTarget(img *Image, target string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	images := []*Image{img}
	for _, c := range img.Children {
		if ch, ok := w.images[imageKey(img.Repository, c)]; ok {
			images = append(images, ch)
		}
	}
	for _, im := range images {
		im.Target = target
	}
}

// CheckTargetRepo checks a repository path given for TargetRepo.
func CheckTargetRepo(p string) error {
	named, err := reference.ParseNormalizedNamed("registry.invalid/" + p)
	if err != nil || reference.Path(named) != p || strings.Contains(p, "..") {
		return fmt.Errorf("targetRepo %q is not a repository path (lower-case components separated by /)", p)
	}
	return nil
}
