// Command ferry carries OpenShift release updates across an air gap: `ferry
// pack` on a connected host writes one verified bundle, `ferry apply` on the
// bastion proves it and pushes it into the mirror registry.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferryhq/ferry/internal/safetext"
)

// Stamped by the Makefile (-X main.version=... -X main.commit=...).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, newEnvironment(os.Stdin, os.Stdout, os.Stderr))
	stop()
	os.Exit(code)
}

// run executes one ferry command line and returns its exit code. It is the
// whole program minus the process: tests call it in-process.
func run(ctx context.Context, args []string, env *environment) int {
	app := newApp(env)
	err := app.RunContext(ctx, interspersed(app, args))
	code := exitCode(err)
	if err != nil && code != 0 {
		fmt.Fprintf(env.stderr, "ferry: %s\n", safetext.Block(withHint(err).Error()))
	}
	return code
}
