package catalog_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/ferryhq/ferry/mirror/catalog"
)

// ReadFBC reads the catalog an image's layers leave under its configs
// directory: here a base layer with two packages, and a layer above that
// whites one of them out.
func ExampleReadFBC() {
	layer := func(files map[string]string) catalog.LayerOpener {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, name := range []string{"configs/etcd/catalog.json", "configs/nginx/catalog.yaml", "configs/.wh.etcd"} {
			body, ok := files[name]
			if !ok {
				continue
			}
			_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
			_, _ = io.WriteString(tw, body)
		}
		_ = tw.Close()
		return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }
	}
	base := layer(map[string]string{
		"configs/etcd/catalog.json":  `{"schema":"olm.package","name":"etcd","defaultChannel":"stable"}`,
		"configs/nginx/catalog.yaml": "schema: olm.package\nname: nginx\ndefaultChannel: alpha\n",
	})
	top := layer(map[string]string{"configs/.wh.etcd": ""})

	cfg, err := catalog.ReadFBC(context.Background(), []catalog.LayerOpener{base, top}, "/configs")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range cfg.Packages {
		fmt.Println(p.Name, p.DefaultChannel)
	}
	// Output:
	// nginx alpha
}
