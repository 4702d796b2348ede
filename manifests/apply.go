package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply field manager ferry applies as.
const FieldManager = "ferry"

// Actions an apply reports.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
)

// Result is what applying one object did.
type Result struct {
	Kind      string
	Namespace string // empty for cluster-scoped objects
	Name      string
	// Action is ActionCreated, ActionConfigured or ActionUnchanged.
	Action string
}

func (r Result) String() string {
	name := r.Name
	if r.Namespace != "" {
		name = r.Namespace + "/" + r.Name
	}
	return r.Kind + " " + name + " " + r.Action
}

// ErrNotOpenShift is wrapped by the errors that mean the cluster lacks an
// OpenShift API ferry needs (a mirror set kind, the release-verification
// ConfigMap).
var ErrNotOpenShift = errors.New("not an OpenShift cluster")

// Applier talks to one cluster, as configured by a kubeconfig. It logs
// nothing: warnings the API server sends (deprecations) are kept for
// Warnings.
type Applier struct {
	// source names the kubeconfig in messages.
	source    string
	host      string
	timeout   time.Duration // bounds each request to the API server
	userAgent string
	namespace string
	dynamic   dynamic.Interface
	discovery discovery.DiscoveryInterface

	mapperMu sync.Mutex
	mapper   meta.RESTMapper // nil until first needed

	warnMu   sync.Mutex
	warnings []string
}

// NewApplier loads the cluster configuration the way kubectl does: the file
// kubeconfig if not empty (ferry's --kubeconfig), else the files listed in
// KUBECONFIG, else ~/.kube/config, else the in-cluster service account. It
// does not contact the cluster. Each request it later makes is bounded by
// DefaultTimeout, or by WithTimeout's.
func NewApplier(kubeconfig string, opts ...Option) (*Applier, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	source := kubeconfig
	if source == "" {
		source = strings.Join(rules.GetLoadingPrecedence(), string(filepath.ListSeparator))
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("no cluster configured in %s: pass --kubeconfig or set KUBECONFIG", source)
		}
		return nil, fmt.Errorf("loading kubeconfig %s: %w", source, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", source, err)
	}
	return newApplier(cfg, source, ns, opts...)
}

// DefaultTimeout bounds each request to the API server: a cluster reached
// over a slow link answers a ConfigMap read or a server-side apply in
// seconds; one that says nothing for a minute (a load balancer that
// accepts connections for a dead API server) has hung.
const DefaultTimeout = time.Minute

// Option tunes an Applier.
type Option func(*Applier)

// WithTimeout bounds each request to the API server, answer and body, to
// d; d <= 0 keeps DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(a *Applier) {
		if d > 0 {
			a.timeout = d
		}
	}
}

// WithUserAgent names the client to the API server (ferry/<version>); an
// empty agent keeps "ferry".
func WithUserAgent(agent string) Option {
	return func(a *Applier) {
		if agent != "" {
			a.userAgent = agent
		}
	}
}

// Client-side rate limits: ferry sends a handful of requests per object, and
// client-go's defaults (5 per second) would make applying a dozen objects
// take seconds. These are kubectl's.
const (
	clientQPS   = 50
	clientBurst = 300
)

func newApplier(cfg *rest.Config, source, namespace string, opts ...Option) (*Applier, error) {
	a := &Applier{source: source, host: cfg.Host, namespace: namespace, timeout: DefaultTimeout, userAgent: FieldManager}
	for _, o := range opts {
		o(a)
	}
	if a.namespace == "" {
		a.namespace = metav1.NamespaceDefault
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = a.userAgent
	cfg.Timeout = a.timeout
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = clientQPS, clientBurst
	}
	cfg.WarningHandler = warningRecorder{a}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", source, err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", source, err)
	}
	a.dynamic, a.discovery = dyn, disc
	return a, nil
}

// warningRecorder keeps the API server's warnings instead of logging them.
type warningRecorder struct{ a *Applier }

func (w warningRecorder) HandleWarningHeader(code int, agent, text string) {
	if code != 299 || text == "" {
		return
	}
	w.a.warnMu.Lock()
	defer w.a.warnMu.Unlock()
	w.a.warnings = append(w.a.warnings, text)
}

// Warnings returns the warnings the API server has sent so far (for example
// that a kind is deprecated), each once, and forgets them.
func (a *Applier) Warnings() []string {
	a.warnMu.Lock()
	defer a.warnMu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, w := range a.warnings {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	a.warnings = nil
	return out
}

// restMapping resolves a kind with the cluster's discovery information,
// read once per Applier and read again when a kind is not found (it may
// have been installed since).
func (a *Applier) restMapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	a.mapperMu.Lock()
	defer a.mapperMu.Unlock()
	fresh := false
	if a.mapper == nil {
		if err := a.discover(); err != nil {
			return nil, err
		}
		fresh = true
	}
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil || fresh || !meta.IsNoMatchError(err) {
		return m, err
	}
	if err := a.discover(); err != nil {
		return nil, err
	}
	return a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}

// discover reads the kinds the cluster serves. Partial failures (an
// aggregated API that is down) leave the groups that answered usable.
func (a *Applier) discover() error {
	groups, err := restmapper.GetAPIGroupResources(a.discovery)
	if err != nil {
		return err
	}
	a.mapper = restmapper.NewDiscoveryRESTMapper(groups)
	return nil
}

// Host is the API server's URL.
func (a *Applier) Host() string { return a.host }

// target is one decoded object and where it goes.
type target struct {
	obj      *unstructured.Unstructured
	resource dynamic.ResourceInterface
	ref      string // "Kind namespace/name" for messages
}

// Apply applies every object in objects (YAML or JSON, one or more documents
// each) with server-side apply as field manager "ferry", forcing ownership
// of the fields it sets. All objects are decoded and their kinds resolved
// before anything is sent, so a kind the cluster lacks fails the whole call.
// Results are in order; on error, they cover the objects applied so far.
func (a *Applier) Apply(ctx context.Context, objects [][]byte) ([]Result, error) {
	var targets []target
	for i, data := range objects {
		objs, err := decodeObjects(data)
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", i+1, err)
		}
		for _, obj := range objs {
			t, err := a.resolve(obj)
			if err != nil {
				return nil, err
			}
			targets = append(targets, t)
		}
	}
	results := make([]Result, 0, len(targets))
	for _, t := range targets {
		r, err := a.apply(ctx, t)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

func (a *Applier) resolve(obj *unstructured.Unstructured) (target, error) {
	gvk := obj.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return target{}, fmt.Errorf("object %q: apiVersion and kind are required", obj.GetName())
	}
	if obj.GetName() == "" {
		return target{}, fmt.Errorf("%s: metadata.name is required", gvk.Kind)
	}
	mapping, err := a.restMapping(gvk)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return target{}, fmt.Errorf("the cluster at %s has no kind %s in %s (is its CustomResourceDefinition installed?): %w",
				a.host, gvk.Kind, gvk.GroupVersion(), missingKind(gvk.Group))
		}
		return target{}, a.explain(err, "looking up kind "+gvk.Kind)
	}
	t := target{obj: obj}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(a.namespace)
		}
		t.resource = a.dynamic.Resource(mapping.Resource).Namespace(obj.GetNamespace())
		t.ref = gvk.Kind + " " + obj.GetNamespace() + "/" + obj.GetName()
	} else {
		obj.SetNamespace("")
		t.resource = a.dynamic.Resource(mapping.Resource)
		t.ref = gvk.Kind + " " + obj.GetName()
	}
	return t, nil
}

// missingKind is ErrNotOpenShift for OpenShift API groups and a plain
// "kind not served" error otherwise.
func missingKind(group string) error {
	if strings.HasSuffix(group, ".openshift.io") {
		return ErrNotOpenShift
	}
	return errors.New("kind not served")
}

func (a *Applier) apply(ctx context.Context, t target) (Result, error) {
	obj := t.obj
	res := Result{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
	before, err := t.resource.Get(ctx, obj.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		before = nil
	case err != nil:
		return res, a.explain(err, "reading "+t.ref)
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		return res, fmt.Errorf("encoding %s: %w", t.ref, err)
	}
	force := true
	after, err := t.resource.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
		FieldManager: FieldManager,
		Force:        &force,
	})
	if err != nil {
		return res, a.explain(err, "applying "+t.ref)
	}
	switch {
	case before == nil:
		res.Action = ActionCreated
	case before.GetResourceVersion() == after.GetResourceVersion():
		res.Action = ActionUnchanged
	default:
		res.Action = ActionConfigured
	}
	return res, nil
}

// explain turns API errors into messages that say what to do.
func (a *Applier) explain(err error, doing string) error {
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the cluster at %s refused the credentials in %s (log in again or check the token): %w",
			doing, a.host, a.source, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: the user in %s is not allowed to: %w", doing, a.source, err)
	case isNamespaceNotFound(err):
		return fmt.Errorf("%s: %w", doing, err)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		if isTimeout(err) {
			return fmt.Errorf("%s: the cluster at %s (from %s) did not answer within %s (timed out; --timeout raises the bound): %w",
				doing, a.host, a.source, a.timeout, err)
		}
		return fmt.Errorf("%s: reaching the cluster at %s (from %s): %w", doing, a.host, a.source, err)
	}
	if apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) {
		return fmt.Errorf("%s: the cluster at %s timed out (--timeout raises the bound, now %s): %w", doing, a.host, a.timeout, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// isTimeout reports a request that ran out of time on the client side.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}

// isNamespaceNotFound is a 404 about a namespace rather than the object.
func isNamespaceNotFound(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	s := status.Status()
	return s.Code == http.StatusNotFound && s.Details != nil && s.Details.Kind == "namespaces"
}

// decodeObjects reads every non-empty YAML or JSON document in data.
func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decoding YAML: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	if len(objs) == 0 {
		return nil, errors.New("no object in document")
	}
	return objs, nil
}

// Serves reports whether the cluster can take the object in data (its
// first document) now: its kind is served, as discovery says, and for a
// namespaced object its namespace exists. For objects only some clusters
// take: OLM v1's ClusterCatalog, an UpdateService where its operator is
// installed.
func (a *Applier) Serves(ctx context.Context, data []byte) (bool, error) {
	objs, err := decodeObjects(data)
	if err != nil {
		return false, err
	}
	if len(objs) == 0 {
		return false, errors.New("no object")
	}
	obj := objs[0]
	mapping, err := a.restMapping(obj.GroupVersionKind())
	switch {
	case meta.IsNoMatchError(err):
		return false, nil
	case err != nil:
		return false, a.explain(err, "looking up kind "+obj.GetKind())
	case mapping.Scope.Name() != meta.RESTScopeNameNamespace || obj.GetNamespace() == "":
		return true, nil
	}
	namespaces := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	_, err = a.dynamic.Resource(namespaces).Get(ctx, obj.GetNamespace(), metav1.GetOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, a.explain(err, "looking up namespace "+obj.GetNamespace())
}
