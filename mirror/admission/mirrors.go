package admission

import (
	"slices"
	"strings"
)

// MirrorSet is one source of a cluster's mirror configuration and its
// mirrors, in the form ImageDigestMirrorSet, ImageTagMirrorSet and
// ImageContentSourcePolicy share: host/path names without tag or digest.
// Source names a repository, a namespace above repositories, a registry
// host, or a wildcard host "*.example.com".
type MirrorSet struct {
	Source  string
	Mirrors []string
	// TagOnly marks an ImageTagMirrorSet's mirrors: the node uses them only
	// for pulls by tag, never for the pulls by digest checked here.
	TagOnly bool
}

// MirrorsFor returns the repositories a node pulling repo by digest tries,
// in order: the mirrors of the most specific source that names repo (as
// containers/image picks one registries.conf entry by its longest prefix),
// from every set of that source in the order given, each rewritten for repo
// (source quay.io/ns with mirror m.example/x sends quay.io/ns/app to
// m.example/x/app), without tag-only mirrors and without repeats. None
// means the node pulls repo from its source.
func MirrorsFor(sets []MirrorSet, repo string) []string {
	best, source := -1, ""
	for _, s := range sets {
		if n := matchLength(repo, s.Source); n > best {
			best, source = n, s.Source
		}
	}
	if best < 0 {
		return nil
	}
	var out []string
	for _, s := range sets {
		if s.Source != source || s.TagOnly {
			continue
		}
		for _, m := range s.Mirrors {
			m = strings.TrimSuffix(m, "/")
			if m == "" {
				continue
			}
			if rewritten := m + repo[best:]; !slices.Contains(out, rewritten) {
				out = append(out, rewritten)
			}
		}
	}
	return out
}

// matchLength is how much of repo the source matches, following
// containers/image's prefix rules: the source itself or the source then
// "/"; a wildcard "*.example.com" matches the whole host of any repository
// on a subdomain of example.com. -1 when it does not match.
func matchLength(repo, source string) int {
	if suffix, ok := strings.CutPrefix(source, "*"); ok {
		host, _, _ := strings.Cut(repo, "/")
		if len(host) > len(suffix) && strings.HasSuffix(host, suffix) && strings.HasPrefix(suffix, ".") {
			return len(host)
		}
		return -1
	}
	source = strings.TrimSuffix(source, "/")
	if source == "" {
		return -1
	}
	if repo == source || strings.HasPrefix(repo, source+"/") {
		return len(source)
	}
	return -1
}
