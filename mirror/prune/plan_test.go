package prune

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"
)

func TestParseTag(t *testing.T) {
	sig := "sha256-" + strings.Repeat("ab", 32) + ".sig"
	for _, tc := range []struct {
		tag     string
		kind    TagKind
		version string
	}{
		{"4.15.0-x86_64", ReleaseTag, "4.15.0"},
		{"4.16.3-multi", ReleaseTag, "4.16.3"},
		{"4.15.0-rc.1-aarch64", ReleaseTag, "4.15.0-rc.1"},
		{"4.15.0-x86_64-cluster-version-operator", ComponentTag, "4.15.0"},
		{"4.15.0-rc.1-aarch64-machine-os-content", ComponentTag, "4.15.0-rc.1"},
		{"4.15.0-x86_64-rhcos-kubevirt", ComponentTag, "4.15.0"},
		{sig, SignatureTag, ""},
		{"sha256-" + strings.Repeat("AB", 32) + ".sig", Foreign, ""}, // not a digest: upper case
		{"sha256-abcd.sig", Foreign, ""},
		{"sha512-" + strings.Repeat("ab", 64) + ".sig", Foreign, ""}, // ferry writes sha256 only
		{"redhat-operator-index-v4.16-filtered", CatalogTag, ""},
		{"-filtered", Foreign, ""},
		{"latest", Foreign, ""},
		{"4.15-x86_64", Foreign, ""},        // not a release version
		{"4.15.0-amd64", Foreign, ""},       // Go's arch name: ferry writes x86_64
		{"4.15.0-x86_64-", Foreign, ""},     // no component name
		{"v4.15.0-x86_64-foo", Foreign, ""}, // a leading v is not ferry's
	} {
		got := ParseTag(tc.tag)
		if got.Kind != tc.kind || got.Version != tc.version {
			t.Errorf("ParseTag(%q) = %v %q, want %v %q", tc.tag, got.Kind, got.Version, tc.kind, tc.version)
		}
	}
	if got := ParseTag(sig); got.Signs != digest.Digest("sha256:"+strings.Repeat("ab", 32)) {
		t.Errorf("ParseTag(%q).Signs = %s", sig, got.Signs)
	}
}

// bed builds snapshots by name: every manifest's digest is that of its
// name, every blob's size is given.
type bed struct{ s *Snapshot }

func newBed() *bed {
	return &bed{s: &Snapshot{Repository: "mirror.example/ocp4/openshift4", Tags: map[string]digest.Digest{}, Manifests: map[digest.Digest]*Manifest{}}}
}

func dg(name string) digest.Digest { return digest.FromString(name) }

// image adds a single image named name using blobs (name:size pairs).
func (b *bed) image(name string, blobs ...Blob) digest.Digest {
	d := dg(name)
	b.s.Manifests[d] = &Manifest{Digest: d, MediaType: manifest.DockerV2Schema2MediaType, Size: 500, Blobs: blobs}
	return d
}

// list adds a manifest list of children.
func (b *bed) list(name string, children ...digest.Digest) digest.Digest {
	d := dg(name)
	b.s.Manifests[d] = &Manifest{Digest: d, MediaType: manifest.DockerV2ListMediaType, Size: 300, Children: children}
	return d
}

func (b *bed) tag(tag string, d digest.Digest) { b.s.Tags[tag] = d }

func blob(name string, size int64) Blob { return Blob{Digest: dg("blob " + name), Size: size} }

func deletedDigests(p *Plan) []digest.Digest {
	var out []digest.Digest
	for _, d := range p.Deletions {
		out = append(out, d.Digest)
	}
	return out
}

func leftReason(p *Plan, tag string) string {
	for _, l := range p.Left {
		if l.Tag == tag {
			return l.Reason
		}
	}
	return ""
}

func sameSet(a, b []digest.Digest) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestComputeSharedManifests: two releases share a component manifest
// and a base layer; keeping the newer deletes what only the older uses,
// leaves the shared manifest and the older release's tag on it, and
// counts as reclaimable only the older release's own blobs, once each.
func TestComputeSharedManifests(t *testing.T) {
	b := newBed()
	base, oldOnly, newOnly := blob("base", 1000), blob("old", 70), blob("new", 9)
	shared := b.image("shared component", base)
	oldRel := b.image("old release", base, oldOnly)
	oldComp := b.image("old component", base, oldOnly) // the same blob twice counts once
	newRel := b.image("new release", base, newOnly)
	b.tag("4.15.0-x86_64", oldRel)
	b.tag("4.15.0-x86_64-etcd", oldComp)
	b.tag("4.15.0-x86_64-shared", shared)
	b.tag("4.15.1-x86_64", newRel)
	b.tag("4.15.1-x86_64-shared", shared)

	p, err := Compute(b.s, Keep{Versions: []string{"4.15.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !sameSet(deletedDigests(p), []digest.Digest{oldRel, oldComp}) {
		t.Errorf("deletions %v, want the old release and its own component", deletedDigests(p))
	}
	if p.Deletions[0].Digest != oldRel {
		t.Errorf("the release tag's manifest goes first, got %v", p.Deletions[0])
	}
	if r := leftReason(p, "4.15.0-x86_64-shared"); r != LeftShared {
		t.Errorf("the old release's tag of the shared component: %q, want %q", r, LeftShared)
	}
	if r := leftReason(p, "4.15.1-x86_64"); r != LeftKept {
		t.Errorf("the kept release's tag: %q", r)
	}
	if p.ReclaimableBytes != oldOnly.Size || len(p.Reclaimable) != 1 || p.Reclaimable[0].Digest != oldOnly.Digest {
		t.Errorf("reclaimable %v (%d bytes), want only the old release's own blob (%d bytes)", p.Reclaimable, p.ReclaimableBytes, oldOnly.Size)
	}
	if !slices.Equal(p.Releases, []string{"4.15.0-x86_64"}) {
		t.Errorf("releases going %v", p.Releases)
	}
}

// TestComputeIndexChildren: a list that goes takes its children, except
// one a kept list names too; lists are deleted before their children.
func TestComputeIndexChildren(t *testing.T) {
	b := newBed()
	amd, arm, s390 := b.image("old amd64", blob("a", 1)), b.image("shared arm64", blob("b", 2)), b.image("new s390x", blob("c", 4))
	oldList := b.list("old list", amd, arm)
	newList := b.list("new list", arm, s390)
	b.tag("4.15.0-multi", oldList)
	b.tag("4.15.1-multi", newList)

	p, err := Compute(b.s, Keep{Versions: []string{"4.15.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := deletedDigests(p); !slices.Equal(got, []digest.Digest{oldList, amd}) {
		t.Errorf("deletions %v, want the old list then its own child %v", got, []digest.Digest{oldList, amd})
	}
	if p.Deletions[1].Tags == nil || len(p.Deletions[1].Tags) != 0 {
		t.Errorf("a child's tags: %v, want an empty list", p.Deletions[1].Tags)
	}
	if p.ReclaimableBytes != 1 {
		t.Errorf("reclaimable %d bytes, want 1 (the old child's blob)", p.ReclaimableBytes)
	}
}

// TestComputeSignatures: the signature tag of a manifest that goes goes
// with it (signatures last); one of a manifest that stays stays, and so
// does one of a manifest the repository does not hold.
func TestComputeSignatures(t *testing.T) {
	b := newBed()
	oldRel, newRel := b.image("old", blob("old", 10)), b.image("new", blob("new", 20))
	oldSig, newSig := b.image("old sig", blob("old payload", 3)), b.image("new sig", blob("new payload", 5))
	orphanSig := b.image("orphan sig", blob("orphan payload", 7))
	b.tag("4.15.0-x86_64", oldRel)
	b.tag("4.15.1-x86_64", newRel)
	b.tag(sigTag(oldRel), oldSig)
	b.tag(sigTag(newRel), newSig)
	b.tag(sigTag(dg("not here")), orphanSig)

	p, err := Compute(b.s, Keep{Versions: []string{"4.15.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := deletedDigests(p); !slices.Equal(got, []digest.Digest{oldRel, oldSig}) {
		t.Errorf("deletions %v, want the old release then its signature", got)
	}
	for _, tag := range []string{sigTag(newRel), sigTag(dg("not here"))} {
		if r := leftReason(p, tag); r != LeftSignature {
			t.Errorf("%s: %q, want %q", tag, r, LeftSignature)
		}
	}
	if p.ReclaimableBytes != 13 {
		t.Errorf("reclaimable %d bytes, want 13 (the old release's blob and its signature's payload)", p.ReclaimableBytes)
	}
}

func sigTag(d digest.Digest) string { return "sha256-" + d.Encoded() + ".sig" }

// TestComputeForeignTags: a tag of no form ferry writes stays, keeps the
// manifest it points at (and that list's children) though a release that
// goes points at it too; a catalog tag stays.
func TestComputeForeignTags(t *testing.T) {
	b := newBed()
	child := b.image("old child", blob("x", 100))
	oldList := b.list("old list", child)
	newRel := b.image("new", blob("y", 1))
	b.tag("4.15.0-multi", oldList)
	b.tag("latest", oldList)
	b.tag("4.15.1-x86_64", newRel)
	b.tag("redhat-operator-index-v4.16-filtered", b.image("catalog", blob("z", 1)))
	b.tag("4.14.0-x86_64-etcd", b.image("an older component", blob("w", 50)))

	p, err := Compute(b.s, Keep{Versions: []string{"4.15.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := deletedDigests(p); !slices.Equal(got, []digest.Digest{dg("an older component")}) {
		t.Errorf("deletions %v, want only the older component", got)
	}
	for tag, want := range map[string]string{"latest": LeftForeign, "4.15.0-multi": LeftShared, "redhat-operator-index-v4.16-filtered": LeftCatalog} {
		if r := leftReason(p, tag); r != want {
			t.Errorf("%s: %q, want %q", tag, r, want)
		}
	}
	if p.ReclaimableBytes != 50 {
		t.Errorf("reclaimable %d bytes, want 50", p.ReclaimableBytes)
	}
}

// TestComputeKeepDigests: a kept bundle's manifests and blobs stay though
// no kept tag leads to them.
func TestComputeKeepDigests(t *testing.T) {
	b := newBed()
	operator := b.image("operator image", blob("op", 40), blob("shared", 8))
	oldRel := b.image("old", blob("old", 2), blob("shared", 8))
	b.tag("4.15.0-x86_64", oldRel)
	b.tag("4.15.0-x86_64-op", operator)
	b.tag("4.15.1-x86_64", b.image("new", blob("new", 1)))

	p, err := Compute(b.s, Keep{Versions: []string{"4.15.1"}, Digests: []digest.Digest{operator}, Blobs: []digest.Digest{blob("shared", 8).Digest}})
	if err != nil {
		t.Fatal(err)
	}
	if got := deletedDigests(p); !slices.Equal(got, []digest.Digest{oldRel}) {
		t.Errorf("deletions %v, want only the old release", got)
	}
	if p.ReclaimableBytes != 2 {
		t.Errorf("reclaimable %d bytes, want 2", p.ReclaimableBytes)
	}
}

// TestComputeRefusesUnknownVersion: a version to keep that the repository
// does not hold is refused, not taken as "keep nothing".
func TestComputeRefusesUnknownVersion(t *testing.T) {
	b := newBed()
	b.tag("4.15.0-x86_64", b.image("old"))
	b.tag("4.15.0-x86_64-etcd", b.image("etcd"))
	_, err := Compute(b.s, Keep{Versions: []string{"4.15.9"}})
	var nr *NoReleaseError
	if !errors.As(err, &nr) || nr.Version != "4.15.9" || !slices.Equal(nr.Releases, []string{"4.15.0-x86_64"}) {
		t.Errorf("got %v, want a NoReleaseError naming 4.15.9 and the release held", err)
	}
}

// TestReclaimableOfPartialPrune: a prune stopped midway frees only what
// the manifests it did delete used alone.
func TestReclaimableOfPartialPrune(t *testing.T) {
	b := newBed()
	list := b.list("list", b.image("child", blob("c", 30)))
	b.tag("4.15.0-multi", list)
	b.tag("4.15.1-x86_64", b.image("new", blob("n", 1)))
	p, err := Compute(b.s, Keep{Versions: []string{"4.15.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, n := Reclaimable(b.s, p.Deletions[:1], nil); n != 0 {
		t.Errorf("with the list alone deleted, %d bytes reclaimable, want 0 (its child still holds the blob)", n)
	}
	if _, n := Reclaimable(b.s, p.Deletions, nil); n != 30 {
		t.Errorf("with both deleted, %d bytes reclaimable, want 30", n)
	}
}

// TestComputeSignatureChains: a signature of a signature goes with it;
// a chain deeper than maxSignatureRounds stays past the bound, whole.
func TestComputeSignatureChains(t *testing.T) {
	chain := func(depth int) (*bed, []digest.Digest) {
		b := newBed()
		subject := b.image("old", blob("old", 1))
		b.tag("4.15.0-x86_64", subject)
		b.tag("4.15.1-x86_64", b.image("new", blob("new", 1)))
		out := []digest.Digest{subject}
		for i := range depth {
			sig := b.image(fmt.Sprint("signature ", i), blob(fmt.Sprint("payload ", i), 1))
			b.tag(sigTag(subject), sig)
			out, subject = append(out, sig), sig
		}
		return b, out
	}
	b, want := chain(2)
	p, err := Compute(b.s, Keep{Versions: []string{"4.15.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !sameSet(deletedDigests(p), want) {
		t.Errorf("a signature of a signature: deletions %v, want %v", deletedDigests(p), want)
	}
	b, all := chain(maxSignatureRounds + 2)
	p, err = Compute(b.s, Keep{Versions: []string{"4.15.1"}})
	if err != nil {
		t.Fatal(err)
	}
	got := deletedDigests(p)
	if len(got) == 0 || len(got) >= len(all) || !sameSet(got, all[:len(got)]) {
		t.Errorf("a chain of %d signatures: deletions %v, want a head of the chain, not all of it", len(all)-1, got)
	}
	for _, d := range all[len(got):] {
		if !slices.ContainsFunc(p.Left, func(l LeftTag) bool { return l.Digest == d }) {
			t.Errorf("%s, past the bound, is neither deleted nor left", d)
		}
	}
}
