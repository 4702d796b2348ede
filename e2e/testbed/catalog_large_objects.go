package testbed

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/operator-framework/operator-registry/alpha/declcfg"
)

// obj and arr build the Kubernetes objects a bundle carries, marshalled
// with their keys sorted, as deterministic as the seed.
type (
	obj = map[string]any
	arr = []any
)

// largeWords make the prose of descriptions: operator documentation's
// vocabulary, so that it compresses about as real text does.
var largeWords = strings.Fields(`the operator manages deploys configures upgrades monitors scales backs restores
cluster clusters instance instances node nodes pod pods namespace namespaces resource resources custom
application applications workload workloads storage volume volumes network policy policies secret secrets
certificate certificates service services route routes gateway ingress egress traffic metrics logs alerts
dashboard console user users role roles access control automated automatically lifecycle day two operations
high availability replication replicas failover recovery disaster backup snapshot schedule retention tenant
tenants multi hybrid cloud edge deployment rolling update version versions compatible supported platform
openshift kubernetes container image images registry mirror disconnected environment environments
configuration settings default defaults field value values specified when if is are be can will must should
for with to of in on by from and or not a an this that each every all any new existing required optional
enables provides allows ensures supports integrates secure securely fast reliable consistent observability`)

// largeProfile is what every bundle of one package shares: its prose,
// icon, permissions, and the fields of its CRDs.
type largeProfile struct {
	displayName, summary, description string
	icon                              []byte
	keywords                          []string
	categories                        string
	rules                             arr
	fields                            map[string][]crdField // by kind
	createdAt                         time.Time
}

type crdField struct {
	name, typ, description string
}

func drawProfile(r *rand.Rand, p *largePackage) *largeProfile {
	prof := &largeProfile{
		displayName: titleWords(strings.ReplaceAll(p.ns, "-", " ")) + " Operator",
		summary:     sentence(r, 10, 20),
		categories:  []string{"Storage", "Networking", "Security", "Monitoring", "Integration & Delivery", "Database", "AI/Machine Learning"}[r.IntN(7)],
		fields:      map[string][]crdField{},
		createdAt:   time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(365*24)) * time.Hour),
	}
	var d strings.Builder
	fmt.Fprintf(&d, "## About\n\n")
	for range 1 + r.IntN(3) {
		d.WriteString(paragraph(r, 2+r.IntN(3)) + "\n\n")
	}
	d.WriteString("## Features\n\n")
	for range 2 + r.IntN(4) {
		d.WriteString("* " + sentence(r, 5, 12) + "\n")
	}
	fmt.Fprintf(&d, "\n## Documentation\n\nSee https://docs.example.com/%s for installing and using %s.\n", p.ns, prof.displayName)
	prof.description = d.String()
	// An icon is a PNG: a header, then data that does not compress.
	prof.icon = append([]byte("\x89PNG\r\n\x1a\n"), randomBytes(r, 200+r.IntN(700))...)
	for range 3 + r.IntN(4) {
		prof.keywords = append(prof.keywords, largeWords[r.IntN(len(largeWords))])
	}
	for range 3 + r.IntN(6) {
		prof.rules = append(prof.rules, obj{
			"apiGroups": arr{[]string{"", "apps", "batch", "rbac.authorization.k8s.io", "monitoring.coreos.com", p.ns + ".example.com"}[r.IntN(6)]},
			"resources": arr{largeWords[r.IntN(len(largeWords))] + "s", largeWords[r.IntN(len(largeWords))] + "s/status"},
			"verbs":     arr{"create", "delete", "get", "list", "patch", "update", "watch"}[:3+r.IntN(5)],
		})
	}
	for _, kd := range p.kinds {
		for range kd.fields + len(p.minors) {
			prof.fields[kd.kind] = append(prof.fields[kd.kind], crdField{
				name:        lowerWord(titleWords(largeWords[r.IntN(len(largeWords))] + " " + largeWords[r.IntN(len(largeWords))])),
				typ:         []string{"string", "string", "integer", "boolean", "object", "array"}[r.IntN(6)],
				description: sentence(r, 5, 14),
			})
		}
	}
	return prof
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sentence(r *rand.Rand, minWords, maxWords int) string {
	n := minWords + r.IntN(maxWords-minWords+1)
	words := make([]string, n)
	for i := range words {
		words[i] = largeWords[r.IntN(len(largeWords))]
	}
	return titleWord(strings.Join(words, " ")) + "."
}

func paragraph(r *rand.Rand, sentences int) string {
	out := make([]string, sentences)
	for i := range out {
		out[i] = sentence(r, 8, 18)
	}
	return strings.Join(out, " ")
}

func titleWords(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = titleWord(w)
	}
	return strings.Join(words, "")
}

// crd is kd's CustomResourceDefinition with its first n spec fields, as
// controller-gen writes one.
func (prof *largeProfile) crd(kd largeKind, n int) obj {
	fields := prof.fields[kd.kind]
	spec := obj{}
	for _, f := range fields[:min(n, len(fields))] {
		spec[f.name] = obj{"description": f.description, "type": f.typ}
	}
	// Conditions as a schema of their own, as many operators write them,
	// rather than metav1.Condition's long one.
	condition := obj{"type": "object", "x-kubernetes-preserve-unknown-fields": true}
	schema := obj{
		"description": kd.kind + " is the Schema for the " + kd.plural + " API.",
		"type":        "object",
		"properties": obj{
			"apiVersion": obj{"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.", "type": "string"},
			"kind":       obj{"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.", "type": "string"},
			"metadata":   obj{"type": "object"},
			"spec":       obj{"description": kd.kind + "Spec defines the desired state of " + kd.kind + ".", "type": "object", "properties": spec},
			"status": obj{"description": kd.kind + "Status defines the observed state of " + kd.kind + ".", "type": "object", "properties": obj{
				"conditions":         obj{"type": "array", "items": condition},
				"observedGeneration": obj{"format": "int64", "type": "integer"},
			}},
		},
	}
	return obj{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   obj{"annotations": obj{"controller-gen.kubebuilder.io/version": "v0.14.0"}, "creationTimestamp": nil, "name": kd.plural + "." + kd.group},
		"spec": obj{
			"group": kd.group,
			"names": obj{"kind": kd.kind, "listKind": kd.kind + "List", "plural": kd.plural, "singular": strings.ToLower(kd.kind)},
			"scope": "Namespaced",
			"versions": arr{obj{
				"name": kd.version, "served": true, "storage": true, "subresources": obj{"status": obj{}},
				"schema": obj{"openAPIV3Schema": schema},
			}},
		},
		"status": obj{"acceptedNames": obj{"kind": "", "plural": ""}, "conditions": nil, "storedVersions": nil},
	}
}

// csv is the ClusterServiceVersion of p's bundle at index k, whose
// relatedImages are images (itself first, then its operator).
func (prof *largeProfile) csv(p *largePackage, k int, images []declcfg.RelatedImage) (obj, error) {
	v := p.versions[k]
	operator := images[1].Image
	var owned, examples, related, env arr
	for _, kd := range p.kinds {
		owned = append(owned, obj{
			"name": kd.plural + "." + kd.group, "kind": kd.kind, "version": kd.version, "displayName": kd.kind,
			"description": "Represents a " + kd.kind + " managed by the " + prof.displayName + ".",
			"specDescriptors": arr{obj{"path": prof.fields[kd.kind][0].name, "displayName": titleWord(prof.fields[kd.kind][0].name),
				"description": prof.fields[kd.kind][0].description, "x-descriptors": arr{"urn:alm:descriptor:com.tectonic.ui:text"}}},
		})
		examples = append(examples, obj{"apiVersion": kd.group + "/" + kd.version, "kind": kd.kind,
			"metadata": obj{"name": "example-" + strings.ToLower(kd.kind)}, "spec": obj{prof.fields[kd.kind][0].name: "example"}})
	}
	for _, im := range images[1:] {
		related = append(related, obj{"name": im.Name, "image": im.Image})
		env = append(env, obj{"name": "RELATED_IMAGE_" + strings.ToUpper(strings.ReplaceAll(im.Name, "-", "_")), "value": im.Image})
	}
	almExamples, err := json.Marshal(examples)
	if err != nil {
		return nil, fmt.Errorf("alm-examples: %w", err)
	}
	annotations := obj{
		"alm-examples": string(almExamples), "capabilities": "Seamless Upgrades", "categories": prof.categories,
		"containerImage": operator, "createdAt": prof.createdAt.Add(time.Duration(k) * 240 * time.Hour).Format(time.RFC3339),
		"description": prof.summary, "operatorframework.io/suggested-namespace": p.ns,
		"operators.openshift.io/valid-subscription":      `["OpenShift Container Platform", "OpenShift Platform Plus"]`,
		"features.operators.openshift.io/disconnected":   "true",
		"features.operators.openshift.io/fips-compliant": "true",
		"features.operators.openshift.io/proxy-aware":    "true",
		"repository": "https://github.com/example/" + p.ns, "support": "Red Hat",
	}
	if sr := p.skipRange(k); sr != "" {
		annotations["olm.skipRange"] = sr
	}
	spec := obj{
		"displayName": prof.displayName, "description": prof.description, "version": v, "maturity": "stable",
		"provider": obj{"name": "Red Hat"}, "keywords": prof.keywords, "minKubeVersion": "1.25.0",
		"maintainers": arr{obj{"name": "Red Hat", "email": p.ns + "@example.com"}},
		"links":       arr{obj{"name": "Documentation", "url": "https://docs.example.com/" + p.ns}},
		"icon":        arr{obj{"base64data": prof.icon, "mediatype": "image/png"}},
		"installModes": arr{obj{"type": "OwnNamespace", "supported": true}, obj{"type": "SingleNamespace", "supported": true},
			obj{"type": "MultiNamespace", "supported": false}, obj{"type": "AllNamespaces", "supported": true}},
		"customresourcedefinitions": obj{"owned": owned},
		"install":                   obj{"strategy": "deployment", "spec": prof.installSpec(p, operator, env)},
		"relatedImages":             related,
	}
	if k > 0 {
		spec["replaces"] = p.bundleName(p.versions[k-1])
	}
	return obj{
		"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion",
		"metadata": obj{"name": p.bundleName(v), "namespace": "placeholder", "annotations": annotations,
			"labels": obj{"operatorframework.io/arch.amd64": "supported", "operatorframework.io/arch.arm64": "supported", "operatorframework.io/os.linux": "supported"}},
		"spec": spec,
	}, nil
}

// installSpec is the CSV's deployment strategy: the operator's
// deployment, its service account's permissions.
func (prof *largeProfile) installSpec(p *largePackage, operator string, env arr) obj {
	account := p.ns + "-controller-manager"
	container := obj{
		"name": "manager", "image": operator, "command": arr{"/manager"},
		"args":            arr{"--leader-elect", "--health-probe-bind-address=:8081", "--metrics-bind-address=127.0.0.1:8080"},
		"env":             env,
		"livenessProbe":   obj{"httpGet": obj{"path": "/healthz", "port": 8081}, "initialDelaySeconds": 15, "periodSeconds": 20},
		"readinessProbe":  obj{"httpGet": obj{"path": "/readyz", "port": 8081}, "initialDelaySeconds": 5, "periodSeconds": 10},
		"resources":       obj{"limits": obj{"cpu": "500m", "memory": "512Mi"}, "requests": obj{"cpu": "10m", "memory": "64Mi"}},
		"securityContext": obj{"allowPrivilegeEscalation": false, "capabilities": obj{"drop": arr{"ALL"}}, "readOnlyRootFilesystem": true},
	}
	return obj{
		"clusterPermissions": arr{obj{"serviceAccountName": account, "rules": prof.rules}},
		"permissions": arr{obj{"serviceAccountName": account, "rules": arr{
			obj{"apiGroups": arr{""}, "resources": arr{"configmaps", "events"}, "verbs": arr{"create", "get", "list", "patch", "update", "watch"}},
			obj{"apiGroups": arr{"coordination.k8s.io"}, "resources": arr{"leases"}, "verbs": arr{"create", "get", "list", "update"}},
		}}},
		"deployments": arr{obj{"name": account, "label": obj{"control-plane": "controller-manager"}, "spec": obj{
			"replicas": 1, "selector": obj{"matchLabels": obj{"control-plane": "controller-manager"}},
			"template": obj{
				"metadata": obj{"annotations": obj{"kubectl.kubernetes.io/default-container": "manager"}, "labels": obj{"control-plane": "controller-manager"}},
				"spec": obj{"serviceAccountName": account, "terminationGracePeriodSeconds": 10, "containers": arr{container},
					"securityContext": obj{"runAsNonRoot": true, "seccompProfile": obj{"type": "RuntimeDefault"}}},
			},
		}}},
	}
}
