package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeBinDirEnv names the directory holding the kube-apiserver and etcd
// binaries that `make kube-bins` builds (`make test` sets it).
const KubeBinDirEnv = "FERRY_KUBE_BIN_DIR"

const (
	// kubeStartTimeout bounds each wait for etcd or the API server to answer;
	// the API server is ready after ~5 s on 2 cores, but not under -race
	// load from parallel test binaries.
	kubeStartTimeout = 2 * time.Minute
	// kubeStopTimeout is how long a stopped process gets to exit on SIGTERM
	// before it is killed.
	kubeStopTimeout = 20 * time.Second
	// kubePollInterval paces readiness polls.
	kubePollInterval = 100 * time.Millisecond
	// kubeStartAttempts covers the rare free port taken by another process
	// between choosing it and the server binding it.
	kubeStartAttempts = 3
	// kubeUser is the token file's user, a member of system:masters.
	kubeUser = "ferry-admin"
)

// Kube is a real kube-apiserver backed by a real etcd, both processes on
// 127.0.0.1 at free ports, with their data in t.TempDir(). They are stopped
// when the test that started them ends.
type Kube struct {
	// Kubeconfig is a kubeconfig file for the admin user (system:masters),
	// trusting the API server's self-signed serving certificate.
	Kubeconfig string
	// Host is the API server's URL, "https://127.0.0.1:<port>".
	Host string
	// Token is the admin user's bearer token.
	Token string
	// CAFile is the API server's serving certificate (PEM), the CA clients trust.
	CAFile string

	dir    string
	config *rest.Config
	procs  []*kubeProcess // etcd, then the API server that answered
}

// StartKube starts etcd and kube-apiserver and waits until /readyz answers
// 200. The binaries come from $FERRY_KUBE_BIN_DIR; without it the test is
// skipped (run `make kube-bins`, or `make test`), or fails when $CI is set.
func StartKube(t testing.TB) *Kube {
	t.Helper()
	bins := builtBinaryEnv(t, KubeBinDirEnv, "build the API server with `make kube-bins` and set "+
		KubeBinDirEnv+"=.cache/kube/<hash> (`make test` does both)")
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bins, b)); err != nil {
			t.Fatalf("%s: %v (run `make kube-bins`)", KubeBinDirEnv, err)
		}
	}

	dir := t.TempDir()
	etcdURL, etcd := kubeStartEtcd(t, filepath.Join(bins, "etcd"), dir)

	k := &Kube{dir: dir, Token: kubeRandomHex(t, 16), procs: []*kubeProcess{etcd}}
	tokens := filepath.Join(dir, "tokens.csv")
	kubeWriteFile(t, tokens, fmt.Sprintf("%s,%s,%s-uid,\"system:masters\"\n", k.Token, kubeUser, kubeUser))
	saKey := filepath.Join(dir, "sa.key")
	kubeWriteFile(t, saKey, string(kubeServiceAccountKey(t)))
	certDir := filepath.Join(dir, "certs")
	k.CAFile = filepath.Join(certDir, "apiserver.crt")

	var lastErr error
	for attempt := 1; attempt <= kubeStartAttempts; attempt++ {
		port := FreePort(t)
		k.Host = "https://127.0.0.1:" + strconv.Itoa(port)
		p := kubeStartProcess(t, filepath.Join(bins, "kube-apiserver"), filepath.Join(dir, fmt.Sprintf("kube-apiserver-%d.log", attempt)),
			"--etcd-servers="+etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port="+strconv.Itoa(port),
			"--cert-dir="+certDir,
			"--token-auth-file="+tokens,
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-account-key-file="+saKey,
			"--service-account-signing-key-file="+saKey,
		)
		lastErr = p.waitReady(func(ctx context.Context) error { return k.ready(ctx) })
		if lastErr == nil {
			k.procs = append(k.procs, p)
			break
		}
		p.stop(t)
		if !p.portTaken() {
			t.Fatalf("kube-apiserver: %v\n%s", lastErr, p.logTail())
		}
	}
	if lastErr != nil {
		t.Fatalf("kube-apiserver: %v", lastErr)
	}

	k.config = &rest.Config{
		Host:            k.Host,
		BearerToken:     k.Token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile},
	}
	k.Kubeconfig = k.writeKubeconfig(t, "kubeconfig", k.Token)
	return k
}

// ready is nil once /readyz answers 200 to the admin token.
func (k *Kube) ready(ctx context.Context) error {
	ca, err := os.ReadFile(k.CAFile)
	if err != nil {
		return err // not written yet
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("%s: no certificate", k.CAFile)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.Host+"/readyz", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+k.Token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// RESTConfig is a client configuration for the admin user.
func (k *Kube) RESTConfig() *rest.Config { return rest.CopyConfig(k.config) }

// Client is a typed clientset for the admin user.
func (k *Kube) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(k.RESTConfig())
	if err != nil {
		t.Fatalf("kube client: %v", err)
	}
	return c
}

// BadTokenKubeconfig writes a kubeconfig for the same cluster whose token the
// API server does not know, and returns its path.
func (k *Kube) BadTokenKubeconfig(t testing.TB) string {
	t.Helper()
	return k.writeKubeconfig(t, "kubeconfig-bad-token", "not-"+k.Token)
}

func (k *Kube) writeKubeconfig(t testing.TB, name, token string) string {
	t.Helper()
	ca, err := os.ReadFile(k.CAFile)
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"ferry-test": {Server: k.Host, CertificateAuthorityData: ca}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{kubeUser: {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{"ferry-test": {Cluster: "ferry-test", AuthInfo: kubeUser}},
		CurrentContext: "ferry-test",
	}
	path := filepath.Join(k.dir, name)
	if err := clientcmd.WriteToFile(cfg, path); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	return path
}

// CreateNamespace creates namespace name (an existing one is fine).
func (k *Kube) CreateNamespace(t testing.TB, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := k.Client(t).CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// openShiftCRDs are the OpenShift (and OLM) kinds ferry applies or reads,
// reduced to what the API server needs to store them: any status (no status
// subresource: a test writes status with the object) and any spec, except
// for the kinds kube_olm.go gives a structural schema.
var openShiftCRDs = []struct {
	group, version, kind, plural string
	namespaced                   bool
}{
	{"config.openshift.io", "v1", "ClusterVersion", "clusterversions", false},
	{"config.openshift.io", "v1", "ImageDigestMirrorSet", "imagedigestmirrorsets", false},
	{"config.openshift.io", "v1", "ImageTagMirrorSet", "imagetagmirrorsets", false},
	{"operator.openshift.io", "v1alpha1", "ImageContentSourcePolicy", "imagecontentsourcepolicies", false},
	{"operators.coreos.com", "v1alpha1", "Subscription", "subscriptions", true},
	{"operators.coreos.com", "v1alpha1", "ClusterServiceVersion", "clusterserviceversions", true},
	{"operators.coreos.com", "v1alpha1", "CatalogSource", "catalogsources", true},
	{"olm.operatorframework.io", "v1", "ClusterCatalog", "clustercatalogs", false},
	{"config.openshift.io", "v1", "OperatorHub", "operatorhubs", false},
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallOpenShiftCRDs installs minimal CustomResourceDefinitions for
// ClusterVersion, ImageDigestMirrorSet, ImageTagMirrorSet
// (config.openshift.io/v1), ImageContentSourcePolicy
// (operator.openshift.io/v1alpha1), OLM's Subscription, ClusterServiceVersion
// and CatalogSource (operators.coreos.com/v1alpha1, namespaced), OLM v1's
// ClusterCatalog (olm.operatorframework.io/v1) and OperatorHub
// (config.openshift.io/v1), and waits until discovery serves them all.
// Their status takes anything, and so does their spec except for
// CatalogSource, ClusterCatalog and OperatorHub (see kube_olm.go).
func (k *Kube) InstallOpenShiftCRDs(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubeStartTimeout)
	defer cancel()
	dyn, err := dynamic.NewForConfig(k.RESTConfig())
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(k.RESTConfig())
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	anything := map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}
	for _, c := range testBedCRDs() {
		scope := "Cluster"
		if c.namespaced {
			scope = "Namespaced"
		}
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1",
			"kind":       "CustomResourceDefinition",
			"metadata":   map[string]any{"name": c.plural + "." + c.group},
			"spec": map[string]any{
				"group": c.group,
				"scope": scope,
				"names": map[string]any{
					"kind":     c.kind,
					"listKind": c.kind + "List",
					"plural":   c.plural,
					"singular": strings.ToLower(c.kind),
				},
				"versions": []any{map[string]any{
					"name":    c.version,
					"served":  true,
					"storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{
						"type": "object",
						"properties": map[string]any{
							"spec":   specSchema(c.kind, anything),
							"status": anything,
						},
					}},
				}},
			},
		}}
		if _, err := dyn.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", c.kind, err)
		}
	}
	for _, c := range testBedCRDs() {
		err := kubePoll(ctx, func(ctx context.Context) error {
			list, err := disc.ServerResourcesForGroupVersion(c.group + "/" + c.version)
			if err != nil {
				return err
			}
			for _, r := range list.APIResources {
				if r.Kind == c.kind {
					return nil
				}
			}
			return fmt.Errorf("kind %s not served yet", c.kind)
		})
		if err != nil {
			t.Fatalf("CRD %s: %v", c.kind, err)
		}
	}
}

// kubeStartEtcd starts etcd on free ports and returns its client URL.
func kubeStartEtcd(t testing.TB, bin, dir string) (string, *kubeProcess) {
	t.Helper()
	var lastErr error
	for attempt := 1; attempt <= kubeStartAttempts; attempt++ {
		client := "http://127.0.0.1:" + strconv.Itoa(FreePort(t))
		peer := "http://127.0.0.1:" + strconv.Itoa(FreePort(t))
		p := kubeStartProcess(t, bin, filepath.Join(dir, fmt.Sprintf("etcd-%d.log", attempt)),
			"--data-dir="+filepath.Join(dir, fmt.Sprintf("etcd-%d", attempt)),
			"--listen-client-urls="+client,
			"--advertise-client-urls="+client,
			"--listen-peer-urls="+peer,
			"--unsafe-no-fsync",
			"--log-level=warn",
		)
		lastErr = p.waitReady(func(ctx context.Context) error { return kubeEtcdHealthy(ctx, client) })
		if lastErr == nil {
			return client, p
		}
		p.stop(t)
		if !p.portTaken() {
			t.Fatalf("etcd: %v\n%s", lastErr, p.logTail())
		}
	}
	t.Fatalf("etcd: %v", lastErr)
	return "", nil
}

func kubeEtcdHealthy(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"health":"true"`)) {
		return fmt.Errorf("/health: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// kubeProcess is a started etcd or kube-apiserver.
type kubeProcess struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result, set before exited is closed
}

// kubeStartProcess starts bin with args, its output going to logFile, and
// registers its stop with t.Cleanup. On Linux the process gets SIGKILL if the
// test binary dies first (a panic or -timeout skips cleanups); it is started
// from a goroutine locked to its OS thread, which lives until the process
// exits, because that parent-death signal follows the thread, not the process.
func kubeStartProcess(t testing.TB, bin, logFile string, args ...string) *kubeProcess {
	t.Helper()
	return kubeStartProcessEnv(t, bin, logFile, nil, args...)
}

// kubeStartProcessEnv is kubeStartProcess with env (KEY=value) added to
// the test's environment.
func kubeStartProcessEnv(t testing.TB, bin, logFile string, env []string, args ...string) *kubeProcess {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	p := &kubeProcess{name: filepath.Base(bin), log: logFile, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout = out
	p.cmd.Stderr = out
	dieWithParent(p.cmd)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		_ = out.Close()
		t.Fatalf("start %s: %v", p.name, err)
	}
	t.Cleanup(func() {
		p.stop(t)
		if err := out.Close(); err != nil {
			t.Errorf("%s log: %v", p.name, err)
		}
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", p.name, p.logTail())
		}
	})
	return p
}

// waitReady polls ready until it returns nil, the process exits, or
// kubeStartTimeout passes.
func (p *kubeProcess) waitReady(ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), kubeStartTimeout)
	defer cancel()
	err := kubePoll(ctx, func(ctx context.Context) error {
		select {
		case <-p.exited:
			return kubeStopPolling{fmt.Errorf("%s exited: %v", p.name, p.err)}
		default:
		}
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return ready(reqCtx)
	})
	return err
}

// stop sends SIGTERM, then SIGKILL after kubeStopTimeout, and waits for the
// process to exit. Stopping twice is harmless.
func (p *kubeProcess) stop(t testing.TB) {
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("stop %s: %v", p.name, err)
	}
	timer := time.NewTimer(kubeStopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		t.Errorf("%s did not stop within %s of SIGTERM: killing it", p.name, kubeStopTimeout)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// portTaken tells whether the process failed because its port was taken.
func (p *kubeProcess) portTaken() bool {
	b, _ := os.ReadFile(p.log)
	return bytes.Contains(b, []byte("address already in use"))
}

// logTail is the end of the process's output, for failure messages.
func (p *kubeProcess) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	const max = 8 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// kubeStopPolling makes kubePoll return its error at once.
type kubeStopPolling struct{ error }

// kubePoll calls f every kubePollInterval until it returns nil, returns
// kubeStopPolling, or ctx ends; then it returns f's last error.
func kubePoll(ctx context.Context, f func(context.Context) error) error {
	tick := time.NewTicker(kubePollInterval)
	defer tick.Stop()
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		var stop kubeStopPolling
		if errors.As(err, &stop) {
			return stop.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// kubeServiceAccountKey is a fresh RSA key in PEM, for signing (and
// verifying) service-account tokens.
func kubeServiceAccountKey(t testing.TB) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("service-account key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

func kubeRandomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func kubeWriteFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// builtBinaryEnv is the value of env, which names a test binary that make
// builds. Without it the test is skipped with how to build it, or fails
// under CI, where make always sets it.
func builtBinaryEnv(t testing.TB, env, howTo string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		msg := env + " is not set: " + howTo
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return v
}
