package inventory_test

import (
	"fmt"
	"strings"

	"github.com/ferryhq/ferry/mirror/inventory"
)

// An inventory as `ferry inventory` writes it: what the mirror holds, by
// digest. Pack leaves out every blob it lists.
const example = `{
  "formatVersion": 1,
  "kind": "FerryInventory",
  "created": "2026-01-02T03:04:05Z",
  "source": "registry mirror.example:5000/ocp4/openshift4",
  "releases": [{"version": "4.15.0", "arch": "x86_64",
    "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111"}],
  "manifests": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"],
  "blobs": [{"digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
    "size": 4096, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"}]
}`

func ExampleParse() {
	inv, err := inventory.Parse(strings.NewReader(example))
	if err != nil {
		panic(err)
	}
	fmt.Println(inv.Source)
	for _, r := range inv.Releases {
		fmt.Println("release", r.Version, r.Arch)
	}
	held := inv.BlobSet()
	b, ok := held["sha256:2222222222222222222222222222222222222222222222222222222222222222"]
	fmt.Println("holds layer:", ok, b.Size)

	// A file with a field ferry does not know is refused, not half read.
	_, err = inventory.Parse(strings.NewReader(strings.Replace(example, `"source"`, `"token": "x", "source"`, 1)))
	fmt.Println(err)
	// Output:
	// registry mirror.example:5000/ocp4/openshift4
	// release 4.15.0 x86_64
	// holds layer: true 4096
	// parsing inventory: json: unknown field "token"
}
