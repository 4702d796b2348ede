package trust

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/ferryhq/ferry/mirror/sigstore"
)

// SigstoreProof is what Check proved of the Sigstore signatures the
// releases' own image policies demand, from the bundle alone.
type SigstoreProof struct {
	Mode sigstore.Mode
	// Policies are each proven release's image policies, by release.
	Policies []ReleasePolicies
	sigstore.Result
}

// ReleasePolicies are the image policies one release ships.
type ReleasePolicies struct {
	Version  string
	Digest   digest.Digest
	Policies []sigstore.Policy
}

// sigstoreParallel is 1: the checker's manifest cache is not shared
// across goroutines, and each check reads a few KB from the bundle and
// verifies one signature, well under a millisecond.
const sigstoreParallel = 1

// sigstorePolicies proves, for each proven release with image policies,
// that every image in their scope carries a signature its nodes accept:
// the signature image proven beside it, its payloads read from the bundle
// and checked against their digests. A gap is a fault in Required mode and
// is reported (and listed as unverified) in BestEffort mode.
func (c *checker) sigstorePolicies(ctx context.Context, releases []provenRelease) {
	proof := &SigstoreProof{Mode: c.opts.Sigstore}
	if proof.Mode == "" {
		proof.Mode = sigstore.Required
	}
	c.rep.Sigstore = proof
	for _, rel := range releases {
		if len(rel.policies) == 0 {
			continue
		}
		proof.Policies = append(proof.Policies, ReleasePolicies{Version: rel.version, Digest: rel.digest, Policies: rel.policies})
		if proof.Mode == sigstore.Off {
			c.rep.Unverified = append(c.rep.Unverified, fmt.Sprintf("release %s: Sigstore signatures not checked (--sigstore off); its nodes will check them", rel.version))
			continue
		}
		res, err := sigstore.Prove(ctx, rel.policies, rel.subjects, c.readSignatures, sigstoreParallel)
		if err != nil {
			c.rep.fault("release %s: Sigstore: %v", rel.version, err)
			continue
		}
		proof.Checked += res.Checked
		proof.Gaps = append(proof.Gaps, res.Gaps...)
		for _, g := range res.Gaps {
			what := fmt.Sprintf("%s (%s@%s) would not run on the nodes: %s", g.Name, g.Repository, g.Digest, g.Reason)
			if proof.Mode == sigstore.Required {
				c.rep.fault("release %s: %s", rel.version, what)
			} else {
				c.rep.Unverified = append(c.rep.Unverified, what+" (--sigstore best-effort)")
			}
		}
	}
}

// readSignatures reads the cosign signatures of s from the signature image
// proven beside it; none when the bundle carries none.
func (c *checker) readSignatures(_ context.Context, s sigstore.Subject) ([]sigstore.Signature, error) {
	sig, ok := c.signatureOf[imageKey(s.Repository, s.Digest)]
	if !ok {
		return nil, nil
	}
	data, mediaType, err := c.manifest(sig)
	if err != nil {
		return nil, err
	}
	return sigstore.Signatures(data, mediaType, func(d digest.Digest, size int64) ([]byte, error) {
		return readBlob(c.r, d, size)
	})
}
