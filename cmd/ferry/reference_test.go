package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/reference.md and docs/ferry.1 from the CLI definition (make docs)")

// TestReferenceUpToDate fails when the committed command reference no longer
// matches the CLI definition; `make docs` rewrites it.
func TestReferenceUpToDate(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
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
