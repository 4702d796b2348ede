package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/manifests"
	"github.com/ferryhq/ferry/mirror/graph"
	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/retry"
	"github.com/ferryhq/ferry/mirror/signature"
)

// registryFlags are the registry-access flags as skopeo spells them. prefix
// is "src" or "dest" for pack and apply, "" for single-registry commands.
type registryFlags struct {
	prefix    string
	authFile  string
	tlsVerify bool
	certDir   string
	// net bounds every network wait of the command, not only the
	// registry's: its flags come with the registry flags.
	net timeoutFlags
}

func (f *registryFlags) flags() []cli.Flag {
	tlsName := "tls-verify"
	if f.prefix != "" {
		tlsName = f.prefix + "-tls-verify"
	}
	return append([]cli.Flag{
		&cli.StringFlag{Name: "authfile", Usage: "registry credentials (containers auth.json; the OpenShift pull secret is one)",
			EnvVars: []string{"REGISTRY_AUTH_FILE"}, Destination: &f.authFile, Category: "Registry"},
		&cli.BoolFlag{Name: tlsName, Value: true, Usage: "verify the registry's TLS certificate (false also allows plain HTTP)",
			Destination: &f.tlsVerify, Category: "Registry"},
		&cli.StringFlag{Name: "cert-dir", Usage: "directory of CA certificates (*.crt) and client keys (*.cert, *.key) for the registry",
			Destination: &f.certDir, Category: "Registry"},
	}, f.net.flags()...)
}

// options configure a registry client from the flags, logging each retry.
func (f *registryFlags) options(env *environment) registry.Options {
	opts := registry.DefaultOptions()
	opts.AuthFile = f.authFile
	opts.TLSVerify = f.tlsVerify
	opts.CertDir = f.certDir
	opts.UserAgent = userAgent()
	opts.Retry.OnRetry = retryLogger(env)
	opts.Timeouts = registry.Timeouts{Response: f.net.timeout, Stall: f.net.stall}
	return opts
}

// timeoutFlags bound how long a command waits on a server (registry,
// signature store, update service, Kubernetes API) that accepted the
// connection and went silent.
type timeoutFlags struct {
	timeout time.Duration
	stall   time.Duration
}

func (f *timeoutFlags) flags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "timeout", Value: registry.DefaultResponseTimeout, Usage: "give up on a request (retried as the retry policy says) " +
			"when no answer comes within `DURATION`; a small document (manifest, signature, graph, Kubernetes object) must also arrive whole in it",
			Destination: &f.timeout, Category: "Network", Action: positiveDuration("timeout")},
		&cli.DurationFlag{Name: "stall-timeout", Value: registry.DefaultStallTimeout, Usage: "give up on a transfer (retried) when no byte moves for `DURATION`",
			Destination: &f.stall, Category: "Network", Action: positiveDuration("stall-timeout")},
	}
}

// positiveDuration refuses a bound that would fail every request.
func positiveDuration(flag string) func(*cli.Context, time.Duration) error {
	return func(_ *cli.Context, d time.Duration) error {
		if d <= 0 {
			return usageError(fmt.Errorf("--%s %s: must be positive", flag, d))
		}
		return nil
	}
}

// signatureFetcher reads signatures from stores within the bounds,
// logging each retry.
func (f *timeoutFlags) signatureFetcher(env *environment, stores []string) *signature.Fetcher {
	policy := signature.DefaultRetry()
	policy.OnRetry = retryLogger(env)
	return &signature.Fetcher{Stores: stores, Timeout: f.timeout, StallTimeout: f.stall, Retry: policy, UserAgent: userAgent()}
}

// graphOptions are the update graph fetch options within the bounds,
// logging each retry.
func (f *timeoutFlags) graphOptions(env *environment, url, channel, arch string) graph.FetchOptions {
	return graph.FetchOptions{URL: url, Channel: channel, Arch: arch, UserAgent: userAgent(),
		Timeout: f.timeout, StallTimeout: f.stall, Retry: graphRetry(env)}
}

// graphRetry is the retry policy for the update service (the graph and its
// graph data), logging each retry.
func graphRetry(env *environment) retry.Policy {
	policy := graph.DefaultRetry()
	policy.OnRetry = retryLogger(env)
	return policy
}

// userAgent names ferry and its version in every HTTP request it makes:
// to registries, signature stores and the update service.
func userAgent() string { return "ferry/" + version }

// retryLogger logs each retry of a request to a registry, a signature
// store or the update service, naming the operation (and so the server).
func retryLogger(env *environment) func(retry.Event) {
	return func(e retry.Event) {
		env.log.Warn("retrying", "op", e.Op, "attempt", e.Attempt, "wait", e.Wait.Round(time.Millisecond), "error", e.Err)
	}
}

// applier connects to the cluster of kubeconfig within the bounds.
func (f *timeoutFlags) applier(kubeconfig string) (*manifests.Applier, error) {
	return manifests.NewApplier(kubeconfig, manifests.WithTimeout(f.timeout), manifests.WithUserAgent(userAgent()))
}

// trustFlags select the keys signatures are checked against and the stores
// they are fetched from.
type trustFlags struct {
	keyrings cli.StringSlice
	stores   cli.StringSlice
	betaKey  bool
	// loaded is the release keyring once read (with its error), so that
	// a command that needs it twice reads and logs it once.
	loaded *loadedKeyring
}

type loadedKeyring struct {
	keyring *signature.Keyring
	err     error
}

func (f *trustFlags) keyringFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "keyring", Usage: "OpenPGP public keys to trust, armored or binary (repeatable; default: " +
		signature.DefaultKeyPath + " if present, else Red Hat's release key 2 built into ferry)", Destination: &f.keyrings, Category: "Signatures"}
}

func (f *trustFlags) storeFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "signature-store", Usage: "signature store URL, http(s):// or file:// (repeatable, tried in order; " +
		"default: Red Hat's two official stores)", EnvVars: []string{"FERRY_SIGNATURE_STORES"}, Destination: &f.stores, Category: "Signatures"}
}
