package serve

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var testNames = normalizeNames([]string{"localhost", "127.0.0.1", "registry.example"})

// readTLSFiles reads the CA and the serving certificate and key.
func readTLSFiles(t *testing.T, f *TLSFiles) (ca, cert, key []byte) {
	t.Helper()
	var out [3][]byte
	for i, name := range []string{f.CA, f.ServerCert, f.ServerKey} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = data
	}
	return out[0], out[1], out[2]
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSelfSignedReused: a second start reuses every file byte for byte; the
// serving certificate verifies under the CA for each name; the keys are
// private to the owner and the CA's directory holds nothing but the CA.
func TestSelfSignedReused(t *testing.T) {
	root, now, log := t.TempDir(), time.Now(), slog.New(slog.DiscardHandler)
	first, err := selfSigned(root, testNames, now, log)
	if err != nil {
		t.Fatal(err)
	}
	ca1, cert1, key1 := readTLSFiles(t, first)
	second, err := selfSigned(root, testNames, now.Add(time.Hour), log)
	if err != nil {
		t.Fatal(err)
	}
	ca2, cert2, key2 := readTLSFiles(t, second)
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(cert1, cert2) || !bytes.Equal(key1, key2) {
		t.Fatal("a restart with the same names made new TLS files")
	}
	pool := x509.NewCertPool()
	pool.AddCert(parseCert(t, ca1))
	for _, name := range testNames {
		if _, err := parseCert(t, cert1).Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("the serving certificate does not verify for %s: %v", name, err)
		}
	}
	for _, key := range []string{first.ServerKey, filepath.Join(first.CertDir, privateDirName, caKeyName)} {
		if info, err := os.Stat(key); err != nil || info.Mode().Perm() != privateFileMode {
			t.Errorf("%s: %v, mode %v; want %v", key, err, info.Mode().Perm(), os.FileMode(privateFileMode))
		}
	}
	entries, err := os.ReadDir(first.CertDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && e.Name() != caCertName {
			t.Errorf("the --cert-dir directory %s holds %s besides the CA", first.CertDir, e.Name())
		}
	}
}

// TestSelfSignedRenewed: new names, or a start near the serving
// certificate's end, make a new serving certificate under the same CA.
func TestSelfSignedRenewed(t *testing.T) {
	root, now, log := t.TempDir(), time.Now(), slog.New(slog.DiscardHandler)
	first, err := selfSigned(root, testNames, now, log)
	if err != nil {
		t.Fatal(err)
	}
	ca1, cert1, _ := readTLSFiles(t, first)
	more := normalizeNames(append(slices.Clone(testNames), "mirror.example", "192.0.2.7"))
	second, err := selfSigned(root, more, now, log)
	if err != nil {
		t.Fatal(err)
	}
	ca2, cert2, _ := readTLSFiles(t, second)
	if !bytes.Equal(ca1, ca2) {
		t.Error("new names made a new CA")
	}
	if bytes.Equal(cert1, cert2) || !slices.Equal(certNames(parseCert(t, cert2)), more) {
		t.Errorf("new names: the serving certificate holds %v, want %v", certNames(parseCert(t, cert2)), more)
	}
	late := now.Add(serverCertValidity - serverCertRenewBefore + time.Hour)
	third, err := selfSigned(root, more, late, log)
	if err != nil {
		t.Fatal(err)
	}
	ca3, cert3, _ := readTLSFiles(t, third)
	if !bytes.Equal(ca1, ca3) {
		t.Error("renewing the serving certificate made a new CA")
	}
	if bytes.Equal(cert2, cert3) || !parseCert(t, cert3).NotAfter.After(late.Add(serverCertRenewBefore)) {
		t.Error("a start near the serving certificate's end kept it")
	}
}

// TestSelfSignedNeverRemakesCA: with the CA's key gone, the start fails
// and the CA clients trust stays as it was.
func TestSelfSignedNeverRemakesCA(t *testing.T) {
	root, now, log := t.TempDir(), time.Now(), slog.New(slog.DiscardHandler)
	first, err := selfSigned(root, testNames, now, log)
	if err != nil {
		t.Fatal(err)
	}
	ca1, _, _ := readTLSFiles(t, first)
	if err := os.Remove(filepath.Join(first.CertDir, privateDirName, caKeyName)); err != nil {
		t.Fatal(err)
	}
	if _, err := selfSigned(root, testNames, now, log); err == nil {
		t.Fatal("a CA without its key was accepted")
	}
	ca2, err := os.ReadFile(first.CA)
	if err != nil || !bytes.Equal(ca1, ca2) {
		t.Fatalf("the CA certificate changed (%v)", err)
	}
}
