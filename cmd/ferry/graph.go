package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// graphCommand is a placeholder until the update-graph command lands.
func graphCommand(env *environment) *cli.Command {
	return &cli.Command{
		Name:   "graph",
		Usage:  "show a channel's releases or the update path between two versions",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("not implemented yet") },
	}
}
