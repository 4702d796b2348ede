// Package catalog reads the file-based catalog (FBC) of an OLM catalog image.
package catalog

import (
	_ "github.com/operator-framework/operator-registry/alpha/declcfg"
	_ "github.com/operator-framework/operator-registry/alpha/model"
	_ "github.com/operator-framework/operator-registry/alpha/property"
)
