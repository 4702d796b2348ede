package prune

import (
	"context"
	"fmt"

	"github.com/ferryhq/ferry/mirror/registry"
)

// DeleteOptions tune Delete.
type DeleteOptions struct {
	// Registry says how to reach the registry (auth, TLS, retries).
	Registry registry.Options
	// Deleted, when set, is called after each manifest is deleted.
	Deleted func(d Deletion)
}

// Delete deletes p's manifests, one at a time in p's order (lists before
// their children), each by digest, which removes every tag pointing at it.
// It returns the deletions done, also on error: a prune stopped midway is
// finished by running it again. A registry that does not delete fails
// the first one with a *registry.DeleteUnsupportedError, and nothing is
// deleted.
func Delete(ctx context.Context, p *Plan, opts DeleteOptions) ([]Deletion, error) {
	if len(p.Deletions) == 0 {
		return nil, nil
	}
	del, err := registry.New(opts.Registry).ManifestDeleter(p.Repository)
	if err != nil {
		return nil, err
	}
	var done []Deletion
	for _, d := range p.Deletions {
		if err := del.Delete(ctx, d.Digest); err != nil {
			return done, fmt.Errorf("pruning %s (%d of %d manifests deleted): %w", p.Repository, len(done), len(p.Deletions), err)
		}
		done = append(done, d)
		if opts.Deleted != nil {
			opts.Deleted(d)
		}
	}
	return done, nil
}
