package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// sigstoreFlag is --sigstore: what pack, mirror and apply do when an image
// a release's image policy covers lacks a signature the nodes accept.
type sigstoreFlag struct {
	mode string
}

func (f *sigstoreFlag) flag(doing string) cli.Flag {
	return &cli.StringFlag{Name: "sigstore", Value: string(sigstore.Required), Category: "Signatures", Destination: &f.mode,
		Usage: "`MODE` for the Sigstore signatures a 4.21+ payload's image policy demands of every image in its scopes: " +
			"required (" + doing + " when one is missing or does not verify), best-effort (carry what exists, " +
			"record each gap; the nodes will refuse to run those images), off (check nothing; recorded)"}
}

func (f *sigstoreFlag) parse() (sigstore.Mode, error) {
	m, err := sigstore.ParseMode(f.mode)
	if err != nil {
		return "", usageError(fmt.Errorf("--sigstore: %w", err))
	}
	return m, nil
}

// logSigstore says once what the plan proved of Sigstore signatures.
func logSigstore(env *environment, plan *mirror.Plan) {
	r := plan.Sigstore
	if r == nil {
		return
	}
	var policies []string
	for _, rel := range plan.Releases {
		for _, p := range rel.Policies {
			policies = append(policies, rel.Version+": "+p.ID()+" ("+strings.Join(p.Scopes, ", ")+")")
		}
	}
	switch {
	case r.Mode == sigstore.Off:
		env.log.Warn("Sigstore signatures not checked (--sigstore off): a 4.21+ cluster refuses to run images its policy covers unless they are signed")
	case len(policies) == 0:
		env.log.Info("no image policy in the payload (before 4.21): no Sigstore signature to prove")
	default:
		env.log.Info("Sigstore signatures proven under the payload's image policy", "policies", strings.Join(policies, "; "),
			"images", r.Checked, "gaps", len(r.Gaps))
	}
	for _, g := range r.Gaps {
		env.log.Warn("image the nodes will refuse to run (recorded in the bundle)", "image", g.Name, "ref", g.Repository+"@"+g.Digest.String(), "reason", g.Reason)
	}
}
