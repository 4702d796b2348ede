package apply

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror"
)

// BundleSource serves a bundle's files, read in place. The bundle must have
// been verified (bundle.Reader.Verify) first: its blobs are not hashed
// again on the way out (the registry still checks every digest).
type BundleSource struct {
	Reader *bundle.Reader
}

// Manifest reads manifest d from the bundle, checked against d.
func (s BundleSource) Manifest(_ context.Context, d digest.Digest) ([]byte, error) {
	return s.Reader.ReadImageManifest(d)
}

// OpenBlob returns a seekable reader of blob d as it sits in the bundle.
func (s BundleSource) OpenBlob(_ context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	sr, n, err := s.Reader.Blob(d)
	if err != nil {
		return nil, err
	}
	if n != size {
		return nil, fmt.Errorf("bundle: blob %s is %d bytes, its manifest says %d", d, n, size)
	}
	return nopSeekCloser{sr}, nil
}

// Verified is true: the bundle was verified before anything is pushed.
func (BundleSource) Verified() bool { return true }

type nopSeekCloser struct{ io.ReadSeeker }

func (nopSeekCloser) Close() error { return nil }

// PlanSource serves a plan straight from its source registries: manifests
// from the plan (read and digest-checked while planning), blobs streamed
// and checked in flight by the upload.
type PlanSource struct {
	Plan *mirror.Plan
	// manifests by digest, from the plan
	manifests map[digest.Digest][]byte
	blobs     map[digest.Digest]*mirror.Blob
}

// NewPlanSource indexes plan's manifests and blobs.
func NewPlanSource(plan *mirror.Plan) *PlanSource {
	s := &PlanSource{Plan: plan, manifests: map[digest.Digest][]byte{}, blobs: map[digest.Digest]*mirror.Blob{}}
	for _, img := range plan.Images {
		s.manifests[img.Digest] = img.Manifest
	}
	for _, b := range plan.Blobs {
		s.blobs[b.Digest] = b
	}
	return s
}

// Manifest returns the plan's bytes of manifest d.
func (s *PlanSource) Manifest(_ context.Context, d digest.Digest) ([]byte, error) {
	data, ok := s.manifests[d]
	if !ok {
		return nil, fmt.Errorf("manifest %s is not in the plan", d)
	}
	return data, nil
}

// OpenBlob streams blob d from the registry the plan found it in.
func (s *PlanSource) OpenBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	b, ok := s.blobs[d]
	if !ok {
		return nil, fmt.Errorf("blob %s is not in the plan", d)
	}
	if b.Size != size {
		return nil, fmt.Errorf("blob %s is %d bytes in the plan, %d in a manifest", d, b.Size, size)
	}
	return s.Plan.OpenBlob(ctx, b)
}

// Verified is false: blobs are checked as they stream.
func (*PlanSource) Verified() bool { return false }
