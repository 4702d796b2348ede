package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/ferryhq/ferry/internal/regularfile"
	"github.com/ferryhq/ferry/mirror"
	"github.com/ferryhq/ferry/mirror/catalog"
	"github.com/ferryhq/ferry/mirror/release"
	"github.com/ferryhq/ferry/mirror/sigstore"
)

// The declarative form of a pack: ferry.yaml.
const (
	configAPIVersion = "ferry/v1alpha1"
	configKind       = "Bundle"
	// maxConfigSize caps a config file; a real one is a few hundred bytes.
	maxConfigSize = 1 << 20
)

// packConfig is ferry.yaml. Every field mirrors a pack flag; a flag given
// on the command line wins over the file.
type packConfig struct {
	APIVersion      string          `yaml:"apiVersion" json:"apiVersion"`
	Kind            string          `yaml:"kind" json:"kind"`
	Releases        []configRelease `yaml:"releases,omitempty" json:"releases,omitempty"`
	Channels        []configChannel `yaml:"channels,omitempty" json:"channels,omitempty"`
	Output          string          `yaml:"output,omitempty" json:"output,omitempty"`
	VolumeSize      string          `yaml:"volumeSize,omitempty" json:"volumeSize,omitempty"`
	Parallel        int             `yaml:"parallel,omitempty" json:"parallel,omitempty"`
	Keyrings        []string        `yaml:"keyrings,omitempty" json:"keyrings,omitempty"`
	SignatureStores []string        `yaml:"signatureStores,omitempty" json:"signatureStores,omitempty"`
	AllowUnsigned   bool            `yaml:"allowUnsigned,omitempty" json:"allowUnsigned,omitempty"`
	BetaKey         bool            `yaml:"betaKey,omitempty" json:"betaKey,omitempty"` // --beta-key
	Since           string          `yaml:"since,omitempty" json:"since,omitempty"`
	CacheDir        string          `yaml:"cacheDir,omitempty" json:"cacheDir,omitempty"`
	// SignKey and SignKeyPassphraseFile are --sign-key and
	// --sign-key-passphrase-file: paths, never the secrets themselves.
	SignKey               string `yaml:"signKey,omitempty" json:"signKey,omitempty"`
	SignKeyPassphraseFile string `yaml:"signKeyPassphraseFile,omitempty" json:"signKeyPassphraseFile,omitempty"`
	// Timeout and StallTimeout are --timeout and --stall-timeout, as Go
	// durations ("1m", "90s").
	Timeout      string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	StallTimeout string `yaml:"stallTimeout,omitempty" json:"stallTimeout,omitempty"`
	// Sigstore is --sigstore: required, best-effort or off.
	Sigstore string `yaml:"sigstore,omitempty" json:"sigstore,omitempty"`
	// Operators are the operator catalogs to carry (--catalog, --package),
	// with SkipDependencies (--skip-dependencies) and InstalledOperators
	// (--installed).
	Operators          []catalog.Selection `yaml:"operators,omitempty" json:"operators,omitempty"`
	SkipDependencies   bool                `yaml:"skipDependencies,omitempty" json:"skipDependencies,omitempty"`
	InstalledOperators string              `yaml:"installedOperators,omitempty" json:"installedOperators,omitempty"`
	// ImageSignatureStores are --image-signature-store HOST=URL.
	ImageSignatureStores []string `yaml:"imageSignatureStores,omitempty" json:"imageSignatureStores,omitempty"`
	// AdditionalImages (--image), BlockedImages (--block),
	// KubeVirtContainer (--kubevirt-container); GraphImage (--graph-image,
	// or graph: true on a channel), GraphDataURL and GraphBaseImage.
	AdditionalImages  []configImage `yaml:"additionalImages,omitempty" json:"additionalImages,omitempty"`
	BlockedImages     []string      `yaml:"blockedImages,omitempty" json:"blockedImages,omitempty"`
	KubeVirtContainer bool          `yaml:"kubeVirtContainer,omitempty" json:"kubeVirtContainer,omitempty"`
	GraphImage        bool          `yaml:"graphImage,omitempty" json:"graphImage,omitempty"`
	GraphDataURL      string        `yaml:"graphDataURL,omitempty" json:"graphDataURL,omitempty"`
	GraphBaseImage    string        `yaml:"graphBaseImage,omitempty" json:"graphBaseImage,omitempty"`
}

// configRelease is one release: a pull spec, or a version and an arch.
type configRelease struct {
	PullSpec string `yaml:"pullSpec,omitempty" json:"pullSpec,omitempty"`
	Version  string `yaml:"version,omitempty" json:"version,omitempty"`
	Arch     string `yaml:"arch,omitempty" json:"arch,omitempty"`
}

// configChannel picks releases from the update graph.
type configChannel struct {
	Name        string `yaml:"name" json:"name"`
	Arch        string `yaml:"arch,omitempty" json:"arch,omitempty"`
	From        string `yaml:"from,omitempty" json:"from,omitempty"`
	To          string `yaml:"to,omitempty" json:"to,omitempty"`
	Min         string `yaml:"min,omitempty" json:"min,omitempty"`
	Max         string `yaml:"max,omitempty" json:"max,omitempty"`
	AcceptRisks bool   `yaml:"acceptRisks,omitempty" json:"acceptRisks,omitempty"`
	// Graph builds the update service's graph-data image (--graph-image).
	Graph    bool   `yaml:"graph,omitempty" json:"graph,omitempty"`
	GraphURL string `yaml:"graphURL,omitempty" json:"graphURL,omitempty"`
}

// loadPackConfig reads and strictly decodes a config file. Errors name the
// file, the line and the key.
func loadPackConfig(path string) (*packConfig, error) {
	f, err := regularfile.Open(path, "a ferry.yaml file")
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, maxConfigSize)
	}
	return parsePackConfig(path, data)
}

func parsePackConfig(path string, data []byte) (*packConfig, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	keys := keyLines(&root)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cfg packConfig
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, explainYAMLError(path, err, keys)
	}
	if cfg.APIVersion != configAPIVersion || cfg.Kind != configKind {
		return nil, fmt.Errorf("%s:%d: apiVersion %q, kind %q: want apiVersion %s, kind %s",
			path, keys.lineOf("apiVersion"), cfg.APIVersion, cfg.Kind, configAPIVersion, configKind)
	}
	if len(cfg.Channels) > 1 {
		return nil, fmt.Errorf("%s:%d: channels: one channel per bundle (pack each channel into its own bundle)", path, keys.lineOf("channels"))
	}
	for i, r := range cfg.Releases {
		if (r.PullSpec == "") == (r.Version == "") {
			return nil, fmt.Errorf("%s: releases[%d]: give pullSpec or version (with arch), not both or neither", path, i)
		}
	}
	for i, sel := range cfg.Operators {
		if err := sel.Validate(); err != nil {
			return nil, fmt.Errorf("%s: operators[%d] (%s): %w", path, i, sel.Catalog, err)
		}
	}
	for _, b := range cfg.BlockedImages {
		if _, err := regexp.Compile(b); err != nil {
			return nil, fmt.Errorf("%s:%d: blockedImages: %q: %w", path, keys.lineOf("blockedImages"), b, err)
		}
	}
	for _, a := range cfg.AdditionalImages {
		if _, err := a.platforms(); err != nil {
			return nil, fmt.Errorf("%s:%d: additionalImages %s: platforms: %w", path, keys.lineOf("platforms"), a.Name, err)
		}
		if a.TargetRepo == "" {
			continue
		}
		if err := mirror.CheckTargetRepo(a.TargetRepo); err != nil {
			return nil, fmt.Errorf("%s:%d: additionalImages %s: %w", path, keys.lineOf("targetRepo"), a.Name, err)
		}
	}
	if _, err := sigstore.ParseMode(cfg.Sigstore); err != nil {
		return nil, fmt.Errorf("%s:%d: sigstore: %w", path, keys.lineOf("sigstore"), err)
	}
	for key, v := range map[string]string{"timeout": cfg.Timeout, "stallTimeout": cfg.StallTimeout} {
		if d, err := time.ParseDuration(v); v != "" && (err != nil || d <= 0) {
			return nil, fmt.Errorf("%s:%d: %s: %q is not a positive duration such as 90s or 2m", path, keys.lineOf(key), key, v)
		}
	}
	return &cfg, nil
}

// lineKeys maps each line of a YAML document to the key written there.
type lineKeys map[int]string

func keyLines(n *yaml.Node) lineKeys {
	keys := lineKeys{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				keys[n.Content[i].Line] = n.Content[i].Value
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return keys
}

func (k lineKeys) lineOf(key string) int {
	for line, name := range k {
		if name == key {
			return line
		}
	}
	return 1
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// explainYAMLError turns yaml.v3's messages into "file:line: key: problem".
func explainYAMLError(path string, err error, keys lineKeys) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var msgs []string
	for _, e := range typeErr.Errors {
		m := yamlLine.FindStringSubmatch(e)
		if m == nil {
			msgs = append(msgs, path+": "+e)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		problem := m[2]
		if field, ok := strings.CutPrefix(problem, "field "); ok {
			if name, _, ok := strings.Cut(field, " not found"); ok {
				msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q (see `ferry pack --print-config` for the keys)", path, line, name))
				continue
			}
		}
		msgs = append(msgs, fmt.Sprintf("%s:%d: %s: %s", path, line, keys[line], problem))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// applyConfig fills every option whose flag was not given from cfg.
func (o *packOptions) applyConfig(c *cli.Context, cfg *packConfig) {
	setString := func(flag string, dst *string, v string) {
		if !c.IsSet(flag) && v != "" {
			*dst = v
		}
	}
	setString("output", &o.output, cfg.Output)
	setString("volume-size", &o.volumeSize, cfg.VolumeSize)
	setString("since", &o.since, cfg.Since)
	setString("cache-dir", &o.cacheDir, cfg.CacheDir)
	setString("sign-key", &o.sign.keyFile, cfg.SignKey)
	setString("sign-key-passphrase-file", &o.sign.passphraseFile, cfg.SignKeyPassphraseFile)
	setString("sigstore", &o.sigstore.mode, cfg.Sigstore)
	setString("installed", &o.operators.installed, cfg.InstalledOperators)
	if !c.IsSet("skip-dependencies") && cfg.SkipDependencies {
		o.operators.skipDependencies = true
	}
	if !c.IsSet("catalog") {
		o.operators.fromConfig = cfg.Operators
	}
	if !c.IsSet("image-signature-store") {
		for _, st := range cfg.ImageSignatureStores {
			_ = o.operators.signatureStores.Set(st)
		}
	}
	if !c.IsSet("image") {
		o.extras.fromConfig = cfg.AdditionalImages
	}
	if !c.IsSet("block") {
		for _, b := range cfg.BlockedImages {
			_ = o.extras.blocked.Set(b)
		}
	}
	setString("graph-data-url", &o.extras.graphDataURL, cfg.GraphDataURL)
	setString("graph-base-image", &o.extras.graphBaseImage, cfg.GraphBaseImage)
	if !c.IsSet("kubevirt-container") && cfg.KubeVirtContainer {
		o.extras.kubeVirt = true
	}
	if !c.IsSet("graph-image") && (cfg.GraphImage || (len(cfg.Channels) == 1 && cfg.Channels[0].Graph)) {
		o.extras.graphImage = true
	}
	setDuration := func(flag string, dst *time.Duration, v string) {
		if d, err := time.ParseDuration(v); !c.IsSet(flag) && err == nil { // checked by parsePackConfig
			*dst = d
		}
	}
	setDuration("timeout", &o.registry.net.timeout, cfg.Timeout)
	setDuration("stall-timeout", &o.registry.net.stall, cfg.StallTimeout)
	if !c.IsSet("parallel") && cfg.Parallel > 0 {
		o.parallel = cfg.Parallel
	}
	if !c.IsSet("allow-unsigned") && cfg.AllowUnsigned {
		o.allowUnsigned = true
	}
	if !c.IsSet("beta-key") && cfg.BetaKey {
		o.trust.betaKey = true
	}
	if !c.IsSet("keyring") {
		for _, k := range cfg.Keyrings {
			_ = o.trust.keyrings.Set(k)
		}
	}
	if !c.IsSet("signature-store") {
		for _, s := range cfg.SignatureStores {
			_ = o.trust.stores.Set(s)
		}
	}
	if len(o.releases) == 0 && !c.IsSet("channel") {
		o.configReleases = append(o.configReleases, cfg.Releases...)
		if len(cfg.Channels) == 1 {
			ch := cfg.Channels[0]
			o.graph.channel, o.graph.from, o.graph.to, o.graph.min, o.graph.max = ch.Name, ch.From, ch.To, ch.Min, ch.Max
			o.graph.acceptRisks = ch.AcceptRisks
			setString("graph-url", &o.graph.graphURL, ch.GraphURL)
			setString("arch", &o.arch, ch.Arch)
		}
	}
}

// effectiveConfig is the pack as a config file: what --print-config shows
// and what the bundle index records.
func (o *packOptions) effectiveConfig() *packConfig {
	cfg := &packConfig{
		APIVersion: configAPIVersion, Kind: configKind,
		Output: o.output, VolumeSize: o.volumeSize, Parallel: o.parallel,
		Keyrings: o.trust.keyrings.Value(), SignatureStores: o.trust.stores.Value(), BetaKey: o.trust.betaKey,
		AllowUnsigned: o.allowUnsigned, Since: o.since, CacheDir: o.cacheDir,
		SignKey: o.sign.keyFile, SignKeyPassphraseFile: o.sign.passphraseFile,
		Timeout: o.registry.net.timeout.String(), StallTimeout: o.registry.net.stall.String(),
		Sigstore:         o.sigstore.mode,
		Releases:         append([]configRelease(nil), o.configReleases...),
		SkipDependencies: o.operators.skipDependencies, InstalledOperators: o.operators.installed,
	}
	if sels, err := o.operators.selections(); err == nil {
		cfg.Operators = sels
	}
	cfg.BlockedImages, cfg.KubeVirtContainer, cfg.GraphImage = o.extras.blocked.Value(), o.extras.kubeVirt, o.extras.graphImage
	cfg.ImageSignatureStores = o.operators.signatureStores.Value()
	if o.extras.graphImage {
		cfg.GraphDataURL, cfg.GraphBaseImage = o.extras.graphDataURL, o.extras.graphBaseImage
	}
	cfg.AdditionalImages = o.extras.fromConfig
	if refs := o.extras.images.Value(); len(refs) > 0 {
		cfg.AdditionalImages = nil
		for _, r := range refs {
			cfg.AdditionalImages = append(cfg.AdditionalImages, configImage{Name: r})
		}
	}
	for _, r := range o.releases {
		cfg.Releases = append(cfg.Releases, configReleaseOf(r, o.arch))
	}
	if o.graph.channel != "" {
		cfg.Channels = []configChannel{{Name: o.graph.channel, Arch: o.arch, From: o.graph.from, To: o.graph.to,
			Min: o.graph.min, Max: o.graph.max, AcceptRisks: o.graph.acceptRisks, GraphURL: o.graph.graphURL}}
	}
	return cfg
}

// configReleaseOf writes a RELEASE argument the way the file spells it.
func configReleaseOf(arg, arch string) configRelease {
	if release.IsVersion(arg) {
		if canonical, err := release.NormalizeArch(arch); err == nil {
			arch = canonical
		}
		return configRelease{Version: arg, Arch: arch}
	}
	return configRelease{PullSpec: arg}
}

func (c *packConfig) yaml() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// configRefs are the releases of a -f file.
func (o *packOptions) configRefs() ([]release.Ref, error) {
	var refs []release.Ref
	for _, r := range o.configReleases {
		var ref release.Ref
		var err error
		if r.PullSpec != "" {
			ref, err = release.ParseRef(r.PullSpec, r.Arch)
		} else {
			arch := r.Arch
			if arch == "" {
				arch = o.arch
			}
			ref, err = release.ParseRef(r.Version, arch)
		}
		if err != nil {
			return nil, usageError(fmt.Errorf("%s: %w", o.configFile, err))
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// writeConfig is --print-config.
func (o *packOptions) writeConfig(env *environment) error {
	data, err := o.effectiveConfig().yaml()
	if err != nil {
		return err
	}
	_, err = env.stdout.Write(data)
	return err
}
