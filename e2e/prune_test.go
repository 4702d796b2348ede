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

	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ferryhq/ferry/e2e/testbed"
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
	ctx := context.Background()
	b := newPruneBed(t)
	older, kept, newer := b.rels[0], b.rels[1], b.rels[2]
	reg := testbed.NewRegistry(t)
	b.mirror(t, reg, 0, 1, 2)
	unrelatedTag := pushUnrelated(t, reg, targetRepo, "debug-tools")
	unrelatedRepo := pushUnrelated(t, reg, "tools/app", "v1")
	repo := reg.Host + "/" + targetRepo
	pruneArgs := func(extra ...string) []string {
		return append([]string{"prune", "--to", repo, "--keep", kept.Version, "--dest-tls-verify=false"}, extra...)
	}

	// What the prune must free: the blobs of the other two releases that
	// the kept one does not use (the unrelated images' blobs are their own).
	wantFreed := map[digest.Digest]int64{}
	for _, r := range []*testbed.Release{older, newer} {
		for d, size := range r.Blobs {
			if _, shared := kept.Blobs[d]; !shared {
				wantFreed[d] = size
			}
		}
	}
	var wantBytes int64
	for _, size := range wantFreed {
		wantBytes += size
	}

	tagsBefore, manifestsBefore := targetState(t, reg, targetRepo), mirrorManifests(t, reg, targetRepo)
	text := ferryRun(t, pruneArgs()...)
	wantExit(t, "prune (dry run)", text, codeOK, "would delete", older.Tag+" -> "+older.Digest.String(),
		"stay, not ferry's: debug-tools", "dry run: nothing was deleted", "garbage collection")
	t.Logf("ferry prune (dry run):\n%s", text.stdout)
	dry := parsePruneReport(t, []byte(mustFerry(t, pruneArgs("--json")...)))
	if dry.Confirmed || len(dry.Deleted) != 0 || len(dry.Planned) == 0 {
		t.Fatalf("dry run: confirmed %v, deleted %d, planned %d", dry.Confirmed, len(dry.Deleted), len(dry.Planned))
	}
	if got := targetState(t, reg, targetRepo); !maps.Equal(got, tagsBefore) {
		t.Errorf("the dry run changed the tags: %d before, %d after", len(tagsBefore), len(got))
	}
	if got := mirrorManifests(t, reg, targetRepo); !maps.Equal(got, manifestsBefore) {
		t.Errorf("the dry run changed the manifests: %d before, %d after", len(manifestsBefore), len(got))
	}
	assertReclaimable(t, dry, wantFreed, wantBytes)
	t.Logf("prune keeping %s of 3 releases: %d manifests to delete, %d blobs, %d bytes reclaimable (the releases hold %d, %d and %d bytes of blobs)",
		kept.Version, len(dry.Planned), len(wantFreed), wantBytes, older.Bytes, kept.Bytes, newer.Bytes)

	// A bundle kept is its release kept; a version the mirror lacks, or
	// nothing to keep, is refused before anything is read or deleted.
	byBundle := parsePruneReport(t, []byte(mustFerry(t, "prune", "--to", repo, "--keep-bundle", b.bundles[1], "--dest-tls-verify=false", "--json")))
	if !slices.Equal(digestsOf(byBundle.Planned), digestsOf(dry.Planned)) || byBundle.Reclaimable.Bytes != wantBytes {
		t.Errorf("--keep-bundle of %s plans %d deletions (%d bytes), --keep %s %d (%d bytes)",
			kept.Version, len(byBundle.Planned), byBundle.Reclaimable.Bytes, kept.Version, len(dry.Planned), wantBytes)
	}
	wantExit(t, "prune keeping a version the mirror lacks", ferryRun(t, "prune", "--to", repo, "--keep", "4.15.9", "--dest-tls-verify=false", "--confirm"),
		codeUsage, "holds no release 4.15.9", older.Tag)
	wantExit(t, "prune keeping nothing", ferryRun(t, "prune", "--to", repo, "--confirm"), codeUsage, "prune never empties a mirror")
	if got := targetState(t, reg, targetRepo); !maps.Equal(got, tagsBefore) {
		t.Errorf("a refused prune changed the tags")
	}

	t.Run("registry without deletion", func(t *testing.T) {
		noDelete := testbed.NewRegistryWith(t, testbed.RegistryOptions{DeleteDisabled: true})
		b.mirror(t, noDelete, 0, 1)
		before := targetState(t, noDelete, targetRepo)
		report := filepath.Join(t.TempDir(), "report.json")
		res := ferryRun(t, "prune", "--to", noDelete.Host+"/"+targetRepo, "--keep", kept.Version, "--dest-tls-verify=false", "--confirm", "--report", report)
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
	})

	reportFile := filepath.Join(t.TempDir(), "prune.json")
	res := ferryRun(t, pruneArgs("--confirm", "--report", reportFile)...)
	wantExit(t, "prune --confirm", res, codeOK, "deleted", "garbage collection")
	data, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	rep := parsePruneReport(t, data)
	if !rep.Confirmed || !rep.Complete || rep.Repository != repo {
		t.Errorf("report: confirmed %v, complete %v, repository %q", rep.Confirmed, rep.Complete, rep.Repository)
	}
	if !slices.Equal(digestsOf(rep.Deleted), digestsOf(dry.Planned)) {
		t.Errorf("deleted %d manifests, the dry run planned %d", len(rep.Deleted), len(dry.Planned))
	}
	assertReclaimable(t, rep, wantFreed, wantBytes)

	// Exactly the reported manifests are gone.
	var gone []digest.Digest
	for d := range manifestsBefore {
		if _, err := reg.HeadManifest(ctx, targetRepo, d.String()); errors.Is(err, testbed.ErrNotFound) {
			gone = append(gone, d)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(gone)
	if !slices.Equal(gone, digestsOf(rep.Deleted)) {
		t.Errorf("%d manifests are gone, the report lists %d deleted", len(gone), len(rep.Deleted))
	}

	assertReleaseIntact(t, reg, kept)
	assertTagsComplete(t, reg, targetRepo)
	assertReleaseGone(t, reg, kept, older, newer)
	for r, tags := range map[string]map[string]digest.Digest{targetRepo: {"debug-tools": unrelatedTag}, "tools/app": {"v1": unrelatedRepo}} {
		for tag, want := range tags {
			if desc, err := reg.HeadManifest(ctx, r, tag); err != nil || desc.Digest != want {
				t.Errorf("%s:%s, not ferry's, is %v (%v) after the prune, want %s", r, tag, desc.Digest, err, want)
			}
		}
	}
	assertTagsComplete(t, reg, "tools/app")
	if !slices.ContainsFunc(rep.Left, func(l pruneLeft) bool { return l.Tag == "debug-tools" && l.Reason == "not ferry's" }) {
		t.Errorf("the report does not list debug-tools as not ferry's")
	}

	again := parsePruneReport(t, []byte(mustFerry(t, pruneArgs("--confirm", "--json", "--report", filepath.Join(t.TempDir(), "again.json"))...)))
	if len(again.Planned) != 0 || again.Reclaimable.Bytes != 0 {
		t.Errorf("a second prune plans %d deletions and %d bytes, want none", len(again.Planned), again.Reclaimable.Bytes)
	}

	// The registry's garbage collection, run offline on the store, frees
	// exactly the configs and layers prune called reclaimable (and the
	// deleted manifests' own bytes); the kept release is whole after it.
	reg.Close()
	before := storedBlobs(t, reg.Root)
	collectGarbage(t, reg.Root)
	after := storedBlobs(t, reg.Root)
	freed, freedBytes := map[digest.Digest]int64{}, int64(0)
	deletedManifests := digestsOf(rep.Deleted)
	for d, size := range before {
		if _, stays := after[d]; !stays && !slices.Contains(deletedManifests, d) {
			freed[d] = size
			freedBytes += size
		}
	}
	if !maps.Equal(freed, wantFreed) {
		t.Errorf("garbage collection freed %d blobs (%d bytes) besides the deleted manifests; prune said %d (%d bytes)", len(freed), freedBytes, len(wantFreed), wantBytes)
	}
	t.Logf("garbage collection after the prune freed %d blobs, %d bytes, besides the %d deleted manifests", len(freed), freedBytes, len(deletedManifests))
	restarted := testbed.NewRegistryWith(t, testbed.RegistryOptions{Root: reg.Root})
	assertReleaseIntact(t, restarted, kept)
	assertTagsComplete(t, restarted, targetRepo)
	assertTagsComplete(t, restarted, "tools/app")
}

// collectGarbage runs distribution's garbage collector on the filesystem
// store at root, as `registry garbage-collect` does, the registry stopped.
func collectGarbage(t *testing.T, root string) {
	t.Helper()
	ctx := context.Background()
	driver, err := filesystem.FromParameters(map[string]any{"rootdirectory": root})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := storage.NewRegistry(ctx, driver, storage.EnableDelete)
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.MarkAndSweep(ctx, driver, ns, storage.GCOpts{Quiet: true}); err != nil {
		t.Fatalf("garbage collection: %v", err)
	}
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
