// Package catalog reads the file-based catalog (FBC) of an OLM catalog
// image: the image's layers flattened as a container runtime flattens them,
// the directory its label names, and the JSON and YAML documents there
// parsed with operator-registry's declcfg, as opm serve reads them.
//
// ReadFBC is the network-free core, over any layer openers; Read and
// ReadManifest read a catalog image through ferry's registry client.
// Filter selects part of a catalog; Rebuild makes the catalog image that
// carries that part in place of the source's.
package catalog
