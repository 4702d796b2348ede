package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/mirror"
)

// The summaries below print for people exactly the figures --json gives:
// each is drawn from the struct that is marshalled, and from nothing else.

// summaryRow is a line of a summary's aligned block.
type summaryRow struct{ label, value string }

// writeBlock writes a headline and its rows, the values aligned.
func writeBlock(w io.Writer, headline string, rows []summaryRow) {
	fmt.Fprintln(w, headline)
	width := 0
	for _, r := range rows {
		width = max(width, len(r.label))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r.label, r.value)
	}
}

// rateOf is bytes over the wall time, for a summary.
func rateOf(bytes int64, seconds float64) string {
	return formatBytes(int64(float64(bytes)/max(seconds, 1e-9))) + "/s"
}

func (s *packSummary) print(env *environment, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(env.stdout).Encode(s)
	}
	what := plural(s.Releases, "release")
	if len(s.ReleaseTags) > 0 {
		what += " (" + strings.Join(s.ReleaseTags, ", ") + ")"
	}
	headline := fmt.Sprintf("packed %s: %s, %s, %s in %s (%s)", what, plural(s.Images, "image"), plural(s.Blobs, "blob"),
		formatBytes(s.Bytes), humanDuration(s.WallTime), rateOf(s.Bytes, s.WallTime.Seconds()))
	var rows []summaryRow
	if s.Catalogs > 0 {
		rows = append(rows, summaryRow{"catalogs", plural(s.Catalogs, "operator catalog")})
	}
	if s.Prerequisites > 0 {
		rows = append(rows, summaryRow{"left out", fmt.Sprintf("%s (%s) already in the mirror: prerequisites of this bundle",
			plural(s.Prerequisites, "blob"), formatBytes(s.PrerequisiteBytes))})
	}
	if len(s.UpdatePath) > 0 {
		rows = append(rows, summaryRow{"update path", strings.Join(s.UpdatePath, " -> ")})
	}
	for i, v := range s.Volumes {
		label := ""
		if i == 0 {
			label = "bundle"
		}
		size := ""
		if i < len(s.VolumeBytes) {
			size = " (" + formatBytes(s.VolumeBytes[i]) + ")"
		}
		rows = append(rows, summaryRow{label, v + size})
	}
	rows = append(rows, summaryRow{"id", s.ID})
	writeBlock(env.stdout, headline, rows)
	return nil
}

func (s *applySummary) print(env *environment, asJSON bool) error {
	if asJSON {
		return jsonEncode(env.stdout, s)
	}
	out := env.stdout
	s.printBlock(out)
	s.Sigstore.print(env)
	for _, f := range s.Rendered {
		fmt.Fprintf(out, "wrote %s\n", f)
	}
	s.printNodes(env)
	s.Operators.print(env)
	for _, a := range s.Applied {
		fmt.Fprintf(out, "applied: %s\n", safetext.Clean(a))
	}
	if len(s.UpdatePath) > 1 {
		fmt.Fprintf(out, "update path: %s; run each step and let it complete before the next\n", strings.Join(safetext.Lines(s.UpdatePath), " -> "))
	}
	if s.UpdateService != "" {
		fmt.Fprintf(out, "the update service, once its operator runs in the cluster:\n%s\n", s.UpdateService)
	}
	if len(s.NextSteps) > 0 {
		fmt.Fprintln(out, "next, on the cluster:")
		for _, step := range s.NextSteps {
			fmt.Fprintf(out, "  %s\n", step)
		}
	}
	return nil
}

// printBlock is the "what happened" of an apply: what was pushed, where,
// in how long.
func (s *applySummary) printBlock(out io.Writer) {
	var rows []summaryRow
	if s.DryRun {
		rows = append(rows, summaryRow{"manifests", fmt.Sprint(s.Manifests)}, summaryRow{"tags", fmt.Sprint(s.Tags)})
		writeBlock(out, fmt.Sprintf("dry run: would push %s (%s) to %s", plural(s.WouldPush, "blob"), formatBytes(s.WouldPushSize), s.Target), rows)
		return
	}
	rows = append(rows,
		summaryRow{"already there", plural(s.BlobsSkipped, "blob")},
		summaryRow{"manifests", fmt.Sprint(s.Manifests)},
		summaryRow{"tags", fmt.Sprint(s.Tags)})
	if s.Prerequisites > 0 {
		rows = append(rows, summaryRow{"prerequisites", fmt.Sprintf("all %d of this incremental bundle in the target already", s.Prerequisites)})
	}
	rows = append(rows, summaryRow{"from", safetext.Clean(s.Bundle)})
	writeBlock(out, fmt.Sprintf("pushed %s (%s) to %s in %s", plural(s.BlobsPushed, "blob"), formatBytes(s.BytesPushed), s.Target,
		humanDuration(s.WallTime)), rows)
}

// releaseTags names a plan's releases, <version>-<arch>.
func releaseTags(plan *mirror.Plan) []string {
	tags := make([]string, 0, len(plan.Releases))
	for _, r := range plan.Releases {
		tags = append(tags, r.Tag())
	}
	return tags
}

// fileSizes are the sizes of the files at paths.
func fileSizes(paths []string) ([]int64, error) {
	sizes := make([]int64, 0, len(paths))
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("the bundle volume just written: %w", err)
		}
		sizes = append(sizes, fi.Size())
	}
	return sizes, nil
}
