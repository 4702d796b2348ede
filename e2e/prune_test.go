package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
	"github.com/ferryhq/ferry/mirror/serve"
)

// pruneBed is three signed releases, each sharing most blobs with the one
// before, packed into one bundle each.
type pruneBed struct {
	rels    []*testbed.Release // 4.15.0, 4.15.1, 4.15.2
	bundles []string
	keyFile string
}

func newPruneBed(t *testing.T) *pruneBed {
	t.Helper()
	src := testbed.NewMemoryRegistry(t)
	key := testbed.NewKey(t, "release")
	store := testbed.NewSignatureStore(t)
	b := &pruneBed{keyFile: filepath.Join(t.TempDir(), "key.asc")}
	if err := os.WriteFile(b.keyFile, key.PublicArmored(t), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := testbed.ReleaseOptions{Components: 6, LayerSize: 16 << 10, Sigstore: true}
	for _, v := range []string{"4.15.0", "4.15.1", "4.15.2"} {
		opts.Version = v
		rel := testbed.BuildRelease(t, src.Host, opts)
		store.SignRelease(t, key, rel)
		out := filepath.Join(t.TempDir(), v+".tar")
		mustFerry(t, "pack", rel.DigestSpec(), "-o", out, "--no-self", "--src-tls-verify=false",
			"--keyring", b.keyFile, "--signature-store", store.URL, "--quiet")
		b.rels, b.bundles = append(b.rels, rel), append(b.bundles, out)
		opts.ShareWith = rel
	}
	return b
}

// mirror applies the bundles of releases which into reg.
func (b *pruneBed) mirror(t *testing.T, reg *testbed.Registry, which ...int) {
	t.Helper()
	for _, i := range which {
		mustFerry(t, applyArgs(t, b.bundles[i], b.keyFile, reg.Host)...)
	}
}

// pruneReport is the part of ferry prune's JSON report the test reads.
type pruneReport struct {
	Repository  string          `json:"repository"`
	Confirmed   bool            `json:"confirmed"`
	Complete    bool            `json:"complete"`
	Error       string          `json:"error"`
	Releases    []string        `json:"releases"`
	Deleted     []pruneDeletion `json:"deleted"`
	Planned     []pruneDeletion `json:"planned"`
	Left        []pruneLeft     `json:"left"`
	Reclaimable struct {
		Bytes int64 `json:"bytes"`
		Blobs []struct {
			Digest digest.Digest `json:"digest"`
			Size   int64         `json:"size"`
		} `json:"blobs"`
	} `json:"reclaimable"`
	GarbageCollection string `json:"garbageCollection"`
	Inventory         string `json:"inventory"`
}

type pruneLeft struct {
	Tag    string        `json:"tag"`
	Digest digest.Digest `json:"digest"`
	Reason string        `json:"reason"`
}

type pruneDeletion struct {
	Digest digest.Digest `json:"digest"`
	Tags   []string      `json:"tags"`
}

func parsePruneReport(t *testing.T, data []byte) *pruneReport {
	t.Helper()
	var r pruneReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("prune report: %v\n%s", err, data)
	}
	return &r
}

func digestsOf(ds []pruneDeletion) []digest.Digest {
	var out []digest.Digest
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	slices.Sort(out)
	return out
}

// mirrorManifests are the manifests repo's tags lead to, lists' children
// included.
func mirrorManifests(t *testing.T, reg *testbed.Registry, repo string) map[digest.Digest]bool {
	t.Helper()
	ctx := context.Background()
	out := map[digest.Digest]bool{}
	for _, d := range targetState(t, reg, repo) {
		if out[d] {
			continue
		}
		out[d] = true
		data, _, err := reg.GetManifest(ctx, repo, d.String())
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Manifests []ocispec.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Manifests {
			out[c.Digest] = true
		}
	}
	return out
}

// pushUnrelated pushes a small image of its own blobs as repo:tag.
func pushUnrelated(t *testing.T, reg *testbed.Registry, repo, tag string) digest.Digest {
	t.Helper()
	ctx := context.Background()
	layer := make([]byte, 4096)
	if _, err := rand.Read(layer); err != nil {
		t.Fatal(err)
	}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}` + tag)
	var descs []ocispec.Descriptor
	for i, data := range [][]byte{config, layer} {
		d, err := reg.PushBlob(ctx, repo, data)
		if err != nil {
			t.Fatal(err)
		}
		mt := ocispec.MediaTypeImageLayer
		if i == 0 {
			mt = ocispec.MediaTypeImageConfig
		}
		descs = append(descs, ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))})
	}
	m, err := json.Marshal(ocispec.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: descs[0], Layers: descs[1:]})
	if err != nil {
		t.Fatal(err)
	}
	d, err := reg.PushManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPrune: three releases sharing blobs in a mirror that deletes, with a
// tag and a repository ferry did not write. A prune keeping the middle
// release changes nothing without --confirm, and says which blobs become
// reclaimable: exactly those only the other two releases use. A registry
// that refuses deletion is refused on the first delete, nothing deleted.
// Confirmed, the kept release reads back byte for byte, the others'
// release tags and own manifests are gone, the tag and repository that are
// not ferry's stay, and the report lists exactly the manifests gone.
func TestPrune(t *testing.T) {
	t.Parallel()
	b := newPruneBed(t)
	c := &pruneCase{bed: b, reg: testbed.NewRegistry(t), older: b.rels[0], kept: b.rels[1], newer: b.rels[2]}
	b.mirror(t, c.reg, 0, 1, 2)
	c.repo = c.reg.Host + "/" + targetRepo
	c.unrelated = map[string]map[string]digest.Digest{
		targetRepo:  {"debug-tools": pushUnrelated(t, c.reg, targetRepo, "debug-tools")},
		"tools/app": {"v1": pushUnrelated(t, c.reg, "tools/app", "v1")},
	}
	// What the prune must free: the blobs of the other two releases that
	// the kept one does not use (the unrelated images' blobs are their own).
	c.wantFreed = map[digest.Digest]int64{}
	for _, r := range []*testbed.Release{c.older, c.newer} {
		for d, size := range r.Blobs {
			if _, shared := c.kept.Blobs[d]; !shared {
				c.wantFreed[d] = size
				c.wantBytes += size
			}
		}
	}

	manifestsBefore := mirrorManifests(t, c.reg, targetRepo)
	dry := c.dryRun(t)
	c.refusals(t, dry)
	t.Run("registry without deletion", c.registryWithoutDeletion)
	rep := c.confirm(t, dry, manifestsBefore)
	c.garbageCollection(t, rep)
}

// pruneCase is TestPrune's mirror: three releases, the middle one kept.
type pruneCase struct {
	bed                *pruneBed
	reg                *testbed.Registry
	repo               string
	older, kept, newer *testbed.Release
	unrelated          map[string]map[string]digest.Digest // repository -> tag -> digest
	wantFreed          map[digest.Digest]int64
	wantBytes          int64
}

func (c *pruneCase) args(extra ...string) []string {
	return append([]string{"prune", "--to", c.repo, "--keep", c.kept.Version, "--dest-tls-verify=false"}, extra...)
}

// dryRun: the summary and the JSON report say what goes and what frees,
// and nothing changes.
func (c *pruneCase) dryRun(t *testing.T) *pruneReport {
	t.Helper()
	tagsBefore, manifestsBefore := targetState(t, c.reg, targetRepo), mirrorManifests(t, c.reg, targetRepo)
	text := ferryRun(t, c.args()...)
	wantExit(t, "prune (dry run)", text, codeOK, "would delete", c.older.Tag+" -> "+c.older.Digest.String(),
		"stay, not ferry's: debug-tools", "dry run: nothing was deleted", "garbage collection")
	t.Logf("ferry prune (dry run):\n%s", text.stdout)
	dry := parsePruneReport(t, []byte(mustFerry(t, c.args("--json")...)))
	if dry.Confirmed || len(dry.Deleted) != 0 || len(dry.Planned) == 0 {
		t.Fatalf("dry run: confirmed %v, deleted %d, planned %d", dry.Confirmed, len(dry.Deleted), len(dry.Planned))
	}
	if got := targetState(t, c.reg, targetRepo); !maps.Equal(got, tagsBefore) {
		t.Errorf("the dry run changed the tags: %d before, %d after", len(tagsBefore), len(got))
	}
	if got := mirrorManifests(t, c.reg, targetRepo); !maps.Equal(got, manifestsBefore) {
		t.Errorf("the dry run changed the manifests: %d before, %d after", len(manifestsBefore), len(got))
	}
	assertReclaimable(t, dry, c.wantFreed, c.wantBytes)
	t.Logf("prune keeping %s of 3 releases: %d manifests to delete, %d blobs, %d bytes reclaimable (the releases hold %d, %d and %d bytes of blobs)",
		c.kept.Version, len(dry.Planned), len(c.wantFreed), c.wantBytes, c.older.Bytes, c.kept.Bytes, c.newer.Bytes)
	return dry
}

// refusals: a bundle kept is its release kept; a version the mirror
// lacks, or nothing to keep, is refused before anything is deleted.
func (c *pruneCase) refusals(t *testing.T, dry *pruneReport) {
	t.Helper()
	tagsBefore := targetState(t, c.reg, targetRepo)
	byBundle := parsePruneReport(t, []byte(mustFerry(t, "prune", "--to", c.repo, "--keep-bundle", c.bed.bundles[1], "--dest-tls-verify=false", "--json")))
	if !slices.Equal(digestsOf(byBundle.Planned), digestsOf(dry.Planned)) || byBundle.Reclaimable.Bytes != c.wantBytes {
		t.Errorf("--keep-bundle of %s plans %d deletions (%d bytes), --keep %s %d (%d bytes)",
			c.kept.Version, len(byBundle.Planned), byBundle.Reclaimable.Bytes, c.kept.Version, len(dry.Planned), c.wantBytes)
	}
	wantExit(t, "prune keeping a version the mirror lacks", ferryRun(t, "prune", "--to", c.repo, "--keep", "4.15.9", "--dest-tls-verify=false", "--confirm"),
		codeUsage, "holds no release 4.15.9", c.older.Tag)
	wantExit(t, "prune keeping nothing", ferryRun(t, "prune", "--to", c.repo, "--confirm"), codeUsage, "prune never empties a mirror")
	if got := targetState(t, c.reg, targetRepo); !maps.Equal(got, tagsBefore) {
		t.Errorf("a refused prune changed the tags")
	}
}

// registryWithoutDeletion: a registry that answers 405 UNSUPPORTED is
// refused on the first deletion, with the hint, and keeps everything.
func (c *pruneCase) registryWithoutDeletion(t *testing.T) {
	noDelete := testbed.NewRegistryWith(t, testbed.RegistryOptions{DeleteDisabled: true})
	c.bed.mirror(t, noDelete, 0, 1)
	before := targetState(t, noDelete, targetRepo)
	report := filepath.Join(t.TempDir(), "report.json")
	res := ferryRun(t, "prune", "--to", noDelete.Host+"/"+targetRepo, "--keep", c.kept.Version, "--dest-tls-verify=false", "--confirm", "--report", report)
	wantExit(t, "prune a registry that does not delete", res, codeFailure, "does not allow deleting manifests", "nothing was deleted", "hint: enable deletion")
	if got := targetState(t, noDelete, targetRepo); !maps.Equal(got, before) {
		t.Errorf("the refused prune changed the tags")
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if r := parsePruneReport(t, data); len(r.Deleted) != 0 || r.Complete || r.Error == "" {
		t.Errorf("the refused prune's report: deleted %d, complete %v, error %q", len(r.Deleted), r.Complete, r.Error)
	}
}

// confirm: the prune deletes what the dry run planned, exactly those
// manifests are gone, the kept release and what is not ferry's read back
// whole, and a second prune finds nothing to do.
func (c *pruneCase) confirm(t *testing.T, dry *pruneReport, manifestsBefore map[digest.Digest]bool) *pruneReport {
	t.Helper()
	ctx := context.Background()
	reportFile := filepath.Join(t.TempDir(), "prune.json")
	wantExit(t, "prune --confirm", ferryRun(t, c.args("--confirm", "--report", reportFile)...), codeOK, "deleted", "garbage collection")
	data, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	rep := parsePruneReport(t, data)
	if !rep.Confirmed || !rep.Complete || rep.Repository != c.repo || !slices.Equal(digestsOf(rep.Deleted), digestsOf(dry.Planned)) {
		t.Errorf("report: confirmed %v, complete %v, repository %q, %d deleted; the dry run planned %d",
			rep.Confirmed, rep.Complete, rep.Repository, len(rep.Deleted), len(dry.Planned))
	}
	assertReclaimable(t, rep, c.wantFreed, c.wantBytes)
	var gone []digest.Digest
	for d := range manifestsBefore {
		if _, err := c.reg.HeadManifest(ctx, targetRepo, d.String()); errors.Is(err, testbed.ErrNotFound) {
			gone = append(gone, d)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(gone)
	if !slices.Equal(gone, digestsOf(rep.Deleted)) {
		t.Errorf("%d manifests are gone, the report lists %d deleted", len(gone), len(rep.Deleted))
	}
	assertReleaseIntact(t, c.reg, c.kept)
	assertTagsComplete(t, c.reg, targetRepo)
	assertReleaseGone(t, c.reg, c.kept, c.older, c.newer)
	c.assertUnrelated(t, c.reg)
	if !slices.ContainsFunc(rep.Left, func(l pruneLeft) bool { return l.Tag == "debug-tools" && l.Reason == "not ferry's" }) {
		t.Errorf("the report does not list debug-tools as not ferry's")
	}
	again := parsePruneReport(t, []byte(mustFerry(t, c.args("--confirm", "--json", "--report", filepath.Join(t.TempDir(), "again.json"))...)))
	if len(again.Planned) != 0 || again.Reclaimable.Bytes != 0 {
		t.Errorf("a second prune plans %d deletions and %d bytes, want none", len(again.Planned), again.Reclaimable.Bytes)
	}
	return rep
}

// assertUnrelated fails unless the tags ferry did not write name what
// they did, whole.
func (c *pruneCase) assertUnrelated(t *testing.T, reg *testbed.Registry) {
	t.Helper()
	for repo, tags := range c.unrelated {
		for tag, want := range tags {
			if desc, err := reg.HeadManifest(context.Background(), repo, tag); err != nil || desc.Digest != want {
				t.Errorf("%s:%s, not ferry's, is %v (%v) after the prune, want %s", repo, tag, desc.Digest, err, want)
			}
		}
		assertTagsComplete(t, reg, repo)
	}
}

// garbageCollection: the registry's garbage collection, run offline on the
// store, frees exactly the configs and layers prune called reclaimable
// (and the deleted manifests' own bytes); the kept release and what is
// not ferry's are whole after it.
func (c *pruneCase) garbageCollection(t *testing.T, rep *pruneReport) {
	t.Helper()
	c.reg.Close()
	before := storedBlobs(t, c.reg.Root)
	gc := collectGarbage(t, c.reg.Root)
	after := storedBlobs(t, c.reg.Root)
	freed, freedBytes := map[digest.Digest]int64{}, int64(0)
	deletedManifests := digestsOf(rep.Deleted)
	for d, size := range before {
		if _, stays := after[d]; !stays && !slices.Contains(deletedManifests, d) {
			freed[d] = size
			freedBytes += size
		}
	}
	if !maps.Equal(freed, c.wantFreed) {
		t.Errorf("garbage collection freed %d blobs (%d bytes) besides the deleted manifests; prune said %d (%d bytes)", len(freed), freedBytes, len(c.wantFreed), c.wantBytes)
	}
	var removedBytes int64
	for d, size := range before {
		if _, stays := after[d]; !stays {
			removedBytes += size
		}
	}
	if len(gc.Blobs) != len(before)-len(after) || gc.Bytes != removedBytes {
		t.Errorf("ferry serve gc says it freed %d blobs (%d bytes); the store lost %d (%d bytes)", len(gc.Blobs), gc.Bytes, len(before)-len(after), removedBytes)
	}
	t.Logf("ferry serve gc after the prune freed %d blobs, %d bytes, besides the %d deleted manifests (%d blobs, %d bytes in all)", len(freed), freedBytes, len(deletedManifests), len(gc.Blobs), gc.Bytes)
	restarted := testbed.NewRegistryWith(t, testbed.RegistryOptions{Root: c.reg.Root})
	assertReleaseIntact(t, restarted, c.kept)
	assertTagsComplete(t, restarted, targetRepo)
	c.assertUnrelated(t, restarted)
}

// collectGarbage runs `ferry serve gc` on the store at root, the registry
// stopped, as an admin would after a prune, and returns what it says it
// freed.
func collectGarbage(t *testing.T, root string) serve.GCResult {
	t.Helper()
	out := mustFerry(t, "serve", "gc", "--root", root, "--json")
	var res serve.GCResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("ferry serve gc --json printed %q: %v", out, err)
	}
	return res
}

// storedBlobs are the blobs (manifests included) a filesystem store at
// root holds, with their sizes.
func storedBlobs(t *testing.T, root string) map[digest.Digest]int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docker", "registry", "v2", "blobs", "sha256", "*", "*", "data"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[digest.Digest]int64{}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		out[digest.NewDigestFromEncoded(digest.SHA256, filepath.Base(filepath.Dir(f)))] = st.Size()
	}
	return out
}

// assertReclaimable fails unless the report's reclaimable blobs are want.
func assertReclaimable(t *testing.T, r *pruneReport, want map[digest.Digest]int64, wantBytes int64) {
	t.Helper()
	got := map[digest.Digest]int64{}
	for _, b := range r.Reclaimable.Blobs {
		got[b.Digest] = b.Size
	}
	if r.Reclaimable.Bytes != wantBytes || !maps.Equal(got, want) {
		t.Errorf("reclaimable: %d blobs, %d bytes; want the %d blobs only the pruned releases use, %d bytes", len(got), r.Reclaimable.Bytes, len(want), wantBytes)
	}
	if !strings.Contains(r.GarbageCollection, "garbage-collect") || !strings.Contains(r.Inventory, "ferry inventory") {
		t.Errorf("the report does not say how blobs are freed or to take the inventory again: %q / %q", r.GarbageCollection, r.Inventory)
	}
}

// assertReleaseIntact fails unless every manifest of rel reads back byte
// for byte, every blob it uses reads back to its digest, and its release
// and component tags name what they did.
func assertReleaseIntact(t *testing.T, reg *testbed.Registry, rel *testbed.Release) {
	t.Helper()
	ctx := context.Background()
	for _, img := range rel.Images {
		data, _, err := reg.GetManifest(ctx, targetRepo, img.Digest.String())
		if err != nil || !bytes.Equal(data, img.Manifest) {
			t.Errorf("kept manifest %s (%s %s): %v", img.Digest, img.Role, img.Component, err)
		}
	}
	for d := range rel.Blobs {
		data, err := reg.GetBlob(ctx, targetRepo, d)
		if err != nil || digest.FromBytes(data) != d {
			t.Errorf("kept blob %s: %v", d, err)
		}
	}
	tags := map[string]digest.Digest{rel.Tag: rel.Digest}
	for _, c := range rel.Components {
		tags[rel.Tag+"-"+c.Name] = c.Digest
	}
	for tag, want := range tags {
		if desc, err := reg.HeadManifest(ctx, targetRepo, tag); err != nil || desc.Digest != want {
			t.Errorf("kept tag %s: %v (%v), want %s", tag, desc.Digest, err, want)
		}
	}
}

// assertReleaseGone fails unless the releases' tags are gone, and their
// manifests the kept release does not share; a component tag of theirs
// that stays names a manifest of the kept release.
func assertReleaseGone(t *testing.T, reg *testbed.Registry, kept *testbed.Release, gone ...*testbed.Release) {
	t.Helper()
	ctx := context.Background()
	keptManifests := map[digest.Digest]bool{}
	for _, img := range kept.Images {
		keptManifests[img.Digest] = true
	}
	tags := targetState(t, reg, targetRepo)
	for _, rel := range gone {
		if _, err := reg.HeadManifest(ctx, targetRepo, rel.Tag); !errors.Is(err, testbed.ErrNotFound) {
			t.Errorf("release tag %s after the prune: %v, want 404", rel.Tag, err)
		}
		for _, img := range rel.Images {
			if keptManifests[img.Digest] {
				continue
			}
			if _, err := reg.HeadManifest(ctx, targetRepo, img.Digest.String()); !errors.Is(err, testbed.ErrNotFound) {
				t.Errorf("manifest %s (%s %s) of %s after the prune: %v, want 404", img.Digest, img.Role, img.Component, rel.Version, err)
			}
		}
		for tag, d := range tags {
			if strings.HasPrefix(tag, rel.Tag) && !keptManifests[d] {
				t.Errorf("tag %s of pruned release %s stays on %s, which the kept release does not use", tag, rel.Version, d)
			}
		}
	}
}
