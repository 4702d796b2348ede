package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"k8s.io/klog/v2"

	"github.com/ferryhq/ferry/bundle"
	"github.com/ferryhq/ferry/mirror/signature"
)

// newApp builds the command tree. Commands bind their flags into an options
// struct and call its run method; nothing below this layer sees urfave/cli.
func newApp(env *environment) *cli.App {
	app := &cli.App{
		Name:  "ferry",
		Usage: "carry OpenShift release updates across an air gap",
		Description: "On a connected host, `ferry pack` writes one verified bundle holding a release,\n" +
			"every image it references and its signatures. On the bastion, `ferry apply`\n" +
			"proves the bundle and pushes it into the mirror registry, digests unchanged.",
		Version:              fmt.Sprintf("%s (commit %s, %s, bundle format %d)", version, commit, runtime.Version(), bundle.FormatVersion),
		Reader:               env.stdin,
		Writer:               env.stdout,
		ErrWriter:            env.stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		Suggest:              true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log verbosity: debug, info, warn or error", EnvVars: []string{"FERRY_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log lines as text or json (one object per line, for log collectors)", EnvVars: []string{"FERRY_LOG_FORMAT"}},
		},
		Before: func(c *cli.Context) error {
			return env.setupLogging(c.String("log-level"), c.String("log-format"))
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError(err)
		},
		// Errors are printed once, by run, with their exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError(fmt.Errorf("unknown command %q; see `ferry --help`", c.Args().First()))
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			packCommand(env),
			applyCommand(env),
			checkCommand(env),
			mirrorCommand(env),
			signaturesCommand(env),
			verifyCommand(env),
			inspectCommand(env),
			graphCommand(env),
			inventoryCommand(env),
			pruneCommand(env),
			catalogCommand(env),
			serveCommand(env),
			completionCommand(env),
			versionCommand(env),
		},
	}
	for _, cmd := range app.Commands {
		setUsageErrors(cmd)
	}
	return app
}

// setUsageErrors makes every flag-parsing mistake exit with code 2.
func setUsageErrors(cmd *cli.Command) {
	cmd.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError(err) }
	for _, sub := range cmd.Subcommands {
		setUsageErrors(sub)
	}
}

// environment is what a command may touch of the outside world.
type environment struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	// systemKeyPath is the host's file of Red Hat's release key, trusted
	// when no --keyring is given (signature.DefaultKeyPath; tests move it).
	systemKeyPath string
	// display is the run's progress display, made by the first phase
	// that shows progress (newPhaseProgress); the log writes through it.
	display atomic.Pointer[display]
}

// newEnvironment is the environment of a ferry process on this host.
func newEnvironment(stdin io.Reader, stdout, stderr io.Writer) *environment {
	return &environment{stdin: stdin, stdout: stdout, stderr: stderr, systemKeyPath: signature.DefaultKeyPath}
}

func (e *environment) setupLogging(level, format string) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return usageError(fmt.Errorf("--log-level %q: want debug, info, warn or error", level))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		e.log = slog.New(slog.NewTextHandler(logOutput{e}, opts))
	case "json":
		e.log = slog.New(slog.NewJSONHandler(logOutput{e}, opts))
	default:
		return usageError(fmt.Errorf("--log-format %q: want text or json", format))
	}
	// containers/image logs through logrus; keep it quiet unless debugging.
	logrus.SetOutput(e.stderr)
	if lvl <= slog.LevelDebug {
		logrus.SetLevel(logrus.DebugLevel)
	} else {
		logrus.SetLevel(logrus.WarnLevel)
		// client-go logs through klog; ferry reports what matters itself.
		klog.LogToStderr(false)
		klog.SetOutput(io.Discard)
	}
	return nil
}

func versionCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print ferry's version, commit, Go version and bundle format",
		Description: `The bundle format is the version of the tar layout and index that this ferry
reads and writes; a bundle is applied with the ferry that made it (it travels inside).

Example:
  ferry version`,
		Action: func(*cli.Context) error {
			fmt.Fprintf(env.stdout, "ferry %s\ncommit: %s\ngo: %s\nbundle format: %d\n",
				version, commit, runtime.Version(), bundle.FormatVersion)
			return nil
		},
	}
}

// exactArgs fails with a usage error unless the command got n arguments.
func exactArgs(c *cli.Context, n int, what string) error {
	if c.NArg() != n {
		return usageError(errors.New("expected " + what + "; see `ferry " + c.Command.FullName() + " --help`"))
	}
	return nil
}
