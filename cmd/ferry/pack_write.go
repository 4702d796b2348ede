package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/inventory"
	"github.com/ferryhq/ferry/mirror/pack"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/signature"
)

// packInputs is what pack has worked out before writing: what the flags
// say once read, and what was resolved, verified and planned.
type packInputs struct {
	plan       *mirror.Plan
	prereqs    []bundle.Prerequisite // blobs left out because of --since
	inventory  *inventory.Inventory  // --since, or nil
	updatePath []string              // versions of an update path, in order
	signed     map[digest.Digest][]signature.Accepted
	signer     *signature.SigningKey // --sign-key, or nil
	volumeSize int64
	retry      registry.RetryPolicy
}

// write hands the plan to the pack engine and returns what to print.
func (o *packOptions) write(ctx context.Context, env *environment, in packInputs) (*packSummary, error) {
	self := ""
	if !o.noSelf {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find ferry's own binary to carry (or pass --no-self): %w", err)
		}
		self = exe
	}
	record, err := json.Marshal(o.record(in))
	if err != nil {
		return nil, err
	}
	showBlobsToFetch(o.progress(env), in)
	res, err := pack.Write(ctx, in.plan, pack.Options{
		Output:        o.output,
		VolumeSize:    in.volumeSize,
		Force:         o.force,
		Parallel:      o.parallel,
		Retry:         in.retry,
		CacheDir:      o.cacheDir,
		Signatures:    in.signed,
		SigningKey:    in.signer,
		Self:          self,
		UpdatePath:    in.updatePath,
		Prerequisites: in.prereqs,
		Tool:          bundle.Tool{Name: "ferry", Version: version, Commit: commit},
		Record:        record,
		Progress:      o.progress(env),
		Log:           env.log,
	})
	if errors.As(err, new(*pack.ExistsError)) {
		return nil, usageError(fmt.Errorf("%w (pass --force to replace it)", err))
	}
	if errors.As(err, new(*pack.SelfError)) {
		return nil, fmt.Errorf("%w (or pass --no-self)", err)
	}
	if err != nil {
		return nil, err
	}
	volumeBytes, err := fileSizes(res.Volumes)
	if err != nil {
		return nil, err
	}
	return &packSummary{
		VolumeBytes:       volumeBytes,
		ReleaseTags:       releaseTags(in.plan),
		Bundle:            o.output,
		Volumes:           res.Volumes,
		Releases:          len(in.plan.Releases),
		Catalogs:          len(in.plan.Catalogs),
		Images:            len(in.plan.Images),
		Blobs:             res.Blobs,
		Bytes:             res.Bytes,
		Prerequisites:     res.Prerequisites,
		PrerequisiteBytes: res.PrerequisiteBytes,
		UpdatePath:        in.updatePath,
		ID:                res.ID,
	}, nil
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

// record is how this pack was made, for the index's options.
func (o *packOptions) record(in packInputs) packRecord {
	rec := packRecord{
		Releases:        o.releases,
		Arch:            o.arch,
		VolumeSize:      in.volumeSize,
		Parallel:        o.parallel,
		AllowUnsigned:   o.allowUnsigned,
		SignatureStores: o.trust.stores.Value(),
		Config:          o.effectiveConfig(),
	}
	if g := o.graph; g.active() {
		rec.Graph = &graphRecord{URL: g.graphURL, Channel: g.channel, From: g.from, To: g.to, Min: g.min, Max: g.max, AcceptRisks: g.acceptRisks}
		for _, r := range in.plan.Releases {
			rec.Releases = append(rec.Releases, r.PullSpec())
		}
	}
	if in.inventory != nil {
		rec.Since = &sinceRecord{Source: in.inventory.Source, Created: in.inventory.Created}
	}
	if in.signer != nil {
		rec.SignedBy = &signerRecord{Fingerprint: in.signer.Fingerprint, UserID: in.signer.UserID}
	}
	return rec
}

// packSummary is what pack prints at the end.
type packSummary struct {
	Bundle   string   `json:"bundle"`
	ID       string   `json:"id"`
	Volumes  []string `json:"volumes"`
	Releases int      `json:"releases"`
	Catalogs int      `json:"catalogs,omitempty"`
	Images   int      `json:"images"`
	// Blobs and Bytes are the configs and layers carried.
	Blobs int   `json:"uniqueBlobs"`
	Bytes int64 `json:"bytes"`
	// Prerequisites are the blobs left out (--since).
	Prerequisites     int           `json:"prerequisites,omitempty"`
	PrerequisiteBytes int64         `json:"prerequisiteBytes,omitempty"`
	UpdatePath        []string      `json:"updatePath,omitempty"`
	WallTime          time.Duration `json:"wallTimeNanos"`
	// ReleaseTags name the releases, <version>-<arch>.
	ReleaseTags []string `json:"releaseTags,omitempty"`
	// VolumeBytes are the sizes of Volumes, in order.
	VolumeBytes []int64 `json:"volumeBytes"`
}
