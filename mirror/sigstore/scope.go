package sigstore

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// scope is one entry of spec.scopes: a registry host (with optional port),
// a namespace or repository under it, one image by tag or digest, or a
// wildcard host "*.example.com".
type scope struct {
	wildcard string // ".example.com" for "*.example.com"
	repo     string // host, or host/namespace/.../repository
	tag      string
	digest   digest.Digest
}

// Specificity ranks: an image scope beats a repository scope, which beats
// a shorter namespace, then the host, then wildcards (longer first), as
// containers/image orders policy scopes for the docker transport.
const (
	rankImage    = 1 << 20
	rankRepoBase = 1 << 10
)

func parseScope(s string) (scope, error) {
	if s == "" || strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\n") {
		return scope{}, fmt.Errorf("scope %q is not a host, repository or image", s)
	}
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		if rest == "" || strings.ContainsAny(rest, "/*:@") {
			return scope{}, fmt.Errorf("wildcard scope %q must be *.domain", s)
		}
		return scope{wildcard: "." + rest}, nil
	}
	var sc scope
	if name, dig, ok := strings.Cut(s, "@"); ok {
		d, err := digest.Parse(dig)
		if err != nil {
			return scope{}, fmt.Errorf("scope %q: %w", s, err)
		}
		sc.digest, s = d, name
	} else if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") && strings.Contains(s, "/") {
		sc.tag, s = s[i+1:], s[:i]
	}
	host, _, _ := strings.Cut(s, "/")
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return scope{}, fmt.Errorf("scope %q does not start with a registry host", s)
	}
	if strings.Contains(s, "*") || strings.HasSuffix(s, "/") || strings.Contains(s, "//") {
		return scope{}, fmt.Errorf("scope %q is not a host, repository or image", s)
	}
	if (sc.tag != "" || sc.digest != "") && !strings.Contains(s, "/") {
		return scope{}, fmt.Errorf("scope %q names a tag or digest without a repository", s)
	}
	sc.repo = s
	return sc, nil
}

// rank says how specifically the scope names the image repo@d, 0 if it
// does not name it at all.
func (sc scope) rank(repo string, d digest.Digest) int {
	switch {
	case sc.wildcard != "":
		host, _, _ := strings.Cut(repo, "/")
		host, _, _ = strings.Cut(host, ":")
		if strings.HasSuffix(host, sc.wildcard) && len(host) > len(sc.wildcard) {
			return strings.Count(sc.wildcard, ".")
		}
		return 0
	case sc.digest != "":
		if repo == sc.repo && d == sc.digest {
			return rankImage
		}
		return 0
	case sc.tag != "":
		// ferry pulls and the node runs release content by digest, so a
		// tag scope never names it.
		return 0
	case repo == sc.repo || strings.HasPrefix(repo, sc.repo+"/"):
		return rankRepoBase + strings.Count(sc.repo, "/")
	}
	return 0
}

// Applicable returns the policies the node applies to the image repo@d:
// those holding the most specific scope that names it (policies of a
// broader scope are ignored for it, as on the node). None means the image
// is out of every policy's scope.
func Applicable(policies []Policy, repo string, d digest.Digest) []Policy {
	var out []Policy
	for _, i := range applicableIndices(policies, repo, d) {
		out = append(out, policies[i])
	}
	return out
}

// applicableIndices is Applicable as indices into policies.
func applicableIndices(policies []Policy, repo string, d digest.Digest) []int {
	best, ranks := 0, make([]int, len(policies))
	for i := range policies {
		for _, s := range policies[i].Scopes {
			sc, err := parseScope(s)
			if err != nil {
				continue // ParsePolicies refuses such policies
			}
			ranks[i] = max(ranks[i], sc.rank(repo, d))
		}
		best = max(best, ranks[i])
	}
	if best == 0 {
		return nil
	}
	var out []int
	for i, r := range ranks {
		if r == best {
			out = append(out, i)
		}
	}
	return out
}
