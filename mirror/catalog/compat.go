package catalog

import (
	"errors"
	"fmt"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// MaxOpenShiftVersionProperty is the bundle property with which an operator
// declares the last OpenShift minor version it supports.
const MaxOpenShiftVersionProperty = "olm.maxOpenShiftVersion"

// maxGatedHops bounds the minor versions BlocksUpgrade walks between the
// current and the target version. OpenShift updates one minor at a time and
// 4.0 to 5.0 is 23 steps, so more than this is input no cluster can follow
// (or a major other than 4 to 5, whose steps OLM does not define); it is
// judged blocked rather than walked.
const maxGatedHops = 32

// MaxOpenShiftVersion reads the bundle's olm.maxOpenShiftVersion as OLM's
// operator-lifecycle-manager pkg/controller/operators/openshift/helpers.go
// (maxOpenShiftVersion) reads it from the CSV's properties annotation, which
// OLM writes from the catalog bundle's properties at install time:
//
//   - no such property: nil, no limit;
//   - more than one: an error, even when they agree;
//   - the raw JSON value with its quotes trimmed, so the string "4.12" and
//     the number 4.12 read alike; empty is an error;
//   - parsed leniently (blang ParseTolerant: "v4.12", "4.12", "4.12.0"),
//     and anything beyond major.minor (a patch, a prerelease) is an error.
//
// An unquoted YAML 4.20 is the float 4.2 once the catalog is JSON, so it
// arrives as the number 4.2 and OLM reads it as 4.2: that bundle blocks
// every update beyond 4.2. This function does the same, since it is what
// the cluster will do.
//
// The error is what OLM turns into Upgradeable=False: fail closed.
func MaxOpenShiftVersion(bundle declcfg.Bundle) (*semver.Version, error) {
	var raw *string
	for _, p := range bundle.Properties {
		if p.Type != MaxOpenShiftVersionProperty {
			continue
		}
		if raw != nil {
			return nil, fmt.Errorf("bundle %q: more than one %s property", bundle.Name, MaxOpenShiftVersionProperty)
		}
		s := string(p.Value)
		raw = &s
	}
	if raw == nil {
		return nil, nil
	}
	value := strings.Trim(*raw, `"`)
	if value == "" {
		return nil, fmt.Errorf("bundle %q: %s is empty", bundle.Name, MaxOpenShiftVersionProperty)
	}
	v, err := semver.ParseTolerant(value)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %s %q is not a version: %w", bundle.Name, MaxOpenShiftVersionProperty, value, err)
	}
	minor := semver.Version{Major: v.Major, Minor: v.Minor}
	if !v.EQ(minor) {
		return nil, fmt.Errorf("bundle %q: %s %q must be <major>.<minor>", bundle.Name, MaxOpenShiftVersionProperty, value)
	}
	return &minor, nil
}

// BlocksUpgrade says whether the bundle, installed on a cluster at
// currentOpenShift, keeps that cluster from updating to targetOpenShift, as
// OLM judges it, and why.
//
// OLM sets Upgradeable=False on ClusterOperator operator-lifecycle-manager
// when an installed bundle's maximum is below the cluster's next minor
// version (major.minor of its current version, minor plus one; 4.23 counts
// as 5.0), and the cluster-version operator honours that for minor and
// major updates only: a z-stream update is never blocked. A target several
// minors ahead is reached one minor at a time and OLM judges again at each
// one, so the bundle blocks when its maximum is below any of them; the
// reason names the step. A missing maximum never blocks; an empty,
// malformed or repeated one blocks any minor update (fail closed), and so
// do versions of OpenShift that do not parse.
func BlocksUpgrade(bundle declcfg.Bundle, currentOpenShift, targetOpenShift string) (bool, string) {
	current, err := openShiftMinor(currentOpenShift)
	if err != nil {
		return true, fmt.Sprintf("current OpenShift version: %v", err)
	}
	target, err := openShiftMinor(targetOpenShift)
	if err != nil {
		return true, fmt.Sprintf("target OpenShift version: %v", err)
	}
	if target.LTE(current) {
		return false, fmt.Sprintf("%s to %s is not a minor or major update, which is all OLM's Upgradeable condition gates", currentOpenShift, targetOpenShift)
	}
	maxVersion, err := MaxOpenShiftVersion(bundle)
	if err != nil {
		return true, fmt.Sprintf("OLM blocks minor updates on an invalid %s: %v", MaxOpenShiftVersionProperty, err)
	}
	if maxVersion == nil {
		return false, fmt.Sprintf("bundle %q declares no %s", bundle.Name, MaxOpenShiftVersionProperty)
	}
	limit := normalizeOpenShift(*maxVersion)
	cur := current
	for hops := 0; cur.LT(target); hops++ {
		if hops == maxGatedHops {
			return true, fmt.Sprintf("an update from %s to %s crosses more than %d minor versions; not judged", currentOpenShift, targetOpenShift, maxGatedHops)
		}
		next := semver.Version{Major: cur.Major, Minor: cur.Minor + 1}
		if limit.LT(next) {
			return true, fmt.Sprintf("bundle %q declares %s %d.%d: on %d.%d OLM sets Upgradeable=False, blocking the update to %d.%d",
				bundle.Name, MaxOpenShiftVersionProperty, maxVersion.Major, maxVersion.Minor, cur.Major, cur.Minor, next.Major, next.Minor)
		}
		cur = normalizeOpenShift(next)
	}
	return false, fmt.Sprintf("bundle %q declares %s %d.%d, which allows %s", bundle.Name, MaxOpenShiftVersionProperty, maxVersion.Major, maxVersion.Minor, targetOpenShift)
}

// openShiftMinor parses a cluster version as OLM parses its RELEASE_VERSION
// (blang ParseTolerant) and keeps major.minor, normalised.
func openShiftMinor(s string) (semver.Version, error) {
	if s == "" {
		return semver.Version{}, errors.New("empty")
	}
	v, err := semver.ParseTolerant(s)
	if err != nil {
		return semver.Version{}, fmt.Errorf("%q: %w", s, err)
	}
	return normalizeOpenShift(v), nil
}

// normalizeOpenShift keeps major.minor and maps 4.23 to 5.0: OLM treats
// them as one release (operator-lifecycle-manager helpers.go,
// normalizeOCPVersion).
func normalizeOpenShift(v semver.Version) semver.Version {
	if v.Major == 4 && v.Minor == 23 {
		return semver.Version{Major: 5}
	}
	return semver.Version{Major: v.Major, Minor: v.Minor}
}
