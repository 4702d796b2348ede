package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/inventory"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/signature"
)

// copyBufferSize is each worker's buffer: large enough for few syscalls,
// small enough that memory does not grow with --parallel.
const copyBufferSize = 1 << 20

// packWriter streams a plan into a bundle.
type packWriter struct {
	opts *packOptions
	env  *environment
	plan *mirror.Plan
	// blobs are the plan's blobs to carry; prereqs those left out because
	// the mirror holds them (--since), recorded in the index.
	blobs      []*mirror.Blob
	prereqs    []bundle.Prerequisite
	inventory  *inventory.Inventory // --since, or nil
	updatePath []string             // versions of an update path, in order
	signed     map[digest.Digest][]signature.Accepted
	signer     *signature.SigningKey // --sign-key, or nil
	volumeSize int64
	retry      registry.RetryPolicy
}

func (p *packWriter) write(ctx context.Context) (sum *packSummary, err error) {
	wopts := bundle.WriteOptions{
		VolumeSize: p.volumeSize,
		Force:      p.opts.force,
		Warn:       func(msg string) { p.env.log.Warn(msg) },
	}
	if p.signer != nil {
		wopts.SignIndex = func(index []byte) ([]byte, error) { return detachedSignature(p.signer, bytes.NewReader(index)) }
	}
	w, err := bundle.Create(p.opts.output, wopts)
	if errors.Is(err, fs.ErrExist) {
		return nil, usageError(fmt.Errorf("%w (pass --force to replace it)", err))
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if abortErr := w.Abort(); abortErr != nil {
				p.env.log.Error("could not remove the partial bundle", "error", abortErr)
			}
		}
	}()
	idx := p.index()
	if !p.opts.noSelf {
		if err := addSelf(w, p.signer); err != nil {
			return nil, err
		}
	}
	if err := p.addSignatures(w, idx); err != nil {
		return nil, err
	}
	if err := p.addManifests(w); err != nil {
		return nil, err
	}
	if err := p.fetchBlobs(ctx, w); err != nil {
		return nil, err
	}
	if err := p.addLayout(w); err != nil {
		return nil, err
	}
	if err := w.Finish(idx); err != nil {
		return nil, err
	}
	return &packSummary{
		Bundle:            p.opts.output,
		Volumes:           w.Paths(),
		Releases:          len(p.plan.Releases),
		Images:            len(p.plan.Images),
		Blobs:             len(p.blobs),
		Bytes:             blobBytes(p.blobs),
		Prerequisites:     len(p.prereqs),
		PrerequisiteBytes: prerequisiteBytes(p.prereqs),
		UpdatePath:        p.updatePath,
		ID:                w.ID(),
	}, nil
}

// index fills everything the writer does not: releases, images, options.
func (p *packWriter) index() *bundle.Index {
	idx := &bundle.Index{Tool: bundle.Tool{Name: "ferry", Version: version, Commit: commit}}
	idx.Options, _ = json.Marshal(p.record())
	idx.Prerequisites = p.prereqs
	idx.UpdatePath = p.updatePath
	for _, r := range p.plan.Releases {
		rel := bundle.Release{
			Version: r.Version, Arch: r.Arch, Source: r.PullSpec(), Digest: r.Digest,
			MediaType: r.MediaType, Tag: r.Tag(), Unsigned: len(p.signed[r.Digest]) == 0,
			Signatures: []bundle.ReleaseSignature{}, Components: []bundle.Component{},
		}
		for i, a := range p.signed[r.Digest] {
			rel.Signatures = append(rel.Signatures, bundle.ReleaseSignature{
				File: bundle.SignatureName(r.Digest, i+1), KeyFingerprint: a.Verified.Fingerprint,
				Identity: a.Verified.Identity, Creator: a.Verified.Creator,
			})
		}
		if !rel.Unsigned {
			rel.ConfigMap = signatureConfigMapName(r.Digest)
		}
		for _, c := range r.Components {
			rel.Components = append(rel.Components, bundle.Component{Name: c.Name, Image: c.Image})
		}
		idx.Releases = append(idx.Releases, rel)
	}
	for _, img := range p.plan.Images {
		idx.Images = append(idx.Images, bundle.Image{
			Source: img.Repository, Digest: img.Digest, MediaType: img.MediaType, Size: int64(len(img.Manifest)),
			Tags: img.Tags, Role: img.Role, Children: img.Children, Blobs: img.Blobs,
		})
	}
	return idx
}

// packRecord is how a bundle was made, as its index records it. No secrets:
// the auth file is not even named.
type packRecord struct {
	Releases        []string     `json:"releases"`
	Arch            string       `json:"arch"`
	VolumeSize      int64        `json:"volumeSize,omitempty"`
	Parallel        int          `json:"parallel"`
	AllowUnsigned   bool         `json:"allowUnsigned,omitempty"`
	SignatureStores []string     `json:"signatureStores,omitempty"`
	Graph           *graphRecord `json:"graph,omitempty"`
	Since           *sinceRecord `json:"since,omitempty"`
	// SignedBy names the key that signed the bundle (--sign-key); the
	// signature itself is ferry-index.json.asc.
	SignedBy *signerRecord `json:"signedBy,omitempty"`
	// Config is the pack as a ferry.yaml: `ferry inspect --config` prints
	// it, and `ferry pack -f` makes the bundle again.
	Config *packConfig `json:"config,omitempty"`
}

// graphRecord is how the releases were picked from the update graph.
type graphRecord struct {
	URL         string `json:"url"`
	Channel     string `json:"channel"`
	From        string `json:"from,omitempty"`
	To          string `json:"to,omitempty"`
	Min         string `json:"min,omitempty"`
	Max         string `json:"max,omitempty"`
	AcceptRisks bool   `json:"acceptRisks,omitempty"`
}

// signerRecord names the packer's key.
type signerRecord struct {
	Fingerprint string `json:"fingerprint"`
	UserID      string `json:"userID,omitempty"`
}

// sinceRecord names the inventory an incremental bundle was packed against.
type sinceRecord struct {
	Source  string    `json:"source"`
	Created time.Time `json:"created"`
}

func (p *packWriter) record() packRecord {
	rec := packRecord{
		Releases:        p.opts.releases,
		Arch:            p.opts.arch,
		VolumeSize:      p.volumeSize,
		Parallel:        p.opts.parallel,
		AllowUnsigned:   p.opts.allowUnsigned,
		SignatureStores: p.opts.trust.stores.Value(),
		Config:          p.opts.effectiveConfig(),
	}
	if g := p.opts.graph; g.active() {
		rec.Graph = &graphRecord{URL: g.graphURL, Channel: g.channel, From: g.from, To: g.to, Min: g.min, Max: g.max, AcceptRisks: g.acceptRisks}
		for _, r := range p.plan.Releases {
			rec.Releases = append(rec.Releases, r.PullSpec())
		}
	}
	if p.inventory != nil {
		rec.Since = &sinceRecord{Source: p.inventory.Source, Created: p.inventory.Created}
	}
	if p.signer != nil {
		rec.SignedBy = &signerRecord{Fingerprint: p.signer.Fingerprint, UserID: p.signer.UserID}
	}
	return rec
}

// addSelf puts the running ferry binary at the top of the bundle, so the
// bastion runs exactly the version that made it: tar -xf bundle.tar ferry.
// With a signer, its detached signature follows it (ferry.asc), made from
// the same read that fills the bundle.
func addSelf(w *bundle.Writer, signer *signature.SigningKey) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find ferry's own binary to carry (or pass --no-self): %w", err)
	}
	f, err := os.Open(exe)
	if err != nil {
		return fmt.Errorf("carry ferry's own binary (or pass --no-self): %w", err)
	}
	defer closeInto(&err, f, exe)
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("carry ferry's own binary: %w", err)
	}
	slot, err := w.Reserve(bundle.SelfName, st.Size(), "")
	if err != nil {
		return err
	}
	if signer == nil {
		if _, err := io.CopyBuffer(slot, f, make([]byte, copyBufferSize)); err != nil {
			return fmt.Errorf("carry ferry's own binary %s: %w", exe, err)
		}
		return slot.Commit()
	}
	sig, err := detachedSignature(signer, io.TeeReader(bufio.NewReaderSize(f, copyBufferSize), slot))
	if err != nil {
		return fmt.Errorf("carry ferry's own binary %s: %w", exe, err)
	}
	if err := slot.Commit(); err != nil {
		return err
	}
	return w.AddFile(bundle.SelfSignatureName, sig)
}

// detachedSignature is signer's armored detached signature of data.
func detachedSignature(signer *signature.SigningKey, data io.Reader) ([]byte, error) {
	var sig bytes.Buffer
	if err := signer.SignDetached(&sig, data); err != nil {
		return nil, err
	}
	return sig.Bytes(), nil
}

func signatureConfigMapName(d digest.Digest) string {
	return "mirror/config/" + manifests.SignatureConfigMapFile(d)
}

func (p *packWriter) addSignatures(w *bundle.Writer, idx *bundle.Index) error {
	for _, r := range idx.Releases {
		accepted := p.signed[r.Digest]
		if len(accepted) == 0 {
			continue
		}
		sigs := make([][]byte, len(accepted))
		for i, a := range accepted {
			sigs[i] = a.Data
			if err := w.AddFile(r.Signatures[i].File, a.Data); err != nil {
				return err
			}
		}
		cm, err := manifests.SignatureConfigMap(r.Digest, sigs)
		if err != nil {
			return err
		}
		if err := w.AddFile(r.ConfigMap, cm); err != nil {
			return err
		}
	}
	return nil
}

// addManifests stores every manifest once, byte for byte.
func (p *packWriter) addManifests(w *bundle.Writer) error {
	seen := map[digest.Digest]bool{}
	for _, img := range p.plan.Images {
		if seen[img.Digest] {
			continue
		}
		seen[img.Digest] = true
		if err := w.AddFile(bundle.BlobName(img.Digest), img.Manifest); err != nil {
			return err
		}
	}
	return nil
}

func (p *packWriter) addLayout(w *bundle.Writer) error {
	var entries []bundle.LayoutEntry
	for _, img := range p.plan.Images {
		for _, tag := range img.Tags {
			entries = append(entries, bundle.LayoutEntry{Digest: img.Digest, MediaType: img.MediaType, Size: int64(len(img.Manifest)), RefName: tag})
		}
	}
	index, err := bundle.OCIIndex(entries)
	if err != nil {
		return err
	}
	if err := w.AddFile(bundle.LayoutFileName, bundle.OCILayout()); err != nil {
		return err
	}
	return w.AddFile(bundle.LayoutIndexName, index)
}

// fetchBlobs reserves every blob's place in the bundle, then fills the
// reservations concurrently, straight from the registry.
func (p *packWriter) fetchBlobs(ctx context.Context, w *bundle.Writer) error {
	slots := make([]*bundle.Slot, len(p.blobs))
	for i, b := range p.blobs {
		s, err := w.Reserve(bundle.BlobName(b.Digest), b.Size, b.Digest.Encoded())
		if err != nil {
			return err
		}
		slots[i] = s
	}
	prog := newProgress(p.env, p.opts.quiet, "pack", blobBytes(p.blobs), len(p.blobs))
	defer prog.finish()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.parallel)
	for i, b := range p.blobs {
		g.Go(func() error {
			line := prog.item(shortDigest(b.Digest), b.Size)
			err := p.fetchBlob(ctx, b, slots[i], line)
			line.done(err)
			return err
		})
	}
	return g.Wait()
}

// fetchBlob fills one reservation, from the cache when it holds the blob,
// retrying transient registry failures from the start of the blob.
func (p *packWriter) fetchBlob(ctx context.Context, b *mirror.Blob, slot *bundle.Slot, line progressItem) error {
	if p.opts.cacheDir != "" && p.fromCache(b, slot, line) {
		return nil
	}
	return registry.Do(ctx, p.retry, "fetch blob "+b.Digest.String(), func(ctx context.Context) error {
		slot.Reset()
		line.reset()
		rc, err := p.plan.OpenBlob(ctx, b)
		if err != nil {
			return settled{err} // OpenBlob has retried already
		}
		defer rc.Close()
		dst, finishCache := p.cacheWriter(b, slot)
		buf := make([]byte, copyBufferSize)
		if _, err := io.CopyBuffer(progressWriter{dst, line}, rc, buf); err != nil {
			finishCache(false)
			return fmt.Errorf("fetch blob %s from %s: %w", b.Digest, b.Repository, err)
		}
		if err := slot.Commit(); err != nil {
			finishCache(false)
			return fmt.Errorf("blob %s from %s: %w", b.Digest, b.Repository, err)
		}
		finishCache(true)
		return nil
	})
}

// settled is an error already retried as often as it should be: it hides
// the cause's chain from registry.Do so the retries do not multiply.
type settled struct{ err error }

func (s settled) Error() string { return s.err.Error() }

// Is keeps an interruption recognisable (exit code 130).
func (s settled) Is(target error) bool {
	return (target == context.Canceled || target == context.DeadlineExceeded) && errors.Is(s.err, target)
}

func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// packSummary is what pack prints at the end.
type packSummary struct {
	Bundle   string   `json:"bundle"`
	ID       string   `json:"id"`
	Volumes  []string `json:"volumes"`
	Releases int      `json:"releases"`
	Images   int      `json:"images"`
	// Blobs and Bytes are the configs and layers carried.
	Blobs int   `json:"uniqueBlobs"`
	Bytes int64 `json:"bytes"`
	// Prerequisites are the blobs left out (--since).
	Prerequisites     int           `json:"prerequisites,omitempty"`
	PrerequisiteBytes int64         `json:"prerequisiteBytes,omitempty"`
	UpdatePath        []string      `json:"updatePath,omitempty"`
	WallTime          time.Duration `json:"wallTimeNanos"`
}

func (s *packSummary) print(env *environment, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(env.stdout).Encode(s)
	}
	rate := float64(s.Bytes) / max(s.WallTime.Seconds(), 1e-9)
	fmt.Fprintf(env.stdout, "packed %d release(s), %d images, %d unique blobs, %s in %s (%s/s)\n",
		s.Releases, s.Images, s.Blobs, formatBytes(s.Bytes), s.WallTime.Round(time.Millisecond), formatBytes(int64(rate)))
	if s.Prerequisites > 0 {
		fmt.Fprintf(env.stdout, "left out %d blobs (%s) the mirror holds: prerequisites of this bundle\n", s.Prerequisites, formatBytes(s.PrerequisiteBytes))
	}
	if len(s.UpdatePath) > 0 {
		fmt.Fprintf(env.stdout, "update path: %s\n", strings.Join(s.UpdatePath, " -> "))
	}
	for _, v := range s.Volumes {
		fmt.Fprintf(env.stdout, "wrote %s\n", v)
	}
	return nil
}

// blobCache is --cache-dir: verified blobs by digest, so a rerun of an
// interrupted pack does not fetch them again.
func (p *packWriter) cachePath(d digest.Digest) string {
	return filepath.Join(p.opts.cacheDir, string(d.Algorithm()), d.Encoded())
}

// fromCache fills slot from the cache; a missing or corrupt entry returns
// false (and a corrupt one is removed).
func (p *packWriter) fromCache(b *mirror.Blob, slot *bundle.Slot, line progressItem) bool {
	f, err := os.Open(p.cachePath(b.Digest))
	if err != nil {
		return false
	}
	defer f.Close()
	slot.Reset()
	if _, err := io.CopyBuffer(progressWriter{slot, line}, f, make([]byte, copyBufferSize)); err == nil {
		if err := slot.Commit(); err == nil {
			return true
		}
	}
	p.env.log.Warn("cached blob is corrupt; fetching it again", "blob", b.Digest)
	_ = os.Remove(f.Name())
	slot.Reset()
	line.reset()
	return false
}

// cacheWriter tees the download into a temporary cache file; finish(true)
// publishes it once the digest has been checked.
func (p *packWriter) cacheWriter(b *mirror.Blob, slot *bundle.Slot) (io.Writer, func(ok bool)) {
	if p.opts.cacheDir == "" {
		return slot, func(bool) {}
	}
	final := p.cachePath(b.Digest)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		p.env.log.Warn("cache disabled for blob", "blob", b.Digest, "error", err)
		return slot, func(bool) {}
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), ".partial-")
	if err != nil {
		p.env.log.Warn("cache disabled for blob", "blob", b.Digest, "error", err)
		return slot, func(bool) {}
	}
	return io.MultiWriter(slot, tmp), func(ok bool) {
		closeErr := tmp.Close()
		// CreateTemp makes 0600; cached blobs are as readable as the bundle.
		if ok && closeErr == nil && os.Chmod(tmp.Name(), 0o644) == nil && os.Rename(tmp.Name(), final) == nil {
			return
		}
		_ = os.Remove(tmp.Name())
	}
}
