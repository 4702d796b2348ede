package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/signature"
)

// trustReport is the outcome of checking the chain of trust of every
// release in a bundle: signature -> release digest -> image-references ->
// component digests. Blob contents are bundle.Verify's part.
type trustReport struct {
	Faults []string
	// Unverified names what is accepted without proof (--allow-unsigned).
	Unverified []string
	// Signatures describes each verified signature, for the user.
	Signatures []string
}

func (t *trustReport) fault(format string, args ...any) {
	t.Faults = append(t.Faults, fmt.Sprintf(format, args...))
}

// checkTrust proves every release of the bundle. keyring may be nil only
// when every release is unsigned and allowUnsigned is set.
func checkTrust(ctx context.Context, r *bundle.Reader, keyring *signature.Keyring, allowUnsigned bool) *trustReport {
	rep := &trustReport{}
	idx := r.Index()
	images := map[digest.Digest]bundle.Image{}
	for _, img := range idx.Images {
		images[img.Digest] = img
	}
	for _, rel := range idx.Releases {
		if ctx.Err() != nil {
			rep.fault("interrupted: %v", ctx.Err())
			return rep
		}
		name := rel.Tag + " (" + rel.Digest.String() + ")"
		checkSignatures(r, rel, name, keyring, allowUnsigned, rep)
		checkComponents(ctx, r, rel, name, images, rep)
	}
	return rep
}

// checkSignatures: every signature file verifies for the release digest,
// and the ConfigMap carries exactly those files.
func checkSignatures(r *bundle.Reader, rel bundle.Release, name string, keyring *signature.Keyring, allowUnsigned bool, rep *trustReport) {
	if rel.Unsigned {
		if !allowUnsigned {
			rep.fault("release %s is unsigned (packed with --allow-unsigned); pass --allow-unsigned to accept it", name)
			return
		}
		rep.Unverified = append(rep.Unverified, "release "+name+" has no verified signature")
		return
	}
	if keyring == nil {
		rep.fault("release %s: no keyring to verify its signatures", name)
		return
	}
	var sigs [][]byte
	for _, s := range rel.Signatures {
		data, err := readBundleFile(r, s.File, signature.MaxSignatureSize)
		if err != nil {
			rep.fault("release %s: %v", name, err)
			continue
		}
		v, err := signature.Verify(data, keyring, rel.Digest)
		if err != nil {
			rep.fault("release %s: %s: %v", name, s.File, err)
			continue
		}
		sigs = append(sigs, data)
		rep.Signatures = append(rep.Signatures, fmt.Sprintf("%s: %s signed by %s (%s)", rel.Tag, s.File, v.Fingerprint, v.Identity))
	}
	if len(rel.Signatures) == 0 {
		rep.fault("release %s is marked signed but lists no signature", name)
	}
	checkConfigMap(r, rel, name, sigs, rep)
}

func checkConfigMap(r *bundle.Reader, rel bundle.Release, name string, sigs [][]byte, rep *trustReport) {
	data, err := readBundleFile(r, rel.ConfigMap, manifests.MaxSignatureConfigMapSize)
	if err != nil {
		rep.fault("release %s: %v", name, err)
		return
	}
	cm, err := manifests.ParseSignatureConfigMap(data)
	if err != nil {
		rep.fault("release %s: %s: %v", name, rel.ConfigMap, err)
		return
	}
	if cm.Digest != rel.Digest {
		rep.fault("release %s: %s is for digest %s", name, rel.ConfigMap, cm.Digest)
	}
	if len(sigs) != len(rel.Signatures) {
		return // a signature already failed; comparing would only repeat it
	}
	if !slices.EqualFunc(cm.Signatures, sigs, bytes.Equal) {
		rep.fault("release %s: %s does not hold exactly the bundle's signature files", name, rel.ConfigMap)
	}
}

// checkComponents reads image-references out of the release image's own
// layers in the bundle and requires it to name exactly the components the
// index lists, each present in the bundle.
func checkComponents(ctx context.Context, r *bundle.Reader, rel bundle.Release, name string, images map[digest.Digest]bundle.Image, rep *trustReport) {
	relImg, ok := images[rel.Digest]
	if !ok {
		rep.fault("release %s: its image is not in the bundle", name)
		return
	}
	instances := []digest.Digest{rel.Digest}
	if len(relImg.Children) > 0 {
		instances = relImg.Children
	}
	want := map[string]string{}
	for _, c := range rel.Components {
		want[c.Name] = c.Image
	}
	for _, inst := range instances {
		refs, err := readImageReferences(ctx, r, images[inst])
		if err != nil {
			rep.fault("release %s: image %s: %v", name, inst, err)
			continue
		}
		if refs.Version != rel.Version {
			rep.fault("release %s: image-references says version %s, the index %s", name, refs.Version, rel.Version)
		}
		got := map[string]string{}
		for _, c := range refs.Components {
			got[c.Name] = c.Image
			if want[c.Name] != c.Image {
				rep.fault("release %s: image-references names %s = %s, the index %q", name, c.Name, c.Image, want[c.Name])
			}
			if _, ok := images[c.Digest]; !ok {
				rep.fault("release %s: component %s (%s) is not in the bundle", name, c.Name, c.Image)
			}
		}
		for n, img := range want {
			if _, ok := got[n]; !ok {
				rep.fault("release %s: the index lists component %s (%s), which image-references does not name", name, n, img)
			}
		}
	}
}

// readImageReferences reads release-manifests/ from an image's layers as
// they sit in the bundle.
func readImageReferences(ctx context.Context, r *bundle.Reader, img bundle.Image) (*release.ImageReferences, error) {
	data, err := r.ReadImageManifest(img.Digest)
	if err != nil {
		return nil, err
	}
	m, err := manifest.FromBlob(data, img.MediaType)
	if err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	var openers []release.LayerOpener
	for _, l := range m.LayerInfos() {
		openers = append(openers, func(context.Context) (io.ReadCloser, error) {
			sr, _, err := r.Blob(l.Digest)
			if err != nil {
				return nil, err
			}
			return io.NopCloser(sr), nil
		})
	}
	files, err := release.ReadFiles(ctx, openers)
	if err != nil {
		return nil, err
	}
	return release.ParseImageReferences(files.ImageReferences)
}

// readBundleFile reads a small file of the bundle, refusing more than limit.
func readBundleFile(r *bundle.Reader, name string, limit int64) ([]byte, error) {
	sr, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	if sr.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", name, sr.Size(), limit)
	}
	return io.ReadAll(sr)
}
