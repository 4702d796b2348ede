package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves a command's flags before its arguments, so that
// `ferry pack 4.15.0 --keyring k.asc` works as users of kubectl, oc and
// skopeo expect (urfave/cli v2 stops reading flags at the first argument).
// Everything after "--" stays an argument.
func interspersed(app *cli.App, args []string) []string {
	// Shell completion reads the raw command line; leave it alone.
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	// Global flags, then the command path.
	flags := app.Flags
	var cmd *cli.Command
	for len(rest) > 0 {
		tok := rest[0]
		if strings.HasPrefix(tok, "-") {
			n := flagTokens(flags, rest)
			out, rest = append(out, rest[:n]...), rest[n:]
			continue
		}
		next := findCommand(app.Commands, cmd, tok)
		if next == nil {
			break
		}
		cmd, flags = next, next.Flags
		out, rest = append(out, tok), rest[1:]
	}
	if cmd == nil {
		return append(out, rest...)
	}
	var positional []string
	for len(rest) > 0 {
		tok := rest[0]
		switch {
		case tok == "--":
			positional = append(positional, rest...)
			rest = nil
		case strings.HasPrefix(tok, "-") && tok != "-":
			n := flagTokens(flags, rest)
			out, rest = append(out, rest[:n]...), rest[n:]
		default:
			positional, rest = append(positional, tok), rest[1:]
		}
	}
	if len(positional) > 0 && positional[0] != "--" {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// findCommand finds name among the top-level commands or the subcommands
// of parent.
func findCommand(top []*cli.Command, parent *cli.Command, name string) *cli.Command {
	list := top
	if parent != nil {
		list = parent.Subcommands
	}
	for _, c := range list {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// flagTokens is how many tokens the flag at rest[0] takes: one for a
// boolean or --name=value, two for a flag that takes a value.
func flagTokens(flags []cli.Flag, rest []string) int {
	name, _, hasValue := strings.Cut(strings.TrimLeft(rest[0], "-"), "=")
	if hasValue || len(rest) < 2 {
		return 1
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if _, isBool := f.(*cli.BoolFlag); isBool {
				return 1
			}
			return 2
		}
	}
	return 1
}
