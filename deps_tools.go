//go:build tools

// Package ferry pins dependencies that packages under construction will use,
// so that concurrent work does not fight over go.mod. Removed once every
// dependency is imported by real code.
package ferry

import (
	_ "github.com/ProtonMail/go-crypto/openpgp"
	_ "github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/opencontainers/go-digest"
	_ "github.com/opencontainers/image-spec/specs-go/v1"
	_ "github.com/urfave/cli/v2"
	_ "github.com/vbauerster/mpb/v8"
	_ "go.podman.io/image/v5/docker"
	_ "go.podman.io/image/v5/manifest"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/term"
	_ "gopkg.in/yaml.v3"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/dynamic"
	_ "k8s.io/client-go/tools/clientcmd"
)
