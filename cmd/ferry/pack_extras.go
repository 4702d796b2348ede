package main

import (
	"context"
	"fmt"
	"regexp"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/graphdata"
)

// maxBlockedPatterns bounds blockedImages: each is matched against every
// additional, component and catalog image reference.
const maxBlockedPatterns = 256

// extrasFlags are what a disconnected update needs besides releases and
// catalogs: additional images (and patterns that block some), the RHCOS
// KubeVirt container, and the update service's graph-data image.
type extrasFlags struct {
	images         cli.StringSlice
	blocked        cli.StringSlice
	kubeVirt       bool
	graphImage     bool
	graphDataURL   string
	graphBaseImage string
	// fromConfig are the additionalImages of a -f file, used when no
	// --image replaces them.
	fromConfig []configImage
}

// configImage is one additionalImages entry of ferry.yaml.
type configImage struct {
	Name       string `yaml:"name" json:"name"`
	TargetRepo string `yaml:"targetRepo,omitempty" json:"targetRepo,omitempty"`
	TargetTag  string `yaml:"targetTag,omitempty" json:"targetTag,omitempty"`
	// Platforms narrow a list to these os/arch[/variant] (all by default).
	Platforms []string `yaml:"platforms,omitempty" json:"platforms,omitempty"`
}

// platforms parses the entry's platforms.
func (c configImage) platforms() ([]mirror.Platform, error) {
	var out []mirror.Platform
	for _, s := range c.Platforms {
		p, err := mirror.ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (f *extrasFlags) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "image", Usage: "also carry the image `REF` (repeatable; by tag or digest, every platform, with its .sig); " +
			"apply pushes it under its own repository path in the target", Destination: &f.images, Category: "Images"},
		&cli.StringSliceFlag{Name: "block", Usage: "leave out the additional images whose reference matches the regular expression `RE` " +
			"(repeatable); one matching an image a release or catalog needs is an error", Destination: &f.blocked, Category: "Images"},
		&cli.BoolFlag{Name: "kubevirt-container", Usage: "also carry the RHCOS KubeVirt container each release's coreos-bootimages manifest names",
			Destination: &f.kubeVirt, Category: "Images"},
		&cli.BoolFlag{Name: "graph-image", Usage: "also build and carry the update service's graph-data image (OpenShift Update Service)",
			Destination: &f.graphImage, Category: "Update service"},
		&cli.StringFlag{Name: "graph-data-url", Value: graphdata.DefaultURL, Usage: "where to fetch the graph data: an https `URL`, " +
			"or file:// of a tarball or a directory", Destination: &f.graphDataURL, Category: "Update service"},
		&cli.StringFlag{Name: "graph-base-image", Value: mirror.DefaultGraphBaseImage, Usage: "base `IMAGE` of the graph-data image " +
			"(anything with bash and cp)", Destination: &f.graphBaseImage, Category: "Update service"},
	}
}

func (f *extrasFlags) active() bool {
	return len(f.images.Value()) > 0 || len(f.fromConfig) > 0 || f.graphImage
}

// additional are the additional images to carry, validated.
func (f *extrasFlags) additional() ([]mirror.AdditionalImage, error) {
	var out []mirror.AdditionalImage
	for _, ref := range f.images.Value() {
		out = append(out, mirror.AdditionalImage{Ref: ref})
	}
	if len(out) > 0 {
		return out, nil
	}
	for _, c := range f.fromConfig {
		if c.TargetRepo != "" {
			if err := mirror.CheckTargetRepo(c.TargetRepo); err != nil {
				return nil, usageError(fmt.Errorf("additionalImages %s: %w", c.Name, err))
			}
		}
		platforms, err := c.platforms()
		if err != nil {
			return nil, usageError(fmt.Errorf("additionalImages %s: %w", c.Name, err))
		}
		out = append(out, mirror.AdditionalImage{Ref: c.Name, TargetRepo: c.TargetRepo, TargetTag: c.TargetTag, Platforms: platforms})
	}
	return out, nil
}

// blockedPatterns compiles --block.
func (f *extrasFlags) blockedPatterns() ([]*regexp.Regexp, error) {
	if len(f.blocked.Value()) > maxBlockedPatterns {
		return nil, usageError(fmt.Errorf("%d blocked image patterns: at most %d", len(f.blocked.Value()), maxBlockedPatterns))
	}
	var out []*regexp.Regexp
	for _, p := range f.blocked.Value() {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, usageError(fmt.Errorf("--block %q: %w", p, err))
		}
		out = append(out, re)
	}
	return out, nil
}

// configure fills the planner's extras: the images, the patterns, and the
// graph data fetched now (the only network read here).
func (f *extrasFlags) configure(ctx context.Context, env *environment, net *timeoutFlags, arch string, p *mirror.Planner) error {
	var err error
	if p.Images, err = f.additional(); err != nil {
		return err
	}
	if p.Blocked, err = f.blockedPatterns(); err != nil {
		return err
	}
	p.KubeVirt = f.kubeVirt
	if !f.graphImage {
		return nil
	}
	data, err := graphdata.Fetch(ctx, f.graphDataURL, graphdata.FetchOptions{StallTimeout: net.stall, Retry: graphRetry(env), UserAgent: userAgent()})
	if err != nil {
		return withHint(fmt.Errorf("graph data: %w", err))
	}
	env.log.Info("graph data fetched", "source", data.Source, "version", data.Version, "releases", len(data.Versions), "files", len(data.Files))
	p.GraphImage = &mirror.GraphImageOptions{Data: data, Base: f.graphBaseImage, Arch: arch}
	return nil
}

// logExtras says what was carried besides releases and catalogs.
func logExtras(env *environment, plan *mirror.Plan) {
	for _, b := range plan.Blocked {
		env.log.Info("additional image left out by a blocked pattern", "image", b.Ref, "pattern", b.Pattern)
	}
	for _, a := range plan.Additional {
		if a.AlreadyCarried != "" {
			env.log.Info("additional image already carried", "image", a.Ref, "as", a.AlreadyCarried)
		}
		if a.SourceDigest != "" {
			env.log.Warn("additional image narrowed to its platforms: its digest changed, and pulls by the source digest will not find it "+
				"(the ImageDigestMirrorSet cannot serve them); pull it by tag, or by the new digest",
				"image", a.Ref, "platforms", a.Platforms, "source_digest", a.SourceDigest, "digest", a.Digest,
				"pull", "<target>/"+a.Target+"@"+a.Digest.String())
		}
	}
	for _, r := range plan.Releases {
		for _, k := range r.KubeVirt {
			env.log.Info("RHCOS KubeVirt container", "release", k.Release, "arch", k.Arch, "image", k.Ref, "digest", k.Digest)
		}
	}
	if g := plan.Graph; g != nil {
		env.log.Info("graph-data image built", "version", g.Data.Version, "base", g.Base, "digest", g.Digest)
	}
}

// warnMovedTags says which additional images' tags name another image than
// the inventory saw in the mirror (pack.MovedTags): the site may rely on
// the old one, and apply will move the tag.
func warnMovedTags(env *environment, moved []mirror.Additional) {
	for _, a := range moved {
		env.log.Warn("additional image's tag moved since the inventory: apply will point it at the new image",
			"image", a.Ref, "tag", "<target>/"+a.Target+":"+a.TargetTag, "mirror_has", a.MovedFrom, "now", a.Digest)
	}
}
