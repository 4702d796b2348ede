package testbed

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blang/semver/v4"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/model"
	"github.com/operator-framework/operator-registry/alpha/property"

	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/registry"
)

// ferryClient is ferry's own registry client, as the catalog reader's
// tests make it: plain HTTP, no credentials of the host, no retries.
func ferryClient(t *testing.T) *registry.Client {
	return registry.New(registry.Options{
		AuthFile:  filepath.Join(t.TempDir(), "auth.json"),
		TLSVerify: false,
		UserAgent: "ferry-testbed-test",
		Retry:     registry.RetryPolicy{Attempts: 1},
	})
}

// readCatalog reads the catalog back with ferry's reader, by tag.
func readCatalog(t *testing.T, cat *Catalog) *catalog.Catalog {
	t.Helper()
	got, err := catalog.Read(t.Context(), ferryClient(t), cat.PullSpec)
	if err != nil {
		t.Fatalf("reading %s: %v", cat.PullSpec, err)
	}
	return got
}

// canonicalFBC maps every document of cfg to its JSON with object keys
// sorted and no spacing, so that catalogs read from JSON and YAML files
// compare by content alone; numbers keep their spelling. The key is
// schema/package/name.
func canonicalFBC(t *testing.T, cfg *declcfg.DeclarativeConfig) map[string]string {
	t.Helper()
	out := map[string]string{}
	put := func(schema, pkg, name string, doc any) {
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		// Numbers stay as written: 4.20 and 4.2 are not the same maximum.
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if data, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
		key := schema + "/" + pkg + "/" + name
		if _, dup := out[key]; dup {
			t.Errorf("%s twice", key)
		}
		out[key] = string(data)
	}
	for _, p := range cfg.Packages {
		put(p.Schema, p.Name, "", p)
	}
	for _, c := range cfg.Channels {
		put(c.Schema, c.Package, c.Name, c)
	}
	for _, b := range cfg.Bundles {
		put(b.Schema, b.Package, b.Name, b)
	}
	for _, d := range cfg.Deprecations {
		put(d.Schema, d.Package, "", d)
	}
	if len(cfg.Others) > 0 {
		t.Errorf("%d documents of other schemas", len(cfg.Others))
	}
	return out
}

func assertSameFBC(t *testing.T, got, want *declcfg.DeclarativeConfig) {
	t.Helper()
	g, w := canonicalFBC(t, got), canonicalFBC(t, want)
	for _, k := range slices.Sorted(maps.Keys(w)) {
		switch {
		case g[k] == "":
			t.Errorf("read back without %s", k)
		case g[k] != w[k]:
			t.Errorf("%s read back as\n %s\nwant\n %s", k, g[k], w[k])
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("read back with %s, not built", k)
		}
	}
}

// validModel converts cfg to operator-registry's model and validates it,
// on a copy: the model normalises property values in place.
func validModel(t *testing.T, cfg *declcfg.DeclarativeConfig) model.Model {
	t.Helper()
	view := *cfg
	view.Bundles = slices.Clone(cfg.Bundles)
	for i := range view.Bundles {
		view.Bundles[i].Properties = slices.Clone(view.Bundles[i].Properties)
	}
	m, err := declcfg.ConvertToModel(view)
	if err != nil {
		t.Fatalf("FBC does not convert: %v", err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("FBC does not validate: %v", err)
	}
	return m
}

// TestBuildCatalogFBC: the FBC built is a valid catalog by operator-
// registry's own model, with the heads HeadOf says, and has every trait
// the filter's tests need.
func TestBuildCatalogFBC(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	cat := BuildCatalog(t, reg.Host, CatalogOptions{})
	m := validModel(t, cat.FBC)

	wantHeads := map[string]string{
		"aurora-operator/stable":   "aurora-operator.v1.2.0",
		"aurora-operator/fast":     "aurora-operator.v2.0.0",
		"borealis-operator/stable": "borealisoperator.4.14.0-202311021650",
		"borealis-operator/fast":   "borealisoperator.4.15.0-202402011532",
		"cygnus-operator/alpha":    "cygnus-operator.v1.0.0",
		"cygnus-operator/stable":   "cygnus-operator.v1.1.0",
		"dorado-operator/stable":   "dorado-operator.v3.0.1",
	}
	heads := 0
	for _, p := range m {
		for _, ch := range p.Channels {
			head, err := ch.Head()
			if err != nil {
				t.Fatalf("%s/%s: %v", p.Name, ch.Name, err)
			}
			key := p.Name + "/" + ch.Name
			if got := cat.HeadOf(p.Name, ch.Name); got != head.Name || got != wantHeads[key] {
				t.Errorf("HeadOf(%s) = %s; model's head %s, want %s", key, got, head.Name, wantHeads[key])
			}
			heads++
		}
	}
	if heads != len(wantHeads) {
		t.Errorf("%d channels, want %d", heads, len(wantHeads))
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, cat.Packages) || len(got) != 4 {
		t.Errorf("packages %v, Packages %v", got, cat.Packages)
	}
	if d := cat.DefaultChannel(CatalogPackageBorealis); d != "fast" {
		t.Errorf("borealis default channel %q, want fast", d)
	}
	checkCatalogTraits(t, cat)
}

// checkCatalogTraits asserts what the FBC must hold for the tests that use
// it: every kind of upgrade edge, prerelease versions, deprecations, both
// forms of olm.maxOpenShiftVersion, dependencies, a related image by tag.
func checkCatalogTraits(t *testing.T, cat *Catalog) {
	t.Helper()
	var replaces, skips, skipRanges int
	for _, ch := range cat.FBC.Channels {
		for _, e := range ch.Entries {
			if e.Replaces != "" {
				replaces++
			}
			skips += len(e.Skips)
			if e.SkipRange != "" {
				if _, err := semver.ParseRange(e.SkipRange); err != nil {
					t.Errorf("%s: skipRange %q: %v", e.Name, e.SkipRange, err)
				}
				skipRanges++
			}
		}
	}
	if replaces == 0 || skips == 0 || skipRanges == 0 {
		t.Errorf("%d replaces, %d skips, %d skipRanges: want some of each", replaces, skips, skipRanges)
	}
	prerelease, maxForms, required := 0, map[string]bool{}, map[string]bool{}
	for _, b := range cat.Bundles {
		if v, err := semver.Parse(b.Version); err != nil {
			t.Errorf("%s: version %q: %v", b.Name, b.Version, err)
		} else if len(v.Pre) > 0 {
			prerelease++
		}
		if b.MaxOpenShiftVersion != "" {
			maxForms[b.MaxOpenShiftVersion] = true
		}
		if len(b.Channels) == 0 || b.RelatedImages[0] != b.Image {
			t.Errorf("%s: channels %v, related images %v", b.Name, b.Channels, b.RelatedImages)
		}
	}
	for _, b := range cat.FBC.Bundles {
		for _, p := range b.Properties {
			required[p.Type] = true
		}
	}
	if prerelease == 0 || !maxForms[`"4.16"`] || !maxForms[`4.2`] {
		t.Errorf("%d prerelease versions, olm.maxOpenShiftVersion forms %v", prerelease, slices.Sorted(maps.Keys(maxForms)))
	}
	if !required[property.TypePackageRequired] || !required[property.TypeGVKRequired] {
		t.Errorf("property types %v: want both kinds of dependency", slices.Sorted(maps.Keys(required)))
	}
	deprecated := map[string]int{}
	for _, d := range cat.FBC.Deprecations {
		deprecated[d.Package] = len(d.Entries)
	}
	if deprecated[CatalogPackageCygnus] != 2 || deprecated[CatalogPackageDorado] != 1 {
		t.Errorf("deprecations %v", deprecated)
	}
	byTag := 0
	for _, r := range cat.RelatedImages {
		if r.Tag != "" {
			byTag++
			if r.Image != cat.Host+"/"+r.Repository+":"+r.Tag || len(r.Bundles) != 2 {
				t.Errorf("related image by tag %+v", r)
			}
		} else if r.Image != cat.Host+"/"+r.Repository+"@"+r.Digest.String() {
			t.Errorf("related image %s, recorded as %s@%s", r.Image, r.Repository, r.Digest)
		}
	}
	if byTag != 1 {
		t.Errorf("%d related images by tag, want 1", byTag)
	}
}

// TestBuildCatalogReadBack: ferry's catalog reader, through ferry's
// registry client, reads back exactly the FBC built, from a single image
// and from an index, with the stock command and cache directory.
func TestBuildCatalogReadBack(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts CatalogOptions
		mt   string
	}{
		{"single", CatalogOptions{}, ocispec.MediaTypeImageManifest},
		{"multi", CatalogOptions{Multi: true}, ocispec.MediaTypeImageIndex},
		{"multi docker", CatalogOptions{Multi: true, Docker: true}, MediaTypeDockerManifestList},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := NewMemoryRegistry(t)
			cat := BuildCatalog(t, reg.Host, tt.opts)
			got := readCatalog(t, cat)
			assertSameFBC(t, got.FBC, cat.FBC)
			if got.Digest != cat.Digest || got.MediaType != tt.mt || cat.MediaType != tt.mt {
				t.Errorf("read %s %s, built %s %s, want type %s", got.Digest, got.MediaType, cat.Digest, cat.MediaType, tt.mt)
			}
			wantPlatforms := 1
			if tt.opts.Multi {
				wantPlatforms = len(CatalogArches())
			}
			if !slices.Equal(got.Platforms, cat.Platforms) || len(got.Platforms) != wantPlatforms {
				t.Errorf("platforms read %v, built %v", got.Platforms, cat.Platforms)
			}
			wantCmd := []string{"serve", "/configs", "--cache-dir=/tmp/cache"}
			if got.ConfigsDir != "/configs" || got.CacheDir != CatalogCacheDir ||
				!slices.Equal(got.Entrypoint, []string{"/bin/opm"}) || !slices.Equal(got.Cmd, wantCmd) || !slices.Equal(cat.Cmd, wantCmd) {
				t.Errorf("configs %s, cache %s, entrypoint %q, cmd %q", got.ConfigsDir, got.CacheDir, got.Entrypoint, got.Cmd)
			}
			checkCatalogLayers(t, reg, cat)
		})
	}
}

// checkCatalogLayers: every platform image has the base, FBC and cache
// layers, sharing the last two, and the FBC layer holds Files.
func checkCatalogLayers(t *testing.T, reg *Registry, cat *Catalog) {
	t.Helper()
	c := reg.Client()
	var bases []digest.Digest
	for _, p := range cat.Platforms {
		data, _ := mustManifest(t, c, cat.Repository, p.String())
		m := decode[ocispec.Manifest](t, data)
		var layers []digest.Digest
		for _, l := range m.Layers {
			layers = append(layers, l.Digest)
		}
		if len(layers) != 3 || layers[1] != cat.ConfigsLayer || layers[2] != cat.CacheLayer {
			t.Errorf("platform %s: layers %v; FBC %s, cache %s", p, layers, cat.ConfigsLayer, cat.CacheLayer)
			continue
		}
		bases = append(bases, layers[0])
	}
	if len(slices.Compact(slices.Clone(bases))) != len(cat.Platforms) {
		t.Errorf("base layers %v: want one per platform", bases)
	}
	files := layerFiles(t, c, cat.Repository, cat.ConfigsLayer)
	for name, data := range cat.Files {
		if !bytes.Equal(files["configs/"+name], data) {
			t.Errorf("FBC layer's configs/%s differs from Files", name)
		}
	}
	if len(files) != len(cat.Files) || len(cat.Files) < 6 {
		t.Errorf("FBC layer has %d files, Files %d", len(files), len(cat.Files))
	}
	dirs := map[string]bool{}
	for name := range cat.Files {
		dirs[strings.SplitN(name, "/", 2)[0]] = true
	}
	if got := slices.Sorted(maps.Keys(dirs)); !slices.Equal(got, cat.Packages) {
		t.Errorf("package directories %v, want %v", got, cat.Packages)
	}
}

// layerFiles are the regular files of a gzip'd layer blob.
func layerFiles(t *testing.T, c *Client, repo string, d digest.Digest) map[string][]byte {
	t.Helper()
	m := ocispec.Manifest{Layers: []ocispec.Descriptor{{Digest: d}}}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return releaseFiles(t, c, repo, data)
}

// TestBuildCatalogImagesPullable: every image the FBC names is pullable by
// that name with ferry's client (the digest checked), the tag reference
// resolves to the digest recorded, and every blob of every image pushed
// streams whole and verified.
func TestBuildCatalogImagesPullable(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	cat := BuildCatalog(t, reg.Host, CatalogOptions{Multi: true})
	c := ferryClient(t)
	related := map[string]RelatedImage{}
	for _, r := range cat.RelatedImages {
		related[r.Image] = r
	}
	resolved := 0
	for _, b := range cat.FBC.Bundles {
		entry := cat.Bundles[b.Name]
		if b.Image != cat.Host+"/"+entry.Repository+"@"+entry.Digest.String() {
			t.Errorf("%s: image %s, recorded as %s@%s", b.Name, b.Image, entry.Repository, entry.Digest)
		}
		for _, ri := range b.RelatedImages {
			want := entry.Digest
			if ri.Image != b.Image {
				r, ok := related[ri.Image]
				if !ok {
					t.Errorf("%s: related image %s is not in RelatedImages", b.Name, ri.Image)
					continue
				}
				want = r.Digest
			}
			m, err := c.Resolve(t.Context(), ri.Image)
			if err != nil {
				t.Errorf("%s: pulling %s: %v", b.Name, ri.Image, err)
				continue
			}
			if m.Digest != want {
				t.Errorf("%s: %s resolves to %s, recorded %s", b.Name, ri.Image, m.Digest, want)
			}
			resolved++
		}
	}
	if resolved < 2*len(cat.Bundles) {
		t.Errorf("%d references resolved for %d bundles", resolved, len(cat.Bundles))
	}
	roles := map[string]int{}
	byRepo := map[string][]ImageInfo{}
	for _, im := range cat.Images {
		roles[im.Role]++
		byRepo[im.Repository] = append(byRepo[im.Repository], im)
	}
	for repo, images := range byRepo {
		src, err := c.Source(t.Context(), cat.Host+"/"+repo)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range images {
			if m, err := src.Manifest(t.Context(), im.Digest); err != nil || !bytes.Equal(m.Bytes, im.Manifest) {
				t.Errorf("%s@%s: %v", repo, im.Digest, err)
			}
			for _, d := range im.Blobs {
				if err := streamVerified(t, src, d, cat.Blobs[d]); err != nil {
					t.Errorf("%s blob %s: %v", repo, d, err)
				}
			}
		}
		if err := src.Close(); err != nil {
			t.Error(err)
		}
	}
	// Multi: each related image is an index of two, the catalog too.
	if roles[RoleBundle] != len(cat.Bundles) || roles[RoleRelated] != len(cat.RelatedImages) ||
		roles[RoleCatalog] != 1 || roles[RoleChild] != 2*(len(cat.RelatedImages)+1) {
		t.Errorf("images by role %v for %d bundles and %d related images", roles, len(cat.Bundles), len(cat.RelatedImages))
	}
}

func streamVerified(t *testing.T, src *registry.Source, d digest.Digest, size int64) error {
	rc, err := src.VerifiedBlob(t.Context(), d, size)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestBuildCatalogMaxOpenShiftVersion: the YAML file spells one maximum
// 4.20 unquoted, and what ferry reads back is the number 4.2, as OLM reads
// it: a bundle that blocks the update from 4.16 to 4.17. The quoted forms
// read as written.
func TestBuildCatalogMaxOpenShiftVersion(t *testing.T) {
	t.Parallel()
	reg := NewMemoryRegistry(t)
	cat := BuildCatalog(t, reg.Host, CatalogOptions{})
	if yml := cat.Files["borealis-operator/catalog.yaml"]; !bytes.Contains(yml, []byte("- type: olm.maxOpenShiftVersion\n  value: 4.20\n")) {
		t.Errorf("borealis's catalog.yaml does not spell 4.20 unquoted")
	}
	got := readCatalog(t, cat)
	want := map[string]string{
		"aurora-operator.v1.0.0":               "4.16.0",
		"aurora-operator.v1.1.0":               "4.16.0",
		"borealisoperator.4.13.0-202309181427": "4.15.0",
		"borealisoperator.4.14.0-202310201027": "4.2.0",
	}
	for _, b := range got.FBC.Bundles {
		v, err := catalog.MaxOpenShiftVersion(b)
		if err != nil {
			t.Errorf("%s: %v", b.Name, err)
			continue
		}
		gotV := ""
		if v != nil {
			gotV = v.String()
		}
		if gotV != want[b.Name] {
			t.Errorf("%s: maximum %q, want %q", b.Name, gotV, want[b.Name])
		}
	}
	number := cat.Bundles["borealisoperator.4.14.0-202310201027"]
	if number.MaxOpenShiftVersion != "4.2" {
		t.Errorf("recorded maximum %q, want 4.2", number.MaxOpenShiftVersion)
	}
	for _, b := range got.FBC.Bundles {
		if b.Name == number.Name {
			if blocks, why := catalog.BlocksUpgrade(b, "4.16.3", "4.17.0"); !blocks {
				t.Errorf("%s does not block 4.16 to 4.17: %s", b.Name, why)
			}
		}
	}
}

// imageDigests lists role, repository and digest of every image.
func imageDigests(cat *Catalog) []string {
	var out []string
	for _, im := range cat.Images {
		out = append(out, im.Role+" "+im.Repository+"@"+im.Digest.String())
	}
	slices.Sort(out)
	return out
}

// TestBuildCatalogDeterministic: a seed gives the same images on any
// registry; with a fixed ReferenceHost the catalog and its signatures too.
// Another seed gives other images.
func TestBuildCatalogDeterministic(t *testing.T) {
	t.Parallel()
	regA, regB := NewMemoryRegistry(t), NewMemoryRegistry(t)
	opts := CatalogOptions{Seed: 7, Multi: true, Sigstore: true, ReferenceHost: "registry.redhat.io"}
	a := BuildCatalog(t, regA.Host, opts)
	b := BuildCatalog(t, regB.Host, opts)
	if a.Digest != b.Digest || !slices.Equal(imageDigests(a), imageDigests(b)) {
		t.Errorf("same options on two registries: catalogs %s and %s", a.Digest, b.Digest)
	}
	if ref := a.Bundles["aurora-operator.v1.0.0"].Image; !strings.HasPrefix(ref, "registry.redhat.io/aurora/") {
		t.Errorf("bundle image %s, want it on registry.redhat.io", ref)
	}

	opts.ReferenceHost = ""
	c := BuildCatalog(t, regB.Host, opts)
	if c.Digest == a.Digest {
		t.Errorf("an FBC naming %s has the digest of one naming registry.redhat.io", regB.Host)
	}
	for name, bundle := range a.Bundles {
		if c.Bundles[name].Digest != bundle.Digest {
			t.Errorf("%s: bundle image %s on one host, %s on another", name, bundle.Digest, c.Bundles[name].Digest)
		}
	}

	opts.Seed = 8
	d := BuildCatalog(t, regB.Host, opts)
	for i, r := range d.RelatedImages {
		if r.Digest == c.RelatedImages[i].Digest {
			t.Errorf("seeds 7 and 8 made the same image %s", r.Digest)
		}
	}
	for name, bundle := range d.Bundles {
		if c.Bundles[name].Digest == bundle.Digest {
			t.Errorf("seeds 7 and 8 made the same bundle image for %s", name)
		}
	}
}

// TestBuildCatalogSigstore: the catalog (by its tag), every bundle image
// and every operator image carry a cosign signature by the catalog's key
// naming them; the operands none.
func TestBuildCatalogSigstore(t *testing.T) {
	t.Parallel()
	key, err := NewSigstoreKey(SigstoreKeyECDSA)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]CatalogOptions{
		"seeded key":     {Sigstore: true},
		"given key":      {Sigstore: true, Multi: true, SigstoreKey: key},
		"reference host": {Sigstore: true, ReferenceHost: "registry.redhat.io"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reg := NewMemoryRegistry(t)
			cat := BuildCatalog(t, reg.Host, opts)
			if opts.SigstoreKey != nil && cat.SigstoreKey != opts.SigstoreKey {
				t.Errorf("signed with another key than given")
			}
			refHost := cmp.Or(opts.ReferenceHost, cat.Host)
			c := reg.Client()
			signed := map[digest.Digest]bool{}
			for _, st := range cat.SigTags {
				repo, tag, _ := strings.Cut(st, ":")
				sig := readCosign(t, c, repo, tag)
				want := refHost + "/" + repo + "@" + sig.Digest.String()
				if sig.Digest == cat.Digest {
					want = refHost + "/" + repo + ":" + cat.Tag
				}
				if SigstoreTag(sig.Digest) != tag || sig.Identity != want {
					t.Errorf("%s: signs %s as %s, want %s", st, sig.Digest, sig.Identity, want)
				}
				if !verifyCosign(t, cat.SigstorePublicKey, sig.Payload, sig.Signature) {
					t.Errorf("%s: signature does not verify", st)
				}
				signed[sig.Digest] = true
			}
			if !signed[cat.Digest] {
				t.Error("the catalog is not signed")
			}
			for name, b := range cat.Bundles {
				if !b.Signed || !signed[b.Digest] {
					t.Errorf("bundle %s: Signed %v, signature found %v", name, b.Signed, signed[b.Digest])
				}
			}
			operators := 0
			for _, r := range cat.RelatedImages {
				isOperator := strings.HasSuffix(r.Name, "-operator")
				if r.Signed != isOperator || signed[r.Digest] != isOperator {
					t.Errorf("%s: Signed %v, signature found %v", r.Image, r.Signed, signed[r.Digest])
				}
				if isOperator {
					operators++
				}
			}
			if len(cat.SigTags) != 1+len(cat.Bundles)+operators {
				t.Errorf("%d signatures for the catalog, %d bundles and %d operator images", len(cat.SigTags), len(cat.Bundles), operators)
			}
		})
	}
}

// TestBuildCatalogOdd: the options for odd and hostile catalogs make the
// image they say, and ferry's reader sees in it what Catalog says.
func TestBuildCatalogOdd(t *testing.T) {
	t.Parallel()
	top, topDiff, err := smallLayer([]tarFile{{name: "etc/"}, {name: "etc/motd", data: []byte("patched\n")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a package whited out", func(t *testing.T) {
		t.Parallel()
		reg := NewMemoryRegistry(t)
		cat := BuildCatalog(t, reg.Host, CatalogOptions{WhiteoutPackage: CatalogPackageAurora})
		validModel(t, cat.FBC)
		if slices.Contains(cat.Packages, CatalogPackageAurora) || len(cat.Packages) != 3 || len(cat.BundlesOf(CatalogPackageAurora)) != 0 {
			t.Errorf("packages %v, aurora bundles %v", cat.Packages, cat.BundlesOf(CatalogPackageAurora))
		}
		if _, ok := cat.Files["aurora-operator/catalog.json"]; !ok {
			t.Error("the FBC layer lost aurora's file")
		}
		if !slices.ContainsFunc(cat.Images, func(im ImageInfo) bool { return im.Component == "aurora-operator.v1.0.0" }) {
			t.Error("aurora's bundle images were not pushed")
		}
		files := layerFiles(t, reg.Client(), cat.Repository, cat.Layers[len(cat.Layers)-1])
		if _, ok := files["configs/.wh.aurora-operator"]; !ok || len(cat.Layers) != 4 {
			t.Errorf("top layer holds %v, of %d", slices.Sorted(maps.Keys(files)), len(cat.Layers))
		}
		assertSameFBC(t, readCatalog(t, cat).FBC, cat.FBC)
	})
	t.Run("no label", func(t *testing.T) {
		t.Parallel()
		reg := NewMemoryRegistry(t)
		cat := BuildCatalog(t, reg.Host, CatalogOptions{NoConfigsLabel: true})
		_, err := catalog.Read(t.Context(), ferryClient(t), cat.PullSpec)
		if err == nil || !strings.Contains(err.Error(), "no label "+LabelCatalogConfigs) {
			t.Errorf("read a catalog without its label: %v", err)
		}
	})
	t.Run("a top layer, no cache, another directory", func(t *testing.T) {
		t.Parallel()
		reg := NewMemoryRegistry(t)
		cat := BuildCatalog(t, reg.Host, CatalogOptions{
			TopLayer: &Layer{Data: top, DiffID: topDiff}, NoCache: true, ConfigsDir: "/srv/catalog", Docker: true,
		})
		got := readCatalog(t, cat)
		assertSameFBC(t, got.FBC, cat.FBC)
		if got.ConfigsDir != "/srv/catalog" || got.CacheDir != "" || !slices.Equal(got.Cmd, []string{"serve", "/srv/catalog"}) {
			t.Errorf("configs %s, cache %q, cmd %q", got.ConfigsDir, got.CacheDir, got.Cmd)
		}
		if len(cat.Layers) != 3 || cat.Layers[2] != digest.FromBytes(top) || cat.CacheLayer != "" || cat.MediaType != MediaTypeDockerManifest {
			t.Errorf("layers %v, cache %q, type %s", cat.Layers, cat.CacheLayer, cat.MediaType)
		}
		if _, ok := layerFiles(t, reg.Client(), cat.Repository, cat.ConfigsLayer)["srv/catalog/cygnus-operator/deprecations.yaml"]; !ok {
			t.Error("the FBC is not under /srv/catalog")
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		reg := NewMemoryRegistry(t)
		for _, opts := range []CatalogOptions{
			{WhiteoutPackage: "no-such-operator"},
			{ConfigsDir: "configs"},
			{ConfigsDir: "/configs/../"},
			{ConfigsDir: "/"},
		} {
			if _, err := buildCatalog(t.Context(), reg.Host, opts); err == nil {
				t.Errorf("%+v: built", opts)
			}
		}
	})
}
