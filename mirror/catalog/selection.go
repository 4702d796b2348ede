package catalog

import (
	"errors"
	"fmt"

	"github.com/blang/semver/v4"
)

// Selection says what to carry of one operator catalog; it is what an
// `operators:` item of ferry.yaml holds.
//
// The zero Packages list selects the catalog's default: the head of every
// channel of every package. Full selects everything, or, with Packages,
// every bundle of the packages named.
type Selection struct {
	// Catalog is the catalog image, e.g. registry.redhat.io/redhat/redhat-operator-index:v4.16.
	Catalog  string             `json:"catalog" yaml:"catalog"`
	Full     bool               `json:"full,omitempty" yaml:"full,omitempty"`
	Packages []PackageSelection `json:"packages,omitempty" yaml:"packages,omitempty"`
}

// PackageSelection selects in one package. With no Channels it selects every
// channel: each channel's head, or, with MinVersion/MaxVersion, the bundles
// of each channel inside the range (channels with none are left out). With
// Channels it selects those only, each with its own range or, when it has
// none, the package's.
//
// Versions are semantic versions compared as OLM compares them (blang/semver):
// a prerelease sorts before its release, so minVersion 4.14.0 leaves out
// 4.14.0-202310201027; write 4.14.0-0 to include such builds.
type PackageSelection struct {
	Name string `json:"name" yaml:"name"`
	// DefaultChannel replaces the catalog's default channel; it must be one
	// of the selected channels. Needed when the selection drops the catalog's
	// default and keeps several channels.
	DefaultChannel string             `json:"defaultChannel,omitempty" yaml:"defaultChannel,omitempty"`
	MinVersion     string             `json:"minVersion,omitempty" yaml:"minVersion,omitempty"`
	MaxVersion     string             `json:"maxVersion,omitempty" yaml:"maxVersion,omitempty"`
	Channels       []ChannelSelection `json:"channels,omitempty" yaml:"channels,omitempty"`
}

// ChannelSelection selects one channel: its head, or the bundles inside
// [MinVersion, MaxVersion] (either bound may be empty).
type ChannelSelection struct {
	Name       string `json:"name" yaml:"name"`
	MinVersion string `json:"minVersion,omitempty" yaml:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty" yaml:"maxVersion,omitempty"`
}

// SelectionError is a selection that cannot be applied, naming the package
// and channel it is about.
type SelectionError struct {
	Package string
	Channel string
	Reason  string
}

func (e *SelectionError) Error() string {
	switch {
	case e.Package == "":
		return "operator selection: " + e.Reason
	case e.Channel == "":
		return fmt.Sprintf("operator selection, package %q: %s", e.Package, e.Reason)
	default:
		return fmt.Sprintf("operator selection, package %q channel %q: %s", e.Package, e.Channel, e.Reason)
	}
}

// Validate reports every problem of the selection at once: no catalog,
// empty or repeated names, versions that are not semantic versions, a
// minimum above its maximum, a default channel outside the selected
// channels, and full combined with channels or ranges.
func (s Selection) Validate() error {
	var errs []error
	if s.Catalog == "" {
		errs = append(errs, &SelectionError{Reason: "no catalog image named"})
	}
	errs = append(errs, s.validatePackages()...)
	return errors.Join(errs...)
}

// validatePackages is Validate without the catalog name, which Filter does
// not need.
func (s Selection) validatePackages() []error {
	var errs []error
	seen := map[string]bool{}
	for _, p := range s.Packages {
		if p.Name == "" {
			errs = append(errs, &SelectionError{Reason: "a package without a name"})
			continue
		}
		if seen[p.Name] {
			errs = append(errs, &SelectionError{Package: p.Name, Reason: "listed twice"})
		}
		seen[p.Name] = true
		errs = append(errs, p.validate(s.Full)...)
	}
	return errs
}

func (p PackageSelection) validate(full bool) []error {
	var errs []error
	fail := func(channel, format string, args ...any) {
		errs = append(errs, &SelectionError{Package: p.Name, Channel: channel, Reason: fmt.Sprintf(format, args...)})
	}
	if full && (len(p.Channels) > 0 || p.MinVersion != "" || p.MaxVersion != "") {
		fail("", "full selects every bundle: it cannot be combined with channels or versions")
	}
	if _, err := parseBounds(p.MinVersion, p.MaxVersion); err != nil {
		fail("", "%v", err)
	}
	seen := map[string]bool{}
	for _, c := range p.Channels {
		if c.Name == "" {
			fail("", "a channel without a name")
			continue
		}
		if seen[c.Name] {
			fail(c.Name, "listed twice")
		}
		seen[c.Name] = true
		if _, err := parseBounds(c.MinVersion, c.MaxVersion); err != nil {
			fail(c.Name, "%v", err)
		}
	}
	if p.DefaultChannel != "" && len(p.Channels) > 0 && !seen[p.DefaultChannel] {
		fail("", "defaultChannel %q is not one of the selected channels", p.DefaultChannel)
	}
	return errs
}

// versionBounds is an inclusive version range; a nil end is open.
type versionBounds struct {
	min, max *semver.Version
}

func (b versionBounds) set() bool { return b.min != nil || b.max != nil }

func (b versionBounds) contains(v semver.Version) bool {
	if b.min != nil && v.LT(*b.min) {
		return false
	}
	return b.max == nil || v.LTE(*b.max)
}

func (b versionBounds) String() string {
	switch {
	case b.min != nil && b.max != nil:
		return fmt.Sprintf("[%s, %s]", b.min, b.max)
	case b.min != nil:
		return fmt.Sprintf(">= %s", b.min)
	case b.max != nil:
		return fmt.Sprintf("<= %s", b.max)
	}
	return "any version"
}

// parseBounds parses the bounds strictly, as OLM parses bundle versions: a
// full semantic version, no "v" prefix, no shortened "4.14".
func parseBounds(minVersion, maxVersion string) (versionBounds, error) {
	var b versionBounds
	for _, end := range []struct {
		name, text string
		dst        **semver.Version
	}{{"minVersion", minVersion, &b.min}, {"maxVersion", maxVersion, &b.max}} {
		if end.text == "" {
			continue
		}
		v, err := semver.Parse(end.text)
		if err != nil {
			return versionBounds{}, fmt.Errorf("%s %q is not a semantic version such as 5.0.0: %w", end.name, end.text, err)
		}
		*end.dst = &v
	}
	if b.min != nil && b.max != nil && b.min.GT(*b.max) {
		return versionBounds{}, fmt.Errorf("minVersion %s is above maxVersion %s", b.min, b.max)
	}
	return b, nil
}
