package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// dataBlob pushes a small in-memory blob (a config, a signature payload).
func (b *builder) dataBlob(ctx context.Context, repo string, data []byte) (*blob, error) {
	bl := &blob{digest: digest.FromBytes(data), size: int64(len(data)), data: data}
	return bl, b.ensureBlob(ctx, repo, bl)
}

// jsonBlob pushes v, marshalled as compact JSON (an image config).
func (b *builder) jsonBlob(ctx context.Context, repo string, v any) (*blob, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return b.dataBlob(ctx, repo, data)
}

// newLayer generates a random layer labelled label of LayerSize and pushes
// it to repo.
func (b *builder) newLayer(ctx context.Context, repo, label string) (*blob, error) {
	return b.newLayerOf(ctx, repo, label, b.opts.LayerSize)
}

// newLayerOf generates a random layer labelled label, of size bytes of
// random payload, and pushes it to repo.
func (b *builder) newLayerOf(ctx context.Context, repo, label string, size int64) (*blob, error) {
	seed := seedFor(b.opts.Seed, b.opts.Version, label)
	name := layerFileName(label)
	if size <= streamThreshold {
		var buf bytes.Buffer
		diffID, err := writeRandomLayer(&buf, seed, name, size)
		if err != nil {
			return nil, err
		}
		data := buf.Bytes()
		bl := &blob{digest: digest.FromBytes(data), size: int64(len(data)), diffID: diffID, data: data}
		return bl, b.ensureBlob(ctx, repo, bl)
	}
	var diffID digest.Digest
	gen := func(w io.Writer) error {
		var err error
		diffID, err = writeRandomLayer(w, seed, name, size)
		return err
	}
	d, n, err := b.stream(ctx, repo, gen)
	if err != nil {
		return nil, fmt.Errorf("pushing layer %s: %w", label, err)
	}
	bl := &blob{digest: d, size: n, diffID: diffID, gen: func(w io.Writer) error {
		_, err := writeRandomLayer(w, seed, name, size)
		return err
	}}
	b.mu.Lock()
	f := &flight{done: make(chan struct{})}
	close(f.done)
	b.flights[repo+"@"+d.String()] = f
	if _, ok := b.homes[d]; !ok {
		b.homes[d] = repo
	}
	b.mu.Unlock()
	return bl, nil
}

// stream pushes what gen writes, generated while it uploads. gen has
// returned when stream does.
func (b *builder) stream(ctx context.Context, repo string, gen func(io.Writer) error) (digest.Digest, int64, error) {
	pr, pw := io.Pipe()
	genErr := make(chan error, 1)
	go func() {
		err := gen(pw)
		_ = pw.CloseWithError(err)
		genErr <- err
	}()
	d, n, err := b.c.PushBlobFrom(ctx, repo, pr)
	_ = pr.CloseWithError(io.ErrClosedPipe) // unblocks gen if the push stopped early
	if gerr := <-genErr; gerr != nil && err == nil {
		err = gerr
	}
	return d, n, err
}

// ensureBlob makes sure repo holds bl, pushing it at most once per build
// even when asked concurrently: present, mounted from a repository of this
// registry that has it, or uploaded (regenerated if large).
func (b *builder) ensureBlob(ctx context.Context, repo string, bl *blob) error {
	key := repo + "@" + bl.digest.String()
	b.mu.Lock()
	if f, ok := b.flights[key]; ok {
		b.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	b.flights[key] = f
	home := b.homes[bl.digest]
	b.mu.Unlock()

	f.err = b.pushBlob(ctx, repo, home, bl)
	if f.err == nil {
		b.mu.Lock()
		if _, ok := b.homes[bl.digest]; !ok {
			b.homes[bl.digest] = repo
		}
		b.mu.Unlock()
	}
	close(f.done)
	return f.err
}

func (b *builder) pushBlob(ctx context.Context, repo, home string, bl *blob) error {
	ok, err := b.c.BlobExists(ctx, repo, bl.digest)
	if err != nil || ok {
		return err
	}
	if home != "" && home != repo {
		if ok, err := b.c.MountBlob(ctx, repo, home, bl.digest); err != nil || ok {
			return err
		}
	}
	if bl.data != nil {
		return b.c.uploadBlob(ctx, repo, bl.digest, bl.data)
	}
	if bl.gen == nil {
		return fmt.Errorf("blob %s: no content to push", bl.digest)
	}
	d, _, err := b.stream(ctx, repo, bl.gen)
	if err == nil && d != bl.digest {
		err = fmt.Errorf("regenerated blob has digest %s, want %s", d, bl.digest)
	}
	return err
}
