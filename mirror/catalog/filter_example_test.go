package catalog_test

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
	"github.com/operator-framework/operator-registry/alpha/property"

	"github.com/ferryhq/ferry/mirror/catalog"
)

// Filtering Red Hat's descheduler catalog to a range: the bundles of the
// range are tied together only by the skips of v5.1.4, above the range, so
// it is kept as the head and reported.
func ExampleFilter() {
	cfg, err := declcfg.LoadFile(os.DirFS("../../../shared/fixtures/operators"), "descheduler-v4.18.catalog.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	sel := catalog.Selection{
		Catalog: "registry.redhat.io/redhat/redhat-operator-index:v4.18",
		Packages: []catalog.PackageSelection{{
			Name:     "cluster-kube-descheduler-operator",
			Channels: []catalog.ChannelSelection{{Name: "stable", MinVersion: "5.1.0", MaxVersion: "5.1.2"}},
		}},
	}
	out, report, err := catalog.Filter(cfg, sel, catalog.FilterOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range report.Packages {
		fmt.Println(p.Name, "default channel", p.DefaultChannel)
		for _, c := range p.Channels {
			fmt.Println(c.Name, "head", c.Head)
			fmt.Println("kept:", c.Bundles)
			fmt.Println("for connectivity:", c.KeptForConnectivity)
		}
	}
	fmt.Println(len(catalog.BundleImages(out)) > 0)
	// Output:
	// cluster-kube-descheduler-operator default channel stable
	// stable head clusterkubedescheduleroperator.v5.1.4
	// kept: [clusterkubedescheduleroperator.v5.1.4 clusterkubedescheduleroperator.v5.1.2 clusterkubedescheduleroperator.v5.1.1 clusterkubedescheduleroperator.v5.1.0]
	// for connectivity: [clusterkubedescheduleroperator.v5.1.4]
	// true
}

// An operator declaring olm.maxOpenShiftVersion 4.16, installed on a 4.15
// cluster: the update to 4.16 passes, OLM blocks the next one.
func ExampleBlocksUpgrade() {
	bundle := declcfg.Bundle{Name: "example-operator.v1.2.0", Properties: []property.Property{
		{Type: catalog.MaxOpenShiftVersionProperty, Value: json.RawMessage(`"4.16"`)},
	}}
	for _, target := range []string{"4.15.30", "4.16.12", "4.17.3"} {
		blocks, reason := catalog.BlocksUpgrade(bundle, "4.15.21", target)
		fmt.Println(target, blocks, reason)
	}
	// Output:
	// 4.15.30 false 4.15.21 to 4.15.30 is not a minor or major update, which is all OLM's Upgradeable condition gates
	// 4.16.12 false bundle "example-operator.v1.2.0" declares olm.maxOpenShiftVersion 4.16, which allows 4.16.12
	// 4.17.3 true bundle "example-operator.v1.2.0" declares olm.maxOpenShiftVersion 4.16: on 4.16 OLM sets Upgradeable=False, blocking the update to 4.17
}
