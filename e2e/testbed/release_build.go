package testbed

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// blob is a config or layer and how to make it again.
type blob struct {
	digest digest.Digest
	size   int64
	diffID digest.Digest // layers: the digest of the uncompressed tar
	data   []byte        // small blobs
	gen    func(io.Writer) error
}

// image is a pushed manifest and what it needs.
type image struct {
	info     ImageInfo
	blobs    []*blob
	children []*image
	sig      *sigSpec // how a signature image was made
}

// releaseState is what a later release needs to share with this one.
type releaseState struct {
	base  map[string][]*blob // per GOARCH
	lower map[string][]*blob // the release image's own random layers, per GOARCH
	comps []*componentState
	// sigKey and otherKey signed the release, for a later one to sign on.
	sigKey, otherKey *SigstoreKey
}

type componentState struct {
	comp Component
	top  *image
	sigs []*image
}

type flight struct {
	done chan struct{}
	err  error
}

type builder struct {
	c      *Client
	host   string
	opts   ReleaseOptions
	arches []string // GOARCH
	share  *releaseState
	// sigKey signs (nil: the release is unsigned); otherKey makes the
	// OtherKey faults' signatures.
	sigKey, otherKey *SigstoreKey
	faults           map[string]string // component name -> SigstoreFault*

	mu      sync.Mutex
	flights map[string]*flight       // "repo@digest" -> its push
	homes   map[digest.Digest]string // a repository on this host holding the blob
	faulty  map[digest.Digest]string // a manifest a verifier must refuse -> its fault
}

// componentNames are real OpenShift component tags, used in order; more
// components than these are named component-NNN.
var componentNames = []string{
	"agent-installer-api-server", "aws-ebs-csi-driver", "baremetal-installer", "cli",
	"cli-artifacts", "cluster-authentication-operator", "cluster-autoscaler",
	"cluster-bootstrap", "cluster-config-operator", "cluster-dns-operator",
	"cluster-etcd-operator", "cluster-ingress-operator", "cluster-kube-apiserver-operator",
	"cluster-monitoring-operator", "cluster-network-operator", "cluster-node-tuning-operator",
	"cluster-version-operator", "console", "console-operator", "coredns", "etcd",
	"haproxy-router", "hyperkube", "installer", "keepalived-ipfailover", "kube-proxy",
	"machine-config-operator", "multus-cni", "must-gather", "oauth-server",
	"openshift-apiserver", "ovn-kubernetes", "pod", "prometheus", "rhel-coreos", "tests", "tools",
}

func componentName(i int) string {
	if i < len(componentNames) {
		return componentNames[i]
	}
	return fmt.Sprintf("component-%03d", i)
}

func buildRelease(ctx context.Context, host string, opts ReleaseOptions) (*Release, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	b := &builder{
		c: NewClient(host), host: host, opts: opts,
		flights: map[string]*flight{}, homes: map[digest.Digest]string{},
		faults: opts.SigstoreFaults.byComponent(), faulty: map[digest.Digest]string{},
	}
	arches := []string{opts.Arch}
	if opts.Multi {
		arches = opts.Arches
	}
	for _, a := range arches {
		g, err := goArch(a)
		if err != nil {
			return nil, err
		}
		b.arches = append(b.arches, g)
	}
	if p := opts.ShareWith; p != nil {
		if p.state == nil {
			return nil, fmt.Errorf("ShareWith: release %s was not made by BuildRelease", p.Version)
		}
		for _, a := range b.arches {
			if _, ok := p.state.base[a]; !ok {
				return nil, fmt.Errorf("ShareWith: release %s has no %s images", p.Version, a)
			}
		}
		if (p.Arch == "multi") != opts.Multi {
			return nil, fmt.Errorf("ShareWith: release %s is %s, this one multi=%t", p.Version, p.Arch, opts.Multi)
		}
		b.share = p.state
	}
	if opts.Sigstore {
		if err := b.sigstoreKeys(); err != nil {
			return nil, err
		}
	}

	st := &releaseState{base: map[string][]*blob{}, lower: map[string][]*blob{}, sigKey: b.sigKey, otherKey: b.otherKey}
	if err := b.baseLayers(ctx, st); err != nil {
		return nil, fmt.Errorf("base layers: %w", err)
	}
	comps, err := b.components(ctx, st)
	if err != nil {
		return nil, err
	}
	st.comps = comps
	return b.release(ctx, st)
}

// parallel runs f(0..n-1) with the builder's concurrency; the first error
// cancels the context the others see.
func (b *builder) parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(b.opts.Concurrency)
	for i := range n {
		g.Go(func() error { return f(ctx, i) })
	}
	return g.Wait()
}

// baseLayers makes (or takes from ShareWith) each arch's shared base layers
// and puts them in every repository.
func (b *builder) baseLayers(ctx context.Context, st *releaseState) error {
	type job struct {
		arch string
		n    int
	}
	var jobs []job
	for _, a := range b.arches {
		if b.share != nil {
			st.base[a] = b.share.base[a]
			continue
		}
		st.base[a] = make([]*blob, b.opts.SharedBaseLayers)
		for n := range b.opts.SharedBaseLayers {
			jobs = append(jobs, job{a, n})
		}
	}
	err := b.parallel(ctx, len(jobs), func(ctx context.Context, i int) error {
		j := jobs[i]
		bl, err := b.newLayerOf(ctx, b.opts.Repos[0], fmt.Sprintf("base/%s/%d", j.arch, j.n), b.baseLayerSize(j.n))
		st.base[j.arch][j.n] = bl // distinct slots: no lock needed
		return err
	})
	if err != nil {
		return err
	}
	type put struct {
		repo string
		bl   *blob
	}
	var puts []put
	for _, repo := range append(slices.Clone(b.opts.Repos), b.opts.ReleaseRepo) {
		for _, a := range b.arches {
			for _, bl := range st.base[a] {
				puts = append(puts, put{repo, bl})
			}
		}
	}
	return b.parallel(ctx, len(puts), func(ctx context.Context, i int) error {
		return b.ensureBlob(ctx, puts[i].repo, puts[i].bl)
	})
}

// components builds (or reuses) every component, in parallel.
func (b *builder) components(ctx context.Context, st *releaseState) ([]*componentState, error) {
	out := make([]*componentState, b.opts.Components)
	err := b.parallel(ctx, len(out), func(ctx context.Context, i int) error {
		cs, err := b.component(ctx, st, i)
		if err != nil {
			return fmt.Errorf("component %s: %w", componentName(i), err)
		}
		out[i] = cs
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b.opts.TagReference {
		cs := out[min(1, len(out)-1)]
		tag := "testbed-" + cs.comp.Name
		if _, err := b.c.PushManifest(ctx, cs.comp.Repository, tag, cs.top.info.MediaType, cs.top.info.Manifest); err != nil {
			return nil, err
		}
		cs.comp.Tag = tag
		cs.comp.Image = b.host + "/" + cs.comp.Repository + ":" + tag
	}
	if b.opts.MissingComponent {
		seed := seedFor(b.opts.Seed, b.opts.Version, "missing-component")
		d := digest.FromBytes(seed[:])
		repo := b.opts.Repos[0]
		out = append(out, &componentState{comp: Component{
			Name: "missing-component", Repository: repo, Digest: d,
			MediaType: MediaTypeDockerManifest, Image: b.host + "/" + repo + "@" + d.String(), Missing: true,
		}})
	}
	return out, nil
}

func (b *builder) component(ctx context.Context, st *releaseState, i int) (*componentState, error) {
	name := componentName(i)
	if b.share != nil && i < len(b.share.comps) && i%4 != 3 && b.share.comps[i].top != nil {
		// Unchanged since the earlier release: same images, and the same
		// signatures where they are what this release would make.
		prev := b.share.comps[i]
		if _, ok := b.faults[name]; ok {
			return nil, fmt.Errorf("SigstoreFaults: component %s is lent unchanged by release %s (ShareWith): fault one that changes (every fourth)", name, b.opts.ShareWith.Version)
		}
		if err := b.ensureImage(ctx, prev.top); err != nil {
			return nil, err
		}
		c := prev.comp
		sigs, err := b.signAll(ctx, c.Repository, b.componentSigSpecs(name, c.Repository, i, prev.top), prev.sigs)
		if err != nil {
			return nil, err
		}
		c.Tag = ""
		c.Image = b.host + "/" + c.Repository + "@" + c.Digest.String()
		return &componentState{comp: c, top: prev.top, sigs: sigs}, nil
	}

	repo := b.opts.Repos[i%len(b.opts.Repos)]
	docker := i%3 != 1 // one component in three is OCI
	labels := map[string]string{
		"io.openshift.build.commit.id":       commitID(b.opts.Seed, b.opts.Version, name),
		"io.openshift.build.source-location": "https://github.com/openshift/" + name,
		"name":                               "openshift/ose-" + name,
	}
	plan := b.componentPlan(st, i)
	role := RoleComponent
	if plan.index {
		role = RoleChild
	}
	var children []*image
	for _, arch := range plan.arches {
		layers := plan.base(arch)
		for j, size := range plan.own {
			bl, err := b.newLayerOf(ctx, repo, fmt.Sprintf("comp/%s/%s/%d", name, arch, j), size)
			if err != nil {
				return nil, err
			}
			layers = append(layers, bl)
		}
		im, err := b.newImage(ctx, repo, imageSpec{role: role, component: name, arch: arch, docker: docker, labels: labels, layers: layers})
		if err != nil {
			return nil, err
		}
		children = append(children, im)
	}
	top := children[0]
	if plan.index {
		var err error
		if top, err = b.newIndex(ctx, repo, RoleComponent, name, docker, children); err != nil {
			return nil, err
		}
	}
	cs := &componentState{top: top, comp: Component{
		Name: name, Repository: repo, Digest: top.info.Digest, MediaType: top.info.MediaType,
		Image: b.host + "/" + repo + "@" + top.info.Digest.String(),
	}}
	var err error
	if cs.sigs, err = b.signAll(ctx, repo, b.componentSigSpecs(name, repo, i, top), nil); err != nil {
		return nil, err
	}
	return cs, nil
}

func commitID(seed int64, version, name string) string {
	s := seedFor(seed, version, "commit", name)
	return hex.EncodeToString(s[:20])
}
