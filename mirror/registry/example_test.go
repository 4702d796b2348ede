package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ferryhq/ferry/mirror/registry"
	"github.com/ferryhq/ferry/mirror/retry"
)

// Do retries transient failures (here a connection cut short) and reports
// each retry through the policy's OnRetry.
func ExampleDo() {
	policy := registry.RetryPolicy{
		Attempts: 3,
		Base:     time.Millisecond,
		OnRetry: func(e retry.Event) {
			fmt.Printf("%s: attempt %d failed: %v\n", e.Op, e.Attempt, e.Err)
		},
	}
	calls := 0
	err := registry.Do(context.Background(), policy, "reading manifest", func(context.Context) error {
		calls++
		if calls == 1 {
			return io.ErrUnexpectedEOF
		}
		return nil
	})
	fmt.Println(err, calls)
	// Output:
	// reading manifest: attempt 1 failed: unexpected EOF
	// <nil> 2
}

// Probing for a sigstore signature: a missing tag is ErrNotFound, anything
// else is a real failure.
func ExampleSource_ManifestByTag() {
	ctx := context.Background()
	c := registry.New(registry.DefaultOptions())
	src, err := c.Source(ctx, "quay.io/openshift-release-dev/ocp-v4.0-art-dev")
	if err != nil {
		panic(err)
	}
	defer src.Close()
	sig, err := src.ManifestByTag(ctx, "sha256-0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363.sig")
	switch {
	case errors.Is(err, registry.ErrNotFound):
		fmt.Println("not signed")
	case err != nil:
		panic(err)
	default:
		fmt.Println("signature manifest", sig.Digest)
	}
}
