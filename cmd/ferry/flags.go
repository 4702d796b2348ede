package main

import (
	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/mirror/registry"
)

// registryFlags are the registry-access flags as skopeo spells them. prefix
// is "src" or "dest" for pack and apply, "" for single-registry commands.
type registryFlags struct {
	prefix    string
	authFile  string
	tlsVerify bool
	certDir   string
}

func (f *registryFlags) flags() []cli.Flag {
	tlsName := "tls-verify"
	if f.prefix != "" {
		tlsName = f.prefix + "-tls-verify"
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "authfile", Usage: "registry credentials (containers auth.json; the OpenShift pull secret is one)",
			EnvVars: []string{"REGISTRY_AUTH_FILE"}, Destination: &f.authFile, Category: "Registry"},
		&cli.BoolFlag{Name: tlsName, Value: true, Usage: "verify the registry's TLS certificate (false also allows plain HTTP)",
			Destination: &f.tlsVerify, Category: "Registry"},
		&cli.StringFlag{Name: "cert-dir", Usage: "directory of CA certificates (*.crt) and client keys (*.cert, *.key) for the registry",
			Destination: &f.certDir, Category: "Registry"},
	}
}

func (f *registryFlags) options() registry.Options {
	opts := registry.DefaultOptions()
	opts.AuthFile = f.authFile
	opts.TLSVerify = f.tlsVerify
	opts.CertDir = f.certDir
	opts.UserAgent = "ferry/" + version
	return opts
}

// trustFlags select the keys signatures are checked against and the stores
// they are fetched from.
type trustFlags struct {
	keyrings cli.StringSlice
	stores   cli.StringSlice
}

func (f *trustFlags) keyringFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "keyring", Usage: "OpenPGP public keys to trust, armored or binary (repeatable; default: " +
		"Red Hat's release key at /etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release)", Destination: &f.keyrings, Category: "Signatures"}
}

func (f *trustFlags) storeFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "signature-store", Usage: "signature store URL, http(s):// or file:// (repeatable, tried in order; " +
		"default: Red Hat's two official stores)", EnvVars: []string{"FERRY_SIGNATURE_STORES"}, Destination: &f.stores, Category: "Signatures"}
}
