package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// checker runs the checks of one Check.
type checker struct {
	policy   *signature.Policy
	policies []sigstore.Policy
	node     *nodeConfig
	opts     Options
}

// instance is one manifest a node checks: the image itself (digest nil)
// or one image of its manifest list.
type instance struct {
	digest *digest.Digest
	label  string // names it in reasons
}

// check fills r, the image through its mirror, as a node pulling through
// route would decide.
func (c *checker) check(ctx context.Context, r *Result, route int) {
	ref, err := docker.ParseReference("//" + r.Image.String())
	if err != nil {
		c.fail(r, fmt.Errorf("image %s: %w", r.Image, err))
		return
	}
	src, err := c.open(ctx, ref, route, r)
	if errors.Is(err, registry.ErrNotFound) {
		r.Status, r.Reason = Absent, fmt.Sprintf("%s@%s is not in the mirror", r.Mirror, r.Image.Digest)
		return
	}
	if err != nil {
		c.fail(r, err)
		return
	}
	defer src.Close()
	instances, err := c.instances(ctx, src, r)
	if err != nil {
		c.fail(r, err)
		return
	}
	var reasons []string
	for _, inst := range instances {
		reason, err := c.admit(ctx, src, inst, r)
		if err != nil {
			c.fail(r, err)
			return
		}
		if reason != "" {
			d := r.Image.Digest
			if inst.digest != nil {
				d = *inst.digest
			}
			r.Refused = append(r.Refused, d)
			if len(instances) > 1 {
				reason = inst.label + ": " + reason
			}
			reasons = append(reasons, reason)
		}
	}
	switch unprovable := unprovableIDs(sigstore.Applicable(c.policies, r.Image.Source, r.Image.Digest)); {
	case len(reasons) > 0:
		r.Status, r.Reason = Refused, strings.Join(reasons, "; ")
	case len(unprovable) > 0:
		r.Status, r.Reason = Unprovable, unprovableReason(unprovable)
	default:
		r.Status = Allowed
	}
}

func (c *checker) fail(r *Result, err error) {
	r.Status, r.Reason, r.Err = Failed, err.Error(), err
}

// do runs one read of the mirror under the retry policy and time bounds,
// its error classified.
func (c *checker) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	ro := c.opts.Registry
	return registry.Do(ctx, ro.Retry, op, func(ctx context.Context) error {
		return ro.Bounded(ctx, op, func(ctx context.Context) error {
			if err := fn(ctx); err != nil {
				return registry.Classify(fmt.Errorf("%s: %w", op, err))
			}
			return nil
		})
	})
}

// open reads the image's manifest from the mirror, the one place route
// sends its source.
func (c *checker) open(ctx context.Context, ref types.ImageReference, route int, r *Result) (types.ImageSource, error) {
	sys := c.node.systemContext(route)
	var src types.ImageSource
	err := c.do(ctx, "reading "+r.Image.String()+" through mirror "+r.Mirror, func(ctx context.Context) error {
		s, err := ref.NewImageSource(ctx, sys)
		if err != nil {
			return err
		}
		src = s
		return nil
	})
	return src, err
}

// instances are the manifests a node checks: the image, and for a
// manifest list every image it names.
func (c *checker) instances(ctx context.Context, src types.ImageSource, r *Result) ([]instance, error) {
	top := []instance{{label: r.Image.Digest.String()}}
	var (
		data      []byte
		mediaType string
	)
	err := c.do(ctx, "reading the manifest of "+r.Image.String()+" from mirror "+r.Mirror, func(ctx context.Context) error {
		var err error
		data, mediaType, err = image.UnparsedInstance(src, nil).Manifest(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !manifest.MIMETypeIsMultiImage(mediaType) {
		return top, nil
	}
	list, err := manifest.ListFromBlob(data, mediaType)
	if err != nil {
		return nil, fmt.Errorf("manifest list %s in mirror %s: %w", r.Image.Digest, r.Mirror, err)
	}
	digests := list.Instances()
	if len(digests) > MaxInstances {
		return nil, fmt.Errorf("manifest list %s in mirror %s names %d images, more than the %d checked (admission.MaxInstances)",
			r.Image.Digest, r.Mirror, len(digests), MaxInstances)
	}
	top[0].label += " (the manifest list)"
	for _, d := range digests {
		label := "image " + d.String() + " of the list"
		if info, err := list.Instance(d); err == nil && info.ReadOnly.Platform != nil {
			label += " (" + info.ReadOnly.Platform.OS + "/" + info.ReadOnly.Platform.Architecture + ")"
		}
		top = append(top, instance{digest: &d, label: label})
	}
	return top, nil
}

// admit asks the policy engine whether a node runs inst: "" when it does,
// else the engine's reason. The manifest and signatures are read first,
// under the retry policy and time bounds; the engine then judges from
// what the image holds cached, so a refusal is never a network failure.
func (c *checker) admit(ctx context.Context, src types.ImageSource, inst instance, r *Result) (string, error) {
	unparsed := image.UnparsedInstance(src, inst.digest)
	op := "reading the signatures of " + inst.label + " from mirror " + r.Mirror
	signatures := 0
	err := c.do(ctx, op, func(ctx context.Context) error {
		if _, _, err := unparsed.Manifest(ctx); err != nil {
			return err
		}
		// Every attachment, of any format, as the engine will see them.
		sigs, err := unparsed.UntrustedSignatures(ctx)
		signatures = len(sigs)
		return err
	})
	if err != nil {
		return "", err
	}
	pc, err := signature.NewPolicyContext(c.policy)
	if err != nil {
		return "", fmt.Errorf("policy engine: %w", err)
	}
	defer func() { _ = pc.Destroy() }()
	var (
		allowed bool
		refusal error
	)
	// An image without signatures has none cached, and the engine reads
	// the mirror again to find none: bounded like every other read.
	err = c.opts.Registry.Bounded(ctx, op, func(ctx context.Context) error {
		allowed, refusal = pc.IsRunningImageAllowed(ctx, unparsed)
		if !allowed && ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case allowed:
		return "", nil
	case refusal == nil:
		return "refused by the policy", nil
	}
	if _, judged := errors.AsType[signature.PolicyRequirementError](refusal); !judged && signatures == 0 {
		// Reading the signatures again failed: not a judgement.
		return "", registry.Classify(fmt.Errorf("%s: %w", op, refusal))
	}
	return refusal.Error(), nil
}
