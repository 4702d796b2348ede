package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/internal/safetext"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/sigstore"
	"github.com/ferryhq/ferry/mirror/trust"
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
			policies = append(policies, policyLine(rel.Version, p))
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
	for _, rel := range plan.Releases {
		for _, p := range rel.Policies {
			if p.RootOfTrust == sigstore.RootPublicKey && !sigstore.IsRedHatKey(p.PublicKey) {
				env.log.Warn("the payload's image policy names a key that is not Red Hat's: a payload Red Hat did not build, or a new key",
					"release", rel.Version, "policy", p.ID(), "key", "sha256:"+p.KeyFingerprint())
			}
		}
	}
	for _, g := range r.Gaps {
		env.log.Warn("image the nodes will refuse to run (recorded in the bundle)", "image", g.Name, "ref", g.Repository+"@"+g.Digest.String(), "reason", g.Reason)
	}
}

// sigstoreSummary is what verify and apply say of the Sigstore proof.
type sigstoreSummary struct {
	Mode string `json:"mode"`
	// Policies name each release's image policies and their scopes.
	Policies []string `json:"policies,omitempty"`
	// KeysNotRedHat name the policies whose key is not the one of Red
	// Hat's own policy.
	KeysNotRedHat []string       `json:"keysNotRedHat,omitempty"`
	Checked       int            `json:"checked"`
	Gaps          []sigstore.Gap `json:"gaps,omitempty"`
}

func summarizeSigstore(p *trust.SigstoreProof) *sigstoreSummary {
	if p == nil || len(p.Policies) == 0 {
		return nil
	}
	sum := &sigstoreSummary{Mode: string(p.Mode), Checked: p.Checked, Gaps: p.Gaps}
	for _, rel := range p.Policies {
		for _, pol := range rel.Policies {
			sum.Policies = append(sum.Policies, policyLine(rel.Version, pol))
			if pol.RootOfTrust == sigstore.RootPublicKey && !sigstore.IsRedHatKey(pol.PublicKey) {
				sum.KeysNotRedHat = append(sum.KeysNotRedHat, rel.Version+": "+pol.ID()+" key sha256:"+pol.KeyFingerprint())
			}
		}
	}
	return sum
}

func policyLine(version string, p sigstore.Policy) string {
	return version + ": " + p.ID() + " (" + strings.Join(p.Scopes, ", ") + ")"
}

// print says which policies were enforced and how it went; every string
// from the bundle is cleaned of terminal control characters.
func (s *sigstoreSummary) print(env *environment) {
	if s == nil {
		return
	}
	for _, p := range s.Policies {
		fmt.Fprintf(env.stdout, "image policy: %s\n", safetext.Clean(p))
	}
	for _, k := range s.KeysNotRedHat {
		fmt.Fprintf(env.stdout, "WARNING: image policy %s is not Red Hat's Sigstore key: a payload Red Hat did not build, or a new key\n", safetext.Clean(k))
	}
	switch {
	case s.Mode == string(sigstore.Off):
		fmt.Fprintln(env.stdout, "sigstore: not checked (--sigstore off); the nodes will check")
	case len(s.Gaps) == 0:
		fmt.Fprintf(env.stdout, "sigstore ok: %d images in scope, each with a signature the nodes accept\n", s.Checked)
	default:
		fmt.Fprintf(env.stdout, "sigstore: %d of %d images in scope lack a signature the nodes accept\n", len(s.Gaps), s.Checked)
	}
}

// printSigstoreRecord shows what the packer recorded of the Sigstore
// proof: the index's word, which apply proves again.
func printSigstoreRecord(out io.Writer, rec *bundle.Sigstore) {
	if rec == nil {
		return
	}
	clean := safetext.Clean
	switch {
	case rec.Mode == string(sigstore.Off):
		fmt.Fprintln(out, "sigstore: not checked when packed (--sigstore off)")
	case len(rec.Policies) == 0:
		fmt.Fprintf(out, "sigstore: no image policy in the payload (mode %s)\n", clean(rec.Mode))
	default:
		fmt.Fprintf(out, "sigstore: %s; %d images in scope, %d gaps when packed\n", clean(rec.Mode), rec.Checked, len(rec.Gaps))
	}
	for _, p := range rec.Policies {
		fmt.Fprintf(out, "  policy: %s %s (%s), key sha256:%s\n", clean(p.Kind), clean(p.Name), clean(strings.Join(p.Scopes, ", ")), clean(p.KeySHA256))
	}
	for _, g := range rec.Gaps {
		fmt.Fprintf(out, "  GAP: %s (%s@%s): %s\n", clean(g.Name), clean(g.Repository), clean(g.Digest.String()), clean(g.Reason))
	}
}
