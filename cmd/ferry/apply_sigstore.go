package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/sigstore"
	"github.com/ferryhq/ferry/mirror/trust"
)

// checkNodes runs, after the push, the nodes' own Sigstore check of the
// target release through the mirror sets apply rendered: every image its
// policy covers must be admitted when pulled from the mirror, with the
// signature tag the push left beside it. With a cluster it also decides
// the Sigstore admin-ack. Nothing to do when the release ships no policy
// or --sigstore is off.
func (o *applyOptions) checkNodes(ctx context.Context, env *environment, applier *manifests.Applier, proof *trust.Report, sum *applySummary) error {
	if proof.Sigstore == nil || proof.Sigstore.Mode == sigstore.Off || len(proof.Sigstore.Policies) == 0 {
		return nil
	}
	target, err := targetOf(proof)
	if err != nil {
		return verificationError(err)
	}
	policies := releasePolicies(proof, target.Version)
	if len(policies) == 0 {
		return nil
	}
	in := admissionInput{Policies: policies, Target: target, Mirrors: renderedMirrorSets(proof.Sources, o.to),
		Registry: o.registry.options(env), Parallel: o.parallel}
	if applier != nil {
		if in.Cluster, err = applier.ReadCluster(ctx); err != nil {
			env.log.Warn("could not read the cluster's version and admin-acks; the admin-ack is not judged", "err", err)
			in.Cluster = nil
		}
	}
	rep, err := checkAdmission(ctx, in)
	if err != nil {
		return fmt.Errorf("check the pushed signatures as the nodes will: %w", err)
	}
	sum.Nodes = rep
	if rep.OK || proof.Sigstore.Mode == sigstore.BestEffort {
		return nil
	}
	return rep.err()
}

// nodesText says, for people, what the nodes will find and what the
// cluster needs for it.
func nodesText(rep *admissionReport, rendered []string) []string {
	if rep == nil {
		return nil
	}
	var lines []string
	for _, m := range rep.Mirrors {
		verdict := "every image in scope admitted, as the nodes will check it"
		if !m.OK {
			verdict = "NOT admitted: " + countsText(m.Counts)
		}
		lines = append(lines, fmt.Sprintf("nodes pulling through %s: %s", safetext.Clean(m.Mirror), verdict))
	}
	for _, p := range rep.Problems {
		lines = append(lines, "  "+safetext.Clean(p))
	}
	var idms []string
	for _, f := range rendered {
		if strings.Contains(f, "idms-") {
			idms = append(idms, f)
		}
	}
	if len(idms) > 0 && len(rep.Mirrors) > 0 {
		lines = append(lines, "the nodes find these signatures only through the ImageDigestMirrorSet "+strings.Join(idms, ", ")+
			": the cluster must have it (with a cluster, apply applies it)")
	}
	return lines
}

// printNodes writes what checkNodes found.
func (s *applySummary) printNodes(env *environment) {
	if s.Nodes == nil {
		return
	}
	for _, l := range nodesText(s.Nodes, s.Rendered) {
		fmt.Fprintln(env.stdout, l)
	}
	if s.Nodes.ClusterVersion != "" {
		s.Nodes.AdminAck.print(env)
	}
}
