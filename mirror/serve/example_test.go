package serve_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferryhq/ferry/mirror/serve"
)

// A registry on a directory, with TLS from a CA of its own: Listen
// prepares the root and listens, Status says where and how to trust it,
// Serve answers until its context ends.
func Example() {
	root, err := os.MkdirTemp("", "registry-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(root)
	srv, err := serve.Listen(context.Background(), serve.Options{Root: root, Listen: "127.0.0.1:0", SelfSigned: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	st := srv.Status()
	fmt.Println("tls:", st.TLS, "ca:", st.CA == filepath.Join(root, "tls", "ca.crt"), "cert dir:", st.CertDir == filepath.Join(root, "tls"))

	ctx, stop := context.WithCancel(context.Background())
	stop() // at once, for the example; a program stops on SIGTERM
	fmt.Println("stopped:", srv.Serve(ctx))

	res, err := serve.GarbageCollect(context.Background(), root, serve.GCOptions{DryRun: true})
	fmt.Println("would free:", len(res.Blobs), "blobs,", res.Bytes, "bytes", err)
	// Output:
	// tls: true ca: true cert dir: true
	// stopped: <nil>
	// would free: 0 blobs, 0 bytes <nil>
}
