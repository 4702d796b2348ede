package manifests

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	corev1 "k8s.io/api/core/v1"
	k8syaml "sigs.k8s.io/yaml"
)

var (
	testDigest = digest.Digest("sha256:" + strings.Repeat("ab", 32))
	testSigs   = [][]byte{[]byte("first signature\x00\xff"), []byte("second"), bytes.Repeat([]byte{0x8b}, 3000)}
)

func TestSignatureConfigMapExact(t *testing.T) {
	out, err := SignatureConfigMap(testDigest, testSigs[:2])
	if err != nil {
		t.Fatal(err)
	}
	hex := testDigest.Encoded()
	want := "apiVersion: v1\n" +
		"kind: ConfigMap\n" +
		"metadata:\n" +
		"  name: sha256-" + hex + "\n" +
		"  namespace: openshift-config-managed\n" +
		"  labels:\n" +
		"    release.openshift.io/verification-signatures: \"\"\n" +
		"binaryData:\n" +
		"  sha256-" + hex + "-1: " + base64.StdEncoding.EncodeToString(testSigs[0]) + "\n" +
		"  sha256-" + hex + "-2: " + base64.StdEncoding.EncodeToString(testSigs[1]) + "\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// What the cluster (and kubectl) decode must be the exact signature bytes.
func TestSignatureConfigMapAsKubernetesReadsIt(t *testing.T) {
	sigs := make([][]byte, 12) // more than 9: keys sort as text, order must not
	for i := range sigs {
		sigs[i] = append([]byte{byte(i)}, testSigs[i%len(testSigs)]...)
	}
	out, err := SignatureConfigMap(testDigest, sigs)
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := k8syaml.UnmarshalStrict(out, &cm); err != nil {
		t.Fatal(err)
	}
	name := "sha256-" + testDigest.Encoded()
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Name != name || cm.Namespace != "openshift-config-managed" {
		t.Errorf("object %s %s %s/%s", cm.APIVersion, cm.Kind, cm.Namespace, cm.Name)
	}
	if v, ok := cm.Labels[SignatureLabel]; !ok || v != "" || len(cm.Labels) != 1 {
		t.Errorf("labels %v", cm.Labels)
	}
	if len(cm.Data) != 0 || len(cm.BinaryData) != len(sigs) {
		t.Fatalf("data %d keys, binaryData %d keys", len(cm.Data), len(cm.BinaryData))
	}
	for i, s := range sigs {
		key := name + "-" + strconv.Itoa(i+1)
		if !bytes.Equal(cm.BinaryData[key], s) {
			t.Errorf("%s differs", key)
		}
	}
}

func TestSignatureConfigMapRoundTrip(t *testing.T) {
	out, err := SignatureConfigMap(testDigest, testSigs)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseSignatureConfigMap(out)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Digest != testDigest || len(rs.Signatures) != len(testSigs) {
		t.Fatalf("got %s with %d signatures", rs.Digest, len(rs.Signatures))
	}
	for i := range testSigs {
		if !bytes.Equal(rs.Signatures[i], testSigs[i]) {
			t.Errorf("signature %d differs", i+1)
		}
	}
}

func TestSignatureConfigMapRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		d    digest.Digest
		sigs [][]byte
	}{
		"no signatures":   {testDigest, nil},
		"empty signature": {testDigest, [][]byte{[]byte("x"), {}}},
		"sha512":          {digest.SHA512.FromString("x"), testSigs},
		"malformed":       {"sha256:abc", testSigs},
		"no algorithm":    {digest.Digest(strings.Repeat("ab", 32)), testSigs},
		"upper-case hex":  {digest.Digest("sha256:" + strings.Repeat("AB", 32)), testSigs},
	} {
		if _, err := SignatureConfigMap(c.d, c.sigs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSignatureConfigMapFile(t *testing.T) {
	if got, want := SignatureConfigMapFile(testDigest), "signature-sha256-abababababababab.yaml"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := SignatureConfigMapName(testDigest), "sha256-"+testDigest.Encoded(); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestParseSignatureConfigMapStrict(t *testing.T) {
	good, err := SignatureConfigMap(testDigest, testSigs[:2])
	if err != nil {
		t.Fatal(err)
	}
	name := "sha256-" + testDigest.Encoded()
	b64 := base64.StdEncoding.EncodeToString([]byte("sig"))
	edit := func(old, new string) string {
		if !strings.Contains(string(good), old) {
			t.Fatalf("%q not in the rendered ConfigMap", old)
		}
		return strings.Replace(string(good), old, new, 1)
	}
	for what, doc := range map[string]string{
		"empty":             "",
		"not yaml":          "{[",
		"unknown field":     edit("kind: ConfigMap\n", "kind: ConfigMap\ndata: {}\n"),
		"unknown metadata":  edit("  namespace:", "  uid: x\n  namespace:"),
		"second document":   string(good) + "---\nfoo: bar\n",
		"wrong kind":        edit("kind: ConfigMap", "kind: Secret"),
		"wrong apiVersion":  edit("apiVersion: v1", "apiVersion: v2"),
		"wrong namespace":   edit("namespace: openshift-config-managed", "namespace: default"),
		"no label":          edit("release.openshift.io/verification-signatures", "other"),
		"bad name":          edit("name: "+name, "name: sha256-abc"),
		"name sha512":       edit("name: sha256-", "name: sha512-"),
		"name no dash":      edit("name: "+name, "name: sha256"),
		"key of other name": edit(name+"-2", "sha256-"+strings.Repeat("cd", 32)+"-2"),
		"key not a number":  edit(name+"-2", name+"-two"),
		"key zero":          edit(name+"-1", name+"-0"),
		"key leading zero":  edit(name+"-2", name+"-02"),
		"key gap":           edit(name+"-2", name+"-3"),
		"bad base64":        edit(name+"-2: ", name+"-2: Zm9v="),
		"empty value":       edit(name+"-2: ", name+"-2: \"\" #"),
		"duplicate key":     string(good) + "  " + name + "-1: " + b64 + "\n",
		"no binaryData":     string(good[:strings.Index(string(good), "binaryData:")]),
		"too large":         string(good) + "# " + strings.Repeat("x", MaxSignatureConfigMapSize) + "\n",
	} {
		if rs, err := ParseSignatureConfigMap([]byte(doc)); err == nil {
			t.Errorf("%s: accepted, got %+v", what, rs)
		} else if !strings.HasPrefix(err.Error(), "signature ConfigMap: ") {
			t.Errorf("%s: error %q does not say what it read", what, err)
		}
	}
}

// Signatures come back in index order however the keys are laid out.
func TestParseSignatureConfigMapOrdersByIndex(t *testing.T) {
	name := "sha256-" + testDigest.Encoded()
	var doc strings.Builder
	doc.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name +
		"\n  namespace: openshift-config-managed\n  labels:\n    release.openshift.io/verification-signatures: whatever\nbinaryData:\n")
	for _, n := range []int{10, 2, 1, 9, 3, 4, 5, 6, 7, 8, 11} {
		doc.WriteString("  " + name + "-" + strconv.Itoa(n) + ": " + base64.StdEncoding.EncodeToString([]byte("sig"+strconv.Itoa(n))) + "\n")
	}
	rs, err := ParseSignatureConfigMap([]byte(doc.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range rs.Signatures {
		if string(s) != "sig"+strconv.Itoa(i+1) {
			t.Errorf("signature %d is %q", i+1, s)
		}
	}
}
