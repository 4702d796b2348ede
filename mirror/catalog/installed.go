package catalog

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"
)

// Installed is an operator installed on a cluster, as the update check
// needs it: the package and channel it is subscribed to, and the installed
// ClusterServiceVersion's name, version and properties (its olm.properties
// annotation, raw JSON).
type Installed struct {
	Package    string
	Channel    string
	CSV        string
	Version    string
	Properties json.RawMessage
}

// Verdict is whether an installed operator lets the cluster update.
type Verdict struct {
	// Blocks: the installed version keeps the cluster from the target.
	Blocks bool `json:"blocks"`
	// OK: it does not block, or the catalog holds a version OLM can reach
	// from it on its channel that does not block either (UpgradeTo).
	OK        bool   `json:"ok"`
	UpgradeTo string `json:"upgradeTo,omitempty"`
	Reason    string `json:"reason"`
}

// JudgeInstalled says, as OLM judges it, whether op keeps a cluster at
// current from updating to target, and whether cfg holds a way out: a
// bundle OLM reaches from the installed one on its channel whose
// olm.maxOpenShiftVersion allows the target (the one OLM prefers first).
func JudgeInstalled(cfg *declcfg.DeclarativeConfig, op Installed, current, target string) Verdict {
	blocks, why := InstalledBlocks(op, current, target)
	if !blocks {
		return Verdict{OK: true, Reason: why}
	}
	v := Verdict{Blocks: true, Reason: why}
	version, err := semver.ParseTolerant(op.Version)
	if err != nil {
		v.Reason += fmt.Sprintf("; its version %q does not parse, so no upgrade can be found", op.Version)
		return v
	}
	candidates, err := ReachableUpgradeFrom(cfg, op.Package, op.Channel, op.CSV, version)
	if err != nil {
		v.Reason += "; " + explainNoUpgrade(err, op)
		return v
	}
	for _, c := range candidates {
		if cblocks, _ := BlocksUpgrade(c, current, target); !cblocks {
			v.OK, v.UpgradeTo = true, c.Name
			v.Reason += fmt.Sprintf("; the catalog holds %s (%s), which OLM reaches on channel %s and which allows %s: update the operator first",
				c.Name, bundleVersionText(c), op.Channel, target)
			return v
		}
	}
	if len(candidates) == 0 {
		v.Reason += fmt.Sprintf("; OLM can reach no newer version on channel %s in this catalog, so none allows %s", op.Channel, target)
		return v
	}
	v.Reason += fmt.Sprintf("; of the %d versions OLM can reach on channel %s in this catalog, none allows %s", len(candidates), op.Channel, target)
	return v
}

// InstalledBlocks says whether op, as installed, keeps a cluster at current
// from updating to target, and why (BlocksUpgrade on its properties).
func InstalledBlocks(op Installed, current, target string) (bool, string) {
	installed := declcfg.Bundle{Name: op.CSV, Package: op.Package}
	if len(op.Properties) > 0 {
		if err := json.Unmarshal(op.Properties, &installed.Properties); err != nil {
			// OLM fails closed on properties it cannot read.
			return true, fmt.Sprintf("its olm.properties annotation does not parse (%v), which OLM treats as blocking", err)
		}
	}
	return BlocksUpgrade(installed, current, target)
}

func explainNoUpgrade(err error, op Installed) string {
	if errors.Is(err, ErrInstalledNotInCatalog) {
		return fmt.Sprintf("the catalog does not know %s", op.CSV)
	}
	return fmt.Sprintf("no upgrade in this catalog: %v", err)
}

func bundleVersionText(b declcfg.Bundle) string {
	for _, p := range b.Properties {
		if p.Type == property.TypePackage {
			var pkg property.Package
			if json.Unmarshal(p.Value, &pkg) == nil {
				return pkg.Version
			}
		}
	}
	return "version unknown"
}
