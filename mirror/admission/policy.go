package admission

import (
	"fmt"

	"go.podman.io/image/v5/signature"

	"github.com/ferryhq/ferry/mirror/sigstore"
)

// dockerTransport is the transport name policy.json scopes images under.
const dockerTransport = "docker"

// enginePolicy is the policy.json the machine-config operator writes for
// policies, built in code: for each scope of each policy a sigstoreSigned
// requirement with the policy's key and identity rule (every policy of a
// scope must accept), and insecureAcceptAnything for images in no scope.
//
// A policy whose root of trust ferry cannot prove (Fulcio, PKI, a Rekor
// key) stands in its scopes as insecureAcceptAnything, so that its scopes
// keep their place in the engine's most-specific-scope choice while the
// engine judges only what it can; the caller reports such images as
// Unprovable, never as allowed.
func enginePolicy(policies []sigstore.Policy) (*signature.Policy, error) {
	scopes := signature.PolicyTransportScopes{}
	for i := range policies {
		p := &policies[i]
		req, err := requirement(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.ID(), err)
		}
		for _, s := range p.Scopes {
			scopes[s] = append(scopes[s], req)
		}
	}
	return &signature.Policy{
		Default:    signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()},
		Transports: map[string]signature.PolicyTransportScopes{dockerTransport: scopes},
	}, nil
}

// provable reports whether ferry can check p's signatures itself: a public
// key, without the Rekor bundle a rekorKeyData would also demand.
func provable(p *sigstore.Policy) bool {
	return p.RootOfTrust == sigstore.RootPublicKey && len(p.PublicKey) > 0
}

// requirement is the engine's requirement for p.
func requirement(p *sigstore.Policy) (signature.PolicyRequirement, error) {
	if !provable(p) {
		return signature.NewPRInsecureAcceptAnything(), nil
	}
	identity, err := identityMatch(p)
	if err != nil {
		return nil, err
	}
	req, err := signature.NewPRSigstoreSigned(
		signature.PRSigstoreSignedWithKeyData(p.PublicKey),
		signature.PRSigstoreSignedWithSignedIdentity(identity),
	)
	if err != nil {
		return nil, fmt.Errorf("sigstoreSigned requirement: %w", err)
	}
	return req, nil
}

// identityMatch maps the policy's matchPolicy onto containers/image's, as
// the machine-config operator does.
func identityMatch(p *sigstore.Policy) (signature.PolicyReferenceMatch, error) {
	switch p.MatchPolicy {
	case "", sigstore.MatchRepoDigestOrExact:
		return signature.NewPRMMatchRepoDigestOrExact(), nil
	case sigstore.MatchRepository:
		return signature.NewPRMMatchRepository(), nil
	case sigstore.ExactRepository:
		return signature.NewPRMExactRepository(p.ExactRepository)
	case sigstore.RemapIdentity:
		return signature.NewPRMRemapIdentity(p.RemapPrefix, p.RemapSignedPrefix)
	}
	return nil, fmt.Errorf("unknown matchPolicy %q", p.MatchPolicy)
}
