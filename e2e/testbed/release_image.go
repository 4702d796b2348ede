package testbed

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/opencontainers/go-digest"
)

// release makes the release image(s), tags them and assembles the Release.
func (b *builder) release(ctx context.Context, st *releaseState) (*Release, error) {
	o := b.opts
	repo := o.ReleaseRepo
	comps := make([]Component, 0, len(st.comps))
	for _, cs := range st.comps {
		c := cs.comp
		c.Signed = slices.ContainsFunc(cs.sigs, func(s *image) bool { return s.info.Signs == c.Digest })
		comps = append(comps, c)
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].Name < comps[j].Name })

	refs, err := imageReferences(o.Version, comps, func(name string) map[string]string {
		return map[string]string{
			"io.openshift.build.commit.id":       commitID(o.Seed, o.Version, name),
			"io.openshift.build.commit.ref":      "",
			"io.openshift.build.source-location": "https://github.com/openshift/" + name,
		}
	})
	if err != nil {
		return nil, err
	}
	meta, err := releaseMetadata(o.Version, o.Previous, o.Multi)
	if err != nil {
		return nil, err
	}
	files := []tarFile{
		{name: "release-manifests/"},
		{name: "release-manifests/0000_00_cluster-version-operator_00_namespace.yaml", data: []byte(cvoNamespace)},
	}
	kubeVirt, bootImages, err := b.kubeVirtContainers(ctx)
	if err != nil {
		return nil, err
	}
	if bootImages != nil {
		files = append(files, tarFile{name: CoreOSBootImagesFile, data: bootImages})
	}
	var policy []byte
	var scopes []string
	if o.SigstorePolicy != "" {
		scopes = imagePolicyScopes(b.host, o)
		policy = ClusterImagePolicyYAML(ImagePolicyName, scopes, b.sigKey.pubPEM)
		files = append(files, tarFile{name: ImagePolicyFile, data: policy})
	}
	files = append(files,
		tarFile{name: "release-manifests/image-references", data: refs},
		tarFile{name: "release-manifests/release-metadata", data: meta})
	topData, topDiff, err := smallLayer(files)
	if err != nil {
		return nil, err
	}
	topLayer := &blob{digest: digest.FromBytes(topData), size: int64(len(topData)), diffID: topDiff, data: topData}

	role := RoleRelease
	if o.Multi {
		role = RoleChild
	}
	var children []*image
	for _, arch := range b.arches {
		if b.share != nil {
			st.lower[arch] = b.share.lower[arch]
		} else {
			bl, err := b.newLayerOf(ctx, repo, "release/"+arch+"/0", b.releaseLayerSize())
			if err != nil {
				return nil, fmt.Errorf("release image: %w", err)
			}
			st.lower[arch] = []*blob{bl}
		}
		layers := append(slices.Clone(st.base[arch]), st.lower[arch]...)
		layers = append(layers, topLayer)
		if l := o.ReleaseTopLayer; l != nil {
			layers = append(layers, &blob{digest: digest.FromBytes(l.Data), size: int64(len(l.Data)), diffID: l.DiffID, data: l.Data})
		}
		im, err := b.newImage(ctx, repo, imageSpec{
			role: role, arch: arch, docker: !o.OCI, layers: layers,
			labels: map[string]string{"io.openshift.release": o.Version},
		})
		if err != nil {
			return nil, fmt.Errorf("release image: %w", err)
		}
		children = append(children, im)
	}
	top := children[0]
	if o.Multi {
		if top, err = b.newIndex(ctx, repo, RoleRelease, "", !o.OCI, children); err != nil {
			return nil, fmt.Errorf("release manifest list: %w", err)
		}
	}
	tag := o.Version + "-" + o.Arch
	// The tag goes last, once everything it points at is in.
	if _, err := b.c.PushManifest(ctx, repo, tag, top.info.MediaType, top.info.Manifest); err != nil {
		return nil, err
	}
	top.info.Tag = tag
	relSigs, err := b.signAll(ctx, repo, b.releaseSigSpecs(repo, tag, top), nil)
	if err != nil {
		return nil, err
	}

	rel := &Release{
		Host: b.host, Version: o.Version, Arch: o.Arch, Repository: repo, Tag: tag,
		PullSpec: b.host + "/" + repo + ":" + tag,
		Digest:   top.info.Digest, MediaType: top.info.MediaType, Manifest: top.info.Manifest,
		Components: comps, Blobs: map[digest.Digest]int64{},
		ImageReferences: refs, ReleaseMetadata: meta, TopLayer: topLayer.digest,
		ImagePolicy: policy, ImagePolicyScopes: scopes, CoreOSBootImages: bootImages, KubeVirt: kubeVirt, SigstoreFaulty: maps.Clone(b.faulty),
		SigstoreKey: b.sigKey, SigstoreOtherKey: b.otherKey,
		state: st,
	}
	if b.sigKey != nil {
		rel.SigstorePublicKey = b.sigKey.PublicKeyPEM()
	}
	collectImages(rel, st, top, relSigs)
	return rel, nil
}

// collectImages fills rel's Images, Blobs, Bytes and SigTags from what was
// pushed: each component (children first) and its signatures, then the
// release image and its signatures, each repository@digest once.
func collectImages(rel *Release, st *releaseState, top *image, relSigs []*image) {
	tags := map[string]string{}
	for _, cs := range st.comps {
		if cs.comp.Tag != "" {
			tags[cs.comp.Repository+"@"+cs.comp.Digest.String()] = cs.comp.Tag
		}
	}
	seen := map[string]bool{}
	var add func(im *image)
	add = func(im *image) {
		for _, c := range im.children {
			add(c)
		}
		key := im.info.Repository + "@" + im.info.Digest.String()
		if seen[key] {
			return
		}
		seen[key] = true
		info := im.info
		if t, ok := tags[key]; ok {
			info.Tag = t
		}
		rel.Images = append(rel.Images, info)
		for _, bl := range im.blobs {
			rel.Blobs[bl.digest] = bl.size
		}
		if info.Role == RoleSigstore {
			rel.SigTags = append(rel.SigTags, info.Repository+":"+info.Tag)
		}
	}
	for _, cs := range st.comps {
		if cs.top != nil {
			add(cs.top)
		}
		for _, s := range cs.sigs {
			add(s)
		}
	}
	add(top)
	for _, s := range relSigs {
		add(s)
	}
	for _, n := range rel.Blobs {
		rel.Bytes += n
	}
}
