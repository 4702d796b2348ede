package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/ferryhq/ferry/mirror/serve"
)

type serveOptions struct {
	root       string
	listen     string
	tlsCert    string
	tlsKey     string
	selfSigned bool
	tlsNames   cli.StringSlice
	htpasswd   string
	readOnly   bool
	json       bool
}

func serveCommand(env *environment) *cli.Command {
	o := &serveOptions{}
	return &cli.Command{
		Name:  "serve",
		Usage: "run the bastion's mirror registry (an OCI distribution registry on a directory)",
		Description: `Runs the distribution project's registry on the directory --root: what 'ferry apply --to'
pushes into and the cluster pulls from. It serves until SIGTERM or Ctrl-C, then lets
requests in flight finish (up to ` + serve.ShutdownDrain.String() + `) and exits 0.

TLS comes from --tls-cert and --tls-key, or with --tls-self-signed from a CA that ferry
makes once in ROOT/tls (kept and reused on every restart; the serving certificate holds
the host's name, localhost, every address of its interfaces and each --tls-name). Trust
the CA once on every client; ferry prints how. Without TLS clients must treat the
registry as insecure (--dest-tls-verify=false).

--htpasswd asks every client for a user and password (bcrypt hashes, made with
'htpasswd -B'); it needs TLS. --read-only refuses every push and delete, so that
'ferry serve gc' can run beside it. Deletes are allowed otherwise: 'ferry prune'
removes manifests through the API, 'ferry serve gc' then frees their blobs.

With --json, one line on standard output says where it listens, once it does:
  {"address":"127.0.0.1:5000","tls":true,"ca":"ROOT/tls/ca.crt","cert_dir":"ROOT/tls","read_only":false}

Examples:
  ferry serve --root /var/lib/ferry-registry --tls-self-signed --htpasswd /etc/ferry/htpasswd
  ferry serve --root /var/lib/ferry-registry --tls-cert registry.crt --tls-key registry.key --listen :443
  ferry serve --root /var/lib/ferry-registry --tls-self-signed --read-only`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Usage: "`DIR` holding the registry's storage, its self-signed TLS files and its lock (made if missing)", Destination: &o.root},
			&cli.StringFlag{Name: "listen", Value: serve.DefaultListen, Usage: "`ADDRESS` to listen on (host:port; port 0 picks a free one, see --json)", Destination: &o.listen},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON status line (address, tls, ca) once listening", Destination: &o.json},
			&cli.BoolFlag{Name: "read-only", Usage: "refuse pushes and deletes (for 'ferry serve gc' beside it)", Destination: &o.readOnly},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve TLS with this PEM certificate `FILE` (with --tls-key)", Destination: &o.tlsCert, Category: "TLS"},
			&cli.StringFlag{Name: "tls-key", Usage: "the PEM private key `FILE` of --tls-cert", Destination: &o.tlsKey, Category: "TLS"},
			&cli.BoolFlag{Name: "tls-self-signed", Usage: "serve TLS with a certificate from a CA kept in DIR/tls (made once, reused)", Destination: &o.selfSigned, Category: "TLS"},
			&cli.StringSliceFlag{Name: "tls-name", Usage: "extra DNS `NAME` or IP address for the self-signed certificate (repeatable)", Destination: &o.tlsNames, Category: "TLS"},
			&cli.StringFlag{Name: "htpasswd", Usage: "require basic authentication against this htpasswd `FILE` (bcrypt, htpasswd -B); needs TLS", Destination: &o.htpasswd, Category: "Authentication"},
		},
		Subcommands: []*cli.Command{serveGCCommand(env)},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(fmt.Errorf("unexpected argument %q; see `ferry serve --help`", c.Args().First()))
			}
			if o.root == "" {
				return usageError(errors.New("--root DIR is required: the directory of the registry's storage"))
			}
			return o.run(c.Context, env)
		},
	}
}

func (o *serveOptions) run(ctx context.Context, env *environment) error {
	opts := serve.Options{Root: o.root, Listen: o.listen, CertFile: o.tlsCert, KeyFile: o.tlsKey, SelfSigned: o.selfSigned,
		Names: o.tlsNames.Value(), HTPasswd: o.htpasswd, ReadOnly: o.readOnly, Log: env.log}
	if err := o.check(); err != nil {
		return usageError(err)
	}
	if err := opts.Validate(); err != nil {
		return usageError(err)
	}
	routeRegistryLogs(env)
	srv, err := serve.Listen(ctx, opts)
	if err != nil {
		return err
	}
	st := srv.Status()
	if o.json {
		if err := json.NewEncoder(env.stdout).Encode(st); err != nil {
			_ = srv.Close()
			return err
		}
	}
	env.log.Info("serving", "address", st.Address, "tls", st.TLS, "read_only", st.ReadOnly, "root", o.root)
	if !st.TLS {
		env.log.Warn("serving plain HTTP: clients must treat this registry as insecure (ferry --dest-tls-verify=false, " +
			"skopeo --tls-verify=false, podman: an [[registry]] insecure = true entry in registries.conf)")
	}
	if st.CA != "" {
		printTrust(env.stderr, st)
	}
	return srv.Serve(ctx)
}

// check refuses flag combinations that make no sense, naming the flags
// (serve.Options.Validate checks the same, in the library's words).
func (o *serveOptions) check() error {
	switch {
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case o.tlsCert != "" && o.selfSigned:
		return errors.New("--tls-self-signed excludes --tls-cert and --tls-key")
	case len(o.tlsNames.Value()) > 0 && !o.selfSigned:
		return errors.New("--tls-name needs --tls-self-signed")
	case o.htpasswd != "" && o.tlsCert == "" && !o.selfSigned:
		return errors.New("--htpasswd needs TLS (--tls-self-signed, or --tls-cert and --tls-key): basic authentication would send passwords in clear")
	}
	return nil
}

// printTrust tells the operator how clients trust the self-signed CA. It
// goes to standard error, beside the logs: standard output is for --json.
func printTrust(w io.Writer, st serve.Status) {
	fmt.Fprintf(w, `The registry's TLS certificate is signed by ferry's CA %[1]s. On each client:
  trust it host-wide (RHEL, Fedora):  cp %[1]s /etc/pki/ca-trust/source/anchors/ferry-registry.crt && update-ca-trust
  trust it host-wide (Debian, Ubuntu): cp %[1]s /usr/local/share/ca-certificates/ferry-registry.crt && update-ca-certificates
  or for podman, skopeo and ferry only: --cert-dir %[2]s (ferry apply, skopeo inspect; skopeo copy --src-cert-dir/--dest-cert-dir),
    or copy it to /etc/containers/certs.d/HOST:PORT/ca.crt
`, st.CA, st.CertDir)
}

// routeRegistryLogs sends the distribution library's log (logrus's standard
// logger) into ferry's, demoted as serve.LogHook says.
func routeRegistryLogs(env *environment) {
	std := logrus.StandardLogger()
	std.SetOutput(io.Discard)
	std.ReplaceHooks(logrus.LevelHooks{}) // one route, however often run is called in a process
	std.AddHook(serve.LogHook{Log: env.log})
	if env.log.Enabled(context.Background(), slog.LevelDebug) {
		std.SetLevel(logrus.DebugLevel)
	} else {
		std.SetLevel(logrus.WarnLevel)
	}
}

type serveGCOptions struct {
	root   string
	dryRun bool
	json   bool
}

func serveGCCommand(env *environment) *cli.Command {
	o := &serveGCOptions{}
	return &cli.Command{
		Name:  "gc",
		Usage: "free the blobs no manifest references any more (after 'ferry prune'), offline",
		Description: `Runs the distribution library's garbage collector on the registry in --root: every blob
that no manifest of any repository references (through an index's children, an image's
config and layers) is removed, and the bytes freed are reported. Manifests deleted
through the API ('ferry prune', or skopeo delete) are no longer referenced, so their
blobs go, except those another manifest still uses. Untagged manifests are kept: a
mirror holds a release's components by digest only.

The registry must be stopped or serving --read-only: gc locks --root and refuses to run
while a read-write 'ferry serve' holds it (and such a serve refuses to start meanwhile).

Examples:
  ferry serve gc --root /var/lib/ferry-registry --dry-run
  ferry serve gc --root /var/lib/ferry-registry --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Usage: "`DIR` of the registry (as given to ferry serve)", Destination: &o.root},
			&cli.BoolFlag{Name: "dry-run", Usage: "report what would be freed, remove nothing", Destination: &o.dryRun},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON: dry_run, blobs (digests), bytes", Destination: &o.json},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(fmt.Errorf("unexpected argument %q; see `ferry serve gc --help`", c.Args().First()))
			}
			if o.root == "" {
				return usageError(errors.New("--root DIR is required: the directory given to ferry serve"))
			}
			return o.run(c.Context, env)
		},
	}
}

func (o *serveGCOptions) run(ctx context.Context, env *environment) error {
	if _, err := os.Stat(o.root); err != nil {
		return usageError(fmt.Errorf("--root: %w", err))
	}
	routeRegistryLogs(env)
	res, err := serve.GarbageCollect(ctx, o.root, serve.GCOptions{DryRun: o.dryRun, Log: env.log})
	if errors.Is(err, serve.ErrNoRegistry) {
		return usageError(err)
	}
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(env.stdout).Encode(res)
	}
	verb := "freed"
	if res.DryRun {
		verb = "would free"
	}
	fmt.Fprintf(env.stdout, "%s %d blobs, %s (%d bytes)\n", verb, len(res.Blobs), formatBytes(res.Bytes), res.Bytes)
	return nil
}
