package graphdata

import (
	"archive/tar"
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/blang/semver/v4"
)

// FuzzGraphData feeds tar streams to the reader behind Fetch (after the
// gzip layer, so the fuzzer works on the tar structure) and checks that
// whatever it accepts keeps its promises: only files the service reads,
// under clean names, in order, with sorted versions, and an image built
// from them that is the same twice.
func FuzzGraphData(f *testing.F) {
	small := smallData()
	f.Add(tarOf(f, dataEntries(small, "")))
	f.Add(tarOf(f, dataEntries(small, "cincinnati-graph-data-1/")))
	f.Add(tarOf(f, append(dataEntries(small, "./"), entry{name: "LICENSE", data: []byte("x")})))
	f.Add(tarOf(f, append(dataEntries(small, ""), entry{name: "channels/x.yaml", typ: tar.TypeSymlink, link: "/etc/passwd"})))
	f.Add(tarOf(f, append(dataEntries(small, ""), entry{name: "../x", data: []byte("x")})))
	base, _ := testBase(f, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := readTar(context.Background(), bytes.NewReader(data))
		if err != nil {
			return
		}
		for name := range files {
			if !kept(name) || slices.Contains(strings.Split(name, "/"), "..") {
				t.Fatalf("kept %q", name)
			}
		}
		d, err := newData("fuzz", files)
		if err != nil {
			return
		}
		for i, v := range d.Versions {
			if i > 0 && semver.MustParse(d.Versions[i-1]).Compare(semver.MustParse(v)) > 0 {
				t.Fatalf("versions out of order: %v", d.Versions)
			}
		}
		first, err := BuildImage(base, d)
		if err != nil {
			t.Fatalf("accepted data, refused image: %v", err)
		}
		second, err := BuildImage(base, d)
		if err != nil || second.Digest != first.Digest {
			t.Fatalf("built twice: %s, %s (%v)", first.Digest, second.Digest, err)
		}
	})
}
