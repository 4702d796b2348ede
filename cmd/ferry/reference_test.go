package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/reference.md and docs/ferry.1 from the CLI definition (make docs)")

// TestReferenceUpToDate fails when the committed command reference no longer
// matches the CLI definition; `make docs` rewrites it.
func TestReferenceUpToDate(t *testing.T) {
	app := newApp(newEnvironment(strings.NewReader(""), io.Discard, io.Discard))
	app.Version = "" // differs between builds; the reference does not
	markdown, err := app.ToMarkdown()
	if err != nil {
		t.Fatal(err)
	}
	man, err := app.ToManWithSection(1)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"reference.md": markdown, "ferry.1": man} {
		path := filepath.Join("..", "..", "docs", name)
		if *updateDocs {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, []byte(want)) {
			t.Errorf("docs/%s is stale (or missing: %v); run `make docs` and commit the result", name, err)
		}
	}
}

// TestEveryCommandTeaches: each command has a one-line purpose, a
// description and at least one example in its --help.
func TestEveryCommandTeaches(t *testing.T) {
	app := newApp(newEnvironment(strings.NewReader(""), io.Discard, io.Discard))
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			name := strings.TrimSpace(prefix + " " + c.Name)
			if c.Usage == "" || strings.Contains(c.Usage, "\n") {
				t.Errorf("%s: want a one-line purpose, got %q", name, c.Usage)
			}
			if !strings.Contains(c.Description, "Example") {
				t.Errorf("%s: its description has no example", name)
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", app.Commands)
}
