package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// catalogLayer is one layer of the catalog image and the history line a
// build would have recorded for it.
type catalogLayer struct {
	blob      *blob
	createdBy string
}

// catalogContent is what every platform image of the catalog shares: the
// layers above the base, and the config's command and labels.
type catalogContent struct {
	upper          []catalogLayer
	configs, cache *blob // cache is nil with NoCache
	entrypoint     []string
	cmd            []string
	labels         map[string]string
}

// catalog builds the FBC, pushes the catalog image(s), tags the catalog,
// signs what is to be signed and assembles the result.
func (cb *catalogBuilder) catalog(ctx context.Context) (*Catalog, error) {
	written, served, files, err := cb.fbc()
	if err != nil {
		return nil, err
	}
	content, err := cb.content(files, written.Packages)
	if err != nil {
		return nil, err
	}
	o := cb.copts
	top, children, layers, err := cb.pushCatalog(ctx, content)
	if err != nil {
		return nil, err
	}
	if err := cb.signCatalog(ctx, top); err != nil {
		return nil, err
	}

	cat := &Catalog{
		Host: cb.host, Repository: o.Repository, Tag: o.Tag, PullSpec: cb.host + "/" + o.Repository + ":" + o.Tag,
		Digest: top.info.Digest, MediaType: top.info.MediaType, Manifest: top.info.Manifest,
		ConfigsDir: o.ConfigsDir, Entrypoint: content.entrypoint, Cmd: content.cmd, Labels: content.labels,
		FBC: served, Files: files, ConfigsLayer: content.configs.digest, Layers: layers,
		Blobs: map[digest.Digest]int64{}, SigstoreKey: cb.sigKey,
	}
	if content.cache != nil {
		cat.CacheLayer = content.cache.digest
	}
	for _, c := range children {
		cat.Platforms = append(cat.Platforms, c.info.Digest)
	}
	if cb.sigKey != nil {
		cat.SigstorePublicKey = cb.sigKey.PublicKeyPEM()
	}
	if err := cb.describe(cat, top); err != nil {
		return nil, err
	}
	return cat, nil
}

// pushCatalog pushes the catalog image of every platform (and their index
// when Multi), then tags the top one. It returns the top image, the
// platform images, and the first platform's layers, base first.
func (cb *catalogBuilder) pushCatalog(ctx context.Context, content *catalogContent) (top *image, children []*image, layers []digest.Digest, err error) {
	o := cb.copts
	for _, arch := range cb.arches {
		im, all, err := cb.catalogImage(ctx, arch, content)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("catalog image %s: %w", arch, err)
		}
		children = append(children, im)
		if layers == nil {
			layers = all
		}
	}
	top = children[0]
	if o.Multi {
		if top, err = cb.newIndex(ctx, o.Repository, RoleCatalog, "", o.Docker, children); err != nil {
			return nil, nil, nil, fmt.Errorf("catalog index: %w", err)
		}
	}
	// The tag goes last, once everything it points at is in.
	if _, err := cb.c.PushManifest(ctx, o.Repository, o.Tag, top.info.MediaType, top.info.Manifest); err != nil {
		return nil, nil, nil, fmt.Errorf("tagging catalog %s:%s: %w", o.Repository, o.Tag, err)
	}
	top.info.Tag = o.Tag
	return top, children, layers, nil
}

// content makes the layers above the base, from the FBC's files (by path
// under the configs directory), and the command and labels.
func (cb *catalogBuilder) content(files map[string][]byte, packages []declcfg.Package) (*catalogContent, error) {
	o := cb.copts
	dir := strings.TrimPrefix(o.ConfigsDir, "/")
	configs, err := newSmallBlob(treeFiles(dir, files))
	if err != nil {
		return nil, fmt.Errorf("configs layer: %w", err)
	}
	c := &catalogContent{
		configs: configs, upper: []catalogLayer{{configs, "ADD catalog/ " + o.ConfigsDir}},
		entrypoint: []string{"/bin/opm"}, cmd: []string{"serve", o.ConfigsDir},
		labels: map[string]string{"com.redhat.index.delivery.version": o.Tag},
	}
	if !o.NoConfigsLabel {
		c.labels[LabelCatalogConfigs] = o.ConfigsDir
	}
	if !o.NoCache {
		c.cmd = append(c.cmd, "--cache-dir="+CatalogCacheDir)
		cacheTar, err := cacheFiles(configs.diffID, packages)
		if err == nil {
			c.cache, err = newSmallBlob(cacheTar)
		}
		if err != nil {
			return nil, fmt.Errorf("cache layer: %w", err)
		}
		c.upper = append(c.upper, catalogLayer{c.cache, `RUN ["/bin/opm" "serve" "` + o.ConfigsDir + `" "--cache-dir=` + CatalogCacheDir + `" "--cache-only"]`})
	}
	if p := o.WhiteoutPackage; p != "" {
		wh, err := newSmallBlob([]tarFile{{name: dir + "/"}, {name: dir + "/.wh." + p, data: []byte{}}})
		if err != nil {
			return nil, fmt.Errorf("whiteout layer: %w", err)
		}
		c.upper = append(c.upper, catalogLayer{wh, "RUN rm -rf " + path.Join(o.ConfigsDir, p)})
	}
	if l := o.TopLayer; l != nil {
		top := &blob{digest: digest.FromBytes(l.Data), size: int64(len(l.Data)), diffID: l.DiffID, data: l.Data}
		c.upper = append(c.upper, catalogLayer{top, "testbed top layer"})
	}
	return c, nil
}

// newSmallBlob makes a small gzip'd layer of files, to push later.
func newSmallBlob(files []tarFile) (*blob, error) {
	data, diffID, err := smallLayer(files)
	if err != nil {
		return nil, err
	}
	return &blob{digest: digest.FromBytes(data), size: int64(len(data)), diffID: diffID, data: data}, nil
}

// catalogImage pushes one platform image of the catalog: arch's base
// layer and the content's, a config with its command and labels, and the
// manifest by digest. It returns the image and its layers, base first.
func (cb *catalogBuilder) catalogImage(ctx context.Context, arch string, content *catalogContent) (*image, []digest.Digest, error) {
	base, err := newSmallBlob(baseFiles(arch))
	if err != nil {
		return nil, nil, fmt.Errorf("base layer: %w", err)
	}
	layers := append([]catalogLayer{{base, "testbed base image: /bin/opm, /bin/grpc_health_probe, /etc"}}, content.upper...)
	cfg := ocispec.Image{
		Created: &epoch, Platform: *platform(arch), RootFS: ocispec.RootFS{Type: "layers"},
		Config: ocispec.ImageConfig{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Entrypoint: content.entrypoint, Cmd: content.cmd, Labels: content.labels,
		},
	}
	var digests []digest.Digest
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.blob.diffID)
		cfg.History = append(cfg.History, ocispec.History{Created: &epoch, CreatedBy: l.createdBy})
		digests = append(digests, l.blob.digest)
	}
	im, err := cb.pushCatalogImage(ctx, arch, cfg, layers)
	return im, digests, err
}

// pushCatalogImage pushes cfg and the layers, then the manifest naming
// them by digest, in the catalog's repository.
func (cb *catalogBuilder) pushCatalogImage(ctx context.Context, arch string, cfg ocispec.Image, layers []catalogLayer) (*image, error) {
	repo := cb.copts.Repository
	config, err := cb.jsonBlob(ctx, repo, cfg)
	if err != nil {
		return nil, err
	}
	mt, cfgMT, layerMT := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip
	if cb.copts.Docker {
		mt, cfgMT, layerMT = MediaTypeDockerManifest, MediaTypeDockerConfig, MediaTypeDockerLayer
	}
	m := ocispec.Manifest{MediaType: mt, Config: ocispec.Descriptor{MediaType: cfgMT, Digest: config.digest, Size: config.size}}
	m.SchemaVersion = 2
	blobs := []*blob{config}
	for _, l := range layers {
		if err := cb.ensureBlob(ctx, repo, l.blob); err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerMT, Digest: l.blob.digest, Size: l.blob.size})
		blobs = append(blobs, l.blob)
	}
	data, d, err := cb.pushByDigest(ctx, repo, mt, m, cb.copts.Docker)
	if err != nil {
		return nil, err
	}
	role := RoleCatalog
	if cb.copts.Multi {
		role = RoleChild
	}
	im := &image{blobs: blobs, info: ImageInfo{
		Role: role, Repository: repo, Digest: d, MediaType: mt, Size: int64(len(data)), Manifest: data, Arch: arch,
	}}
	for _, bl := range blobs {
		im.info.Blobs = append(im.info.Blobs, bl.digest)
	}
	return im, nil
}

// baseFiles stand for the operator-registry base image of arch.
func baseFiles(arch string) []tarFile {
	return []tarFile{
		{name: "bin/"},
		{name: "bin/grpc_health_probe", data: []byte("\x7fELF grpc_health_probe for linux/" + arch + " (test bed)\n")},
		{name: "bin/opm", data: []byte("\x7fELF opm for linux/" + arch + " (test bed)\n")},
		{name: "etc/"},
		{name: "etc/nsswitch.conf", data: []byte("hosts: files dns\n")},
		{name: "etc/os-release", data: []byte("NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"9.4\"\n")},
	}
}

// treeFiles lays files (by path under dir) out as a layer: dir, every
// directory above a file, and the files, in path order.
func treeFiles(dir string, files map[string][]byte) []tarFile {
	dirs := map[string]bool{dir + "/": true}
	for name := range files {
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			dirs[dir+"/"+p+"/"] = true
		}
	}
	var out []tarFile
	for d := range dirs {
		out = append(out, tarFile{name: d})
	}
	for name, data := range files {
		out = append(out, tarFile{name: dir + "/" + name, data: data})
	}
	slices.SortFunc(out, func(a, b tarFile) int { return strings.Compare(a.name, b.name) })
	return out
}

// cacheFiles stand for the cache `opm serve --cache-only` builds: what it
// serves, and the digest of the FBC it was built from, which opm checks
// at start.
func cacheFiles(configsDiffID digest.Digest, packages []declcfg.Package) ([]tarFile, error) {
	names := make([]string, 0, len(packages))
	for _, p := range packages {
		names = append(names, p.Name)
	}
	list, err := json.Marshal(map[string][]string{"packages": names})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(configsDiffID))
	dir := strings.TrimPrefix(CatalogCacheDir, "/")
	return []tarFile{
		{name: dir + "/"},
		{name: dir + "/cache/"},
		{name: dir + "/cache/packages.json", data: append(list, '\n')},
		{name: dir + "/digest", data: []byte(hex.EncodeToString(sum[:8]) + "\n")},
	}, nil
}

// signCatalog signs, under CatalogOptions.Sigstore, the catalog (as its
// tag), every bundle image and every related image the plan signs, each
// in its own repository.
func (cb *catalogBuilder) signCatalog(ctx context.Context, top *image) error {
	if cb.sigKey == nil {
		return nil
	}
	type job struct {
		repo string
		spec sigSpec
	}
	byDigest := func(im *image) job {
		r := im.info.Repository
		return job{r, sigSpec{signs: im.info.Digest, named: im.info.Digest, identity: cb.refHost + "/" + r + "@" + im.info.Digest.String(), key: cb.sigKey}}
	}
	jobs := []job{{top.info.Repository, sigSpec{
		signs: top.info.Digest, named: top.info.Digest, key: cb.sigKey,
		identity: cb.refHost + "/" + top.info.Repository + ":" + top.info.Tag,
	}}}
	for _, name := range slices.Sorted(maps.Keys(cb.bundles)) {
		jobs = append(jobs, byDigest(cb.bundles[name]))
	}
	for _, key := range slices.Sorted(maps.Keys(cb.related)) {
		if cb.relPlans[key].signed {
			jobs = append(jobs, byDigest(cb.related[key]))
		}
	}
	sigs := make([]*image, len(jobs))
	err := cb.parallel(ctx, len(jobs), func(ctx context.Context, i int) error {
		var err error
		sigs[i], err = cb.sign(ctx, jobs[i].repo, jobs[i].spec)
		return err
	})
	cb.sigs = sigs
	return err
}
