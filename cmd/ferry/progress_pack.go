package main

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/pack"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/signature"
	"github.com/ferryhq/ferry/mirror/trust"
)

// progress is the progress display of pack, and of mirror's source side.
func (o *packOptions) progress(env *environment) mirror.Progress {
	return newPhaseProgress(env, progressFor(o.quiet, o.json), o.parallel)
}

// progress is the progress display of apply, and of mirror's target side.
func (o *applyOptions) progress(env *environment) mirror.Progress {
	return newPhaseProgress(env, progressFor(o.quiet, o.json), o.parallel)
}

// resolvedFigure names each resolved release by its tag (or version) and
// short digest.
func resolvedFigure(refs []release.Ref) string {
	names := make([]string, 0, len(refs))
	for _, r := range refs {
		name := r.Tag
		if name == "" {
			name = r.Version
		}
		names = append(names, strings.TrimSpace(name+" "+r.Digest.Algorithm().String()+":"+mirror.ShortDigest(r.Digest)))
	}
	return strings.Join(names, ", ")
}

// signedFigure says how many releases carry verified signatures.
func signedFigure(signed map[digest.Digest][]signature.Accepted, releases int) string {
	sigs := 0
	for _, s := range signed {
		sigs += len(s)
	}
	if len(signed) == releases {
		return fmt.Sprintf("%s verified for %s", plural(sigs, "signature"), plural(releases, "release"))
	}
	return fmt.Sprintf("%d of %d releases signed; the others UNSIGNED (--allow-unsigned)", len(signed), releases)
}

// showBlobsToFetch is the line that says what the fetch will move and what
// the inventory left out.
func showBlobsToFetch(p mirror.Progress, in packInputs) {
	carried := len(in.plan.Blobs) - len(in.prereqs)
	bytes := pack.BlobBytes(in.plan.Blobs) - pack.PrerequisiteBytes(in.prereqs)
	figure := "nothing left out"
	if len(in.prereqs) > 0 {
		figure = fmt.Sprintf("left out %s (%s) already in the mirror", plural(len(in.prereqs), "blob"), formatBytes(pack.PrerequisiteBytes(in.prereqs)))
	}
	beginStep(p, fmt.Sprintf("%s to fetch (%s)", plural(carried, "blob"), formatBytes(bytes))).Done(figure, nil)
}

// appliedFigure counts the objects applied.
func appliedFigure(applied []string) string {
	return plural(len(applied), "object")
}

// proofFigure says what the trust check proved, and how many faults it
// found when it found any.
func proofFigure(proof *trust.Report) string {
	figure := plural(len(proof.Images), "image") + " proven"
	if n := len(proof.Faults) + proof.Omitted; n > 0 {
		figure += ", " + plural(n, "fault")
	}
	return figure
}
