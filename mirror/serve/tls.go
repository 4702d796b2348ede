package serve

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Lifetimes of the self-signed certificates.
const (
	// caValidity is the CA's lifetime: clients trust it once, so it
	// outlives many bastion updates; it is never made again while its
	// files exist.
	caValidity = 10 * 365 * 24 * time.Hour
	// serverCertValidity is the serving certificate's lifetime. It is
	// made again at start when it nears its end, under the same CA, so
	// clients notice nothing.
	serverCertValidity = 2 * 365 * 24 * time.Hour
	// serverCertRenewBefore: a start this close to the serving
	// certificate's end makes a new one, so that a server restarted now
	// and then (an update, a reboot) never serves an expired one.
	serverCertRenewBefore = 60 * 24 * time.Hour
	// clockSkew backdates certificates, so a client whose clock is a
	// little behind does not see them as not yet valid.
	clockSkew = time.Hour
	// serialBits is the size of the random serial numbers (RFC 5280
	// allows up to 20 octets).
	serialBits = 128
)

// Files of the self-signed TLS, under Root/tls. The CA's certificate is
// alone in its directory: containers tools' --cert-dir reads every *.crt
// there as a CA and refuses a *.key without a client *.cert beside it.
const (
	tlsDirName       = "tls"
	privateDirName   = "private"
	caCertName       = "ca.crt"
	caKeyName        = "ca.key"
	serverCertName   = "server.crt"
	serverKeyName    = "server.key"
	privateKeyPEM    = "PRIVATE KEY"
	certificatePEM   = "CERTIFICATE"
	privateFileMode  = 0o600
	privateDirMode   = 0o700
	publicFileMode   = 0o644
	publicDirMode    = 0o755
	caCommonNameBase = "ferry serve CA"
)

// TLSFiles are the self-signed TLS files of a root.
type TLSFiles struct {
	// CA is the CA's certificate: what clients trust.
	CA string
	// CertDir is CA's directory, holding nothing else: for --cert-dir,
	// or to copy into /etc/containers/certs.d/HOST:PORT/.
	CertDir string
	// ServerCert and ServerKey are the serving certificate and its key.
	ServerCert, ServerKey string
	// Names are the DNS names and IP addresses the serving certificate
	// is valid for.
	Names []string
}

// SelfSignedTLS makes or reuses the CA and serving certificate of root for
// this host's names (its hostname, localhost and every address of its
// interfaces) plus names. The CA is made once and never replaced while
// its files exist; the serving certificate is made again when the names
// changed, it nears its end, or it does not match the CA.
func SelfSignedTLS(root string, names []string, log *slog.Logger) (*TLSFiles, error) {
	want, err := hostNames(names)
	if err != nil {
		return nil, err
	}
	return selfSigned(root, want, time.Now(), log)
}

func selfSigned(root string, names []string, now time.Time, log *slog.Logger) (*TLSFiles, error) {
	dir := filepath.Join(root, tlsDirName)
	private := filepath.Join(dir, privateDirName)
	if err := os.MkdirAll(dir, publicDirMode); err != nil {
		return nil, fmt.Errorf("TLS directory: %w", err)
	}
	if err := os.MkdirAll(private, privateDirMode); err != nil {
		return nil, fmt.Errorf("TLS directory: %w", err)
	}
	files := &TLSFiles{
		CA: filepath.Join(dir, caCertName), CertDir: dir, Names: names,
		ServerCert: filepath.Join(private, serverCertName), ServerKey: filepath.Join(private, serverKeyName),
	}
	caKeyFile := filepath.Join(private, caKeyName)
	ca, caKey, err := loadOrMakeCA(files.CA, caKeyFile, now, log)
	if err != nil {
		return nil, err
	}
	reason := serverCertStale(files.ServerCert, files.ServerKey, ca, names, now)
	if reason == "" {
		return files, nil
	}
	log.Info("making the serving certificate", "reason", reason, "names", names, "ca", files.CA)
	certPEM, keyPEM, err := makeServerCert(ca, caKey, names, now)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(files.ServerKey, keyPEM, privateFileMode); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(files.ServerCert, certPEM, publicFileMode); err != nil {
		return nil, err
	}
	return files, nil
}

// loadOrMakeCA reads the CA, or makes it when neither of its files exists.
// A CA certificate without its key (or the reverse) is an error, never a
// reason to make a new CA that clients do not trust.
func loadOrMakeCA(certFile, keyFile string, now time.Time, log *slog.Logger) (*x509.Certificate, crypto.Signer, error) {
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	if errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist) {
		certPEM, keyPEM, err := makeCA(now)
		if err != nil {
			return nil, nil, err
		}
		if err := writeFileAtomic(keyFile, keyPEM, privateFileMode); err != nil {
			return nil, nil, err
		}
		if err := writeFileAtomic(certFile, certPEM, publicFileMode); err != nil {
			return nil, nil, err
		}
		log.Info("made a CA for the registry's TLS", "ca", certFile, "valid_until", now.Add(caValidity).Format(time.DateOnly))
	}
	cert, key, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("registry CA (it is never made again while one of its files exists; "+
			"remove both %s and %s to start over, and trust the new CA): %w", certFile, keyFile, err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("registry CA %s is not a CA certificate", certFile)
	}
	return cert, key, nil
}

// serverCertStale says why the serving certificate must be made again, or
// "" if it can be reused.
func serverCertStale(certFile, keyFile string, ca *x509.Certificate, names []string, now time.Time) string {
	cert, _, err := loadPair(certFile, keyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "none yet"
	case err != nil:
		return err.Error()
	case cert.CheckSignatureFrom(ca) != nil:
		return "not signed by the CA"
	case now.Add(serverCertRenewBefore).After(cert.NotAfter):
		return "ends " + cert.NotAfter.Format(time.DateOnly)
	case !slices.Equal(certNames(cert), names):
		return "the host's names changed"
	}
	return ""
}

// hostNames are the sorted, unique names a serving certificate of this
// host holds: the hostname, localhost, every interface address (loopback
// too) and extra (DNS names or IP addresses).
func hostNames(extra []string) ([]string, error) {
	names := append([]string{"localhost"}, extra...)
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list the host's addresses for its certificate: %w", err)
	}
	for _, a := range addrs {
		if ipNet, ok := a.(*net.IPNet); ok {
			names = append(names, ipNet.IP.String())
		}
	}
	return normalizeNames(names), nil
}

// normalizeNames writes IP addresses canonically, sorts and deduplicates.
func normalizeNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		if n != "" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// certNames are the names a certificate holds, as normalizeNames writes them.
func certNames(cert *x509.Certificate) []string {
	names := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return normalizeNames(names)
}

func makeCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: caCommonNameBase + " " + host, Organization: []string{"ferry"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return makeCert(tmpl, nil, nil)
}

func makeServerCert(ca *x509.Certificate, caKey crypto.Signer, names []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: host, Organization: []string{"ferry"}},
		NotBefore:   now.Add(-clockSkew),
		NotAfter:    now.Add(serverCertValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return makeCert(tmpl, ca, caKey)
}

// makeCert makes a P-256 key and a certificate of tmpl for it, signed by
// parent's key (self-signed when parent is nil), both PEM-encoded.
func makeCert(tmpl, parent *x509.Certificate, parentKey crypto.Signer) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("make a key: %w", err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), serialBits)); err != nil {
		return nil, nil, fmt.Errorf("make a serial number: %w", err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("make certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: certificatePEM, Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: privateKeyPEM, Bytes: keyDER}), nil
}

// loadPair reads a PEM certificate and its PKCS #8 key and checks that they
// belong together.
func loadPair(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	cert, err := readPEM(certFile, certificatePEM)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certFile, err)
	}
	keyDER, err := readPEM(keyFile, privateKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not a signing key", keyFile)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil || !bytes.Equal(pub, c.RawSubjectPublicKeyInfo) {
		return nil, nil, fmt.Errorf("key %s does not belong to certificate %s", keyFile, certFile)
	}
	return c, signer, nil
}

// maxPEMFile caps what is read of a certificate or key file: one P-256
// certificate or key is under 1 KiB.
const maxPEMFile = 64 << 10

func readPEM(file, blockType string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("%s is over %d bytes: not one PEM %s", file, maxPEMFile, blockType)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != blockType {
		return nil, fmt.Errorf("%s holds no PEM %s", file, blockType)
	}
	return block.Bytes, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, so a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
