package prune

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzCompute feeds the keep-set computation a repository a hostile
// registry could describe: manifests it wrote (parsed as prune parses
// them) and tags of any form pointing at them. Whatever the input, the
// plan never deletes a manifest a kept or foreign tag leads to, never
// deletes one the snapshot lacks, and counts no negative bytes.
func FuzzCompute(f *testing.F) {
	f.Add(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+strings.Repeat("a", 64)+`","size":2}]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:`+strings.Repeat("b", 64)+`","size":3},"layers":[]}`,
		"4.15.0-x86_64\n4.15.1-x86_64\nlatest\nsha256-"+strings.Repeat("a", 64)+".sig")
	f.Add("{}", "[]", "4.15.1-x86_64-etcd\n4.15.1-multi")
	f.Fuzz(func(t *testing.T, first, second, tags string) {
		s := &Snapshot{Repository: "registry.example/ocp4/openshift4", Tags: map[string]digest.Digest{}, Manifests: map[digest.Digest]*Manifest{}}
		var digests []digest.Digest
		for i, data := range []string{first, second} {
			d := digest.FromString(data)
			for _, mediaType := range []string{"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json"} {
				if m, err := ParseManifest(d, mediaType, []byte(data)); err == nil {
					s.Manifests[d] = m
					digests = append(digests, d)
					break
				}
			}
			// A child a list names is in the snapshot too, as Read adds it.
			if m := s.Manifests[d]; m != nil && i == 0 {
				for _, c := range m.Children {
					if _, ok := s.Manifests[c]; !ok && len(s.Manifests) < 16 {
						s.Manifests[c] = &Manifest{Digest: c, MediaType: "application/vnd.oci.image.manifest.v1+json"}
						digests = append(digests, c)
					}
				}
			}
		}
		if len(digests) == 0 {
			return
		}
		for i, tag := range strings.Split(tags, "\n") {
			if i == 64 {
				break
			}
			s.Tags[tag] = digests[i%len(digests)]
		}
		plan, err := Compute(s, Keep{Versions: []string{"4.15.1"}})
		if err != nil {
			return // no release 4.15.1 among the tags: refused, nothing planned
		}
		deleted := map[digest.Digest]bool{}
		for _, d := range plan.Deletions {
			if _, ok := s.Manifests[d.Digest]; !ok {
				t.Fatalf("plan deletes %s, which the repository does not hold", d.Digest)
			}
			deleted[d.Digest] = true
		}
		for tag, d := range s.Tags {
			parsed := ParseTag(tag)
			keptTag := parsed.Version == "4.15.1" && (parsed.Kind == ReleaseTag || parsed.Kind == ComponentTag)
			if (keptTag || parsed.Kind == Foreign) && deleted[d] {
				t.Fatalf("plan deletes %s, which the tag %q (%s) that stays points at", d, tag, parsed.Kind)
			}
			if keptTag || parsed.Kind == Foreign {
				for _, c := range s.Manifests[d].Children {
					if deleted[c] {
						t.Fatalf("plan deletes %s, a child of %s that the tag %q keeps", c, d, tag)
					}
				}
			}
		}
		if plan.ReclaimableBytes < 0 {
			t.Fatalf("reclaimable bytes %d", plan.ReclaimableBytes)
		}
	})
}
