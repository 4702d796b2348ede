package inventory

import (
	"bytes"
	"testing"
)

// FuzzParseInventory checks that whatever Parse accepts is well-formed and
// writes back to a file Parse accepts with the same holdings. The committed
// corpus in testdata/fuzz/FuzzParseInventory holds small hand-made files.
func FuzzParseInventory(f *testing.F) {
	valid, err := sample().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"formatVersion":1,"kind":"FerryInventory","created":"2026-01-01T00:00:00Z","source":"","releases":[],"manifests":[],"blobs":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		if inv.FormatVersion != FormatVersion || inv.Kind != Kind {
			t.Fatalf("accepted version %d kind %q", inv.FormatVersion, inv.Kind)
		}
		for _, b := range inv.Blobs {
			if checkDigest(b.Digest) != nil || b.Size < 0 {
				t.Fatalf("accepted blob %+v", b)
			}
		}
		out, err := inv.Marshal()
		if err != nil {
			t.Fatalf("Marshal of an accepted inventory: %v", err)
		}
		again, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("Parse(Marshal()): %v\n%s", err, out)
		}
		if len(again.Blobs) != len(inv.Blobs) || len(again.Manifests) != len(inv.Manifests) || len(again.Releases) != len(inv.Releases) ||
			again.Bytes() != inv.Bytes() || again.Source != inv.Source {
			t.Fatalf("round trip changed the holdings:\n%s\n%s", data, out)
		}
	})
}
