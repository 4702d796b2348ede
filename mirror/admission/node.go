package admission

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"

	"github.com/ferryhq/ferry/mirror/registry"
)

// nodeConfig is the containers configuration of a pretend node, in a
// temporary directory: one registries.conf per route (route k sends each
// source repository to its k-th mirror and to nothing else), an empty
// registries.conf.d so no drop-in of this host adds a mirror or the
// source, and a registries.d that reads sigstore attachments everywhere.
type nodeConfig struct {
	dir    string
	routes int
	base   registry.Options
}

// registriesD is the registries.d file the machine-config operator writes
// for every scope and mirror of a policy; here for every registry.
const registriesD = "default-docker:\n  use-sigstore-attachments: true\n"

func newNodeConfig(tasks []task, results []Result, opts registry.Options) (n *nodeConfig, err error) {
	dir, err := os.MkdirTemp("", "ferry-admission-")
	if err != nil {
		return nil, fmt.Errorf("creating the node configuration: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	n = &nodeConfig{dir: dir, base: opts}
	for _, sub := range []string{"registries.d", "registries.conf.d"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "registries.d", "ferry.yaml"), []byte(registriesD), 0o600); err != nil {
		return nil, err
	}
	// routes[k] maps each source repository to its k-th mirror.
	var routes []map[string]string
	for _, t := range tasks {
		r := &results[t.result]
		for len(routes) <= t.route {
			routes = append(routes, map[string]string{})
		}
		routes[t.route][r.Image.Source] = r.Mirror
	}
	for k, route := range routes {
		conf := registriesConf(route, opts)
		if err := os.Mkdir(filepath.Join(dir, strconv.Itoa(k)), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(n.confPath(k), []byte(conf), 0o600); err != nil {
			return nil, err
		}
	}
	n.routes = len(routes)
	return n, nil
}

func (n *nodeConfig) confPath(route int) string {
	return filepath.Join(n.dir, strconv.Itoa(route), "registries.conf")
}

// systemContext is the registry access of opts, seeing only the
// configuration of route.
func (n *nodeConfig) systemContext(route int) *types.SystemContext {
	sys := n.base.SystemContext()
	sys.SystemRegistriesConfPath = n.confPath(route)
	sys.SystemRegistriesConfDirPath = filepath.Join(n.dir, "registries.conf.d")
	sys.RegistriesDirPath = filepath.Join(n.dir, "registries.d")
	return sys
}

// registriesConf writes one [[registry]] per source repository whose
// location is the mirror: the rewritten location is then the only place
// containers/image pulls the repository from, with no mirror list and no
// fallback to the source. plan has checked the names against the reference
// grammar, which leaves nothing TOML would need escaped.
func registriesConf(route map[string]string, opts registry.Options) string {
	sources := make([]string, 0, len(route))
	for s := range route {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	var b strings.Builder
	for _, source := range sources {
		mirror := route[source]
		fmt.Fprintf(&b, "[[registry]]\nprefix = %q\nlocation = %q\ninsecure = %t\n\n", source, mirror, markedInsecure(mirror, opts))
	}
	return b.String()
}

// markedInsecure keeps what the host's registries.conf says of the mirror,
// as ferry's other registry access does: a registry marked insecure there
// is reached without verifying its certificate even when TLS is verified
// otherwise. (Without TLS verification, the SystemContext already says so.)
func markedInsecure(mirror string, opts registry.Options) bool {
	reg, err := sysregistriesv2.FindRegistry(opts.SystemContext(), mirror)
	return err == nil && reg != nil && reg.Insecure
}
