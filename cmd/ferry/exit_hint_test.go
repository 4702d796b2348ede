package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/mirror/registry"
)

// TestWithHint: the libraries classify an error, the CLI says what to do
// about it in its own words.
func TestWithHint(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("reading quay.io/x: %w", registry.ErrUnauthorized), "hint: check --authfile"},
		{fmt.Errorf("reading quay.io/x: %w", registry.ErrTLS), "hint: give the registry's CA with --cert-dir"},
	} {
		got := withHint(tc.err)
		if !strings.Contains(got.Error(), tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("withHint(%v) = %v, want %q and the cause kept", tc.err, got, tc.want)
		}
	}
	plain := errors.New("disk full")
	if withHint(plain) != plain {
		t.Error("a hint was added to an error ferry knows nothing to say about")
	}
}
