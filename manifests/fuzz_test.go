package manifests

import (
	"bytes"
	"testing"
)

// FuzzParseSignatureConfigMap checks that the parser never panics and that
// whatever it accepts renders back to a ConfigMap that parses to the same
// digest and signatures. Seeds are in testdata/fuzz.
func FuzzParseSignatureConfigMap(f *testing.F) {
	good, err := SignatureConfigMap(testDigest, testSigs[:2])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseSignatureConfigMap(data)
		if err != nil {
			return
		}
		out, err := SignatureConfigMap(rs.Digest, rs.Signatures)
		if err != nil {
			t.Fatalf("accepted %q but cannot render it: %v", data, err)
		}
		again, err := ParseSignatureConfigMap(out)
		if err != nil {
			t.Fatalf("cannot parse own rendering %q: %v", out, err)
		}
		if again.Digest != rs.Digest || len(again.Signatures) != len(rs.Signatures) {
			t.Fatalf("round trip changed %s/%d to %s/%d", rs.Digest, len(rs.Signatures), again.Digest, len(again.Signatures))
		}
		for i := range rs.Signatures {
			if !bytes.Equal(again.Signatures[i], rs.Signatures[i]) {
				t.Fatalf("round trip changed signature %d", i+1)
			}
		}
	})
}
