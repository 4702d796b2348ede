package manifests

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The OpenShift Update Service (SPEC §11).
const (
	UpdateServiceAPIVersion = "updateservice.operator.openshift.io/v1"
	KindUpdateService       = "UpdateService"
	// UpdateServiceNamespace is where Red Hat documents installing the
	// update service operator and its UpdateService.
	UpdateServiceNamespace = "openshift-update-service"
	// DefaultUpdateServiceReplicas keeps the service answering while one
	// of its pods is drained from a node.
	DefaultUpdateServiceReplicas = 2
	// UpdateServiceCAKey is the key under which the update service looks
	// for the mirror registry's CA in the ConfigMap that
	// image.config.openshift.io/cluster names in spec.additionalTrustedCA.
	UpdateServiceCAKey = "updateservice-registry"
	// updateServiceCAConfigMap is the ConfigMap the steps create when the
	// cluster trusts no additional CA yet (the name Red Hat's docs use).
	updateServiceCAConfigMap = "registry-config"
	// policyEngineSuffix ends the name of the Service the operator makes
	// for the policy engine, <name>-policy-engine (its graph builder's,
	// <name>-graph-builder, is shorter): a Service name is a DNS-1035
	// label, so that bounds the UpdateService's name.
	policyEngineSuffix = "-policy-engine"
)

// UpdateService renders the UpdateService that serves the update graph
// from the mirror: the operator scrapes the release images in releasesRepo
// (the mirror repository holding them, without tag or digest) and reads
// the graph data from graphDataImage (pinned by digest, so the service
// never moves to other data under a tag). name must leave room for the
// Services the operator names after it; replicas is at least 1 (see
// DefaultUpdateServiceReplicas).
func UpdateService(name, namespace, releasesRepo, graphDataImage string, replicas int) ([]byte, error) {
	if err := checkUpdateServiceName(name, namespace); err != nil {
		return nil, err
	}
	if err := checkRepository(releasesRepo); err != nil {
		return nil, fmt.Errorf("update service releases: %w", err)
	}
	if err := checkDigestOnly(graphDataImage); err != nil {
		return nil, fmt.Errorf("update service graph-data image: %w", err)
	}
	if replicas < 1 || replicas > math.MaxInt32 {
		return nil, fmt.Errorf("update service replicas %d: want 1 to %d", replicas, math.MaxInt32)
	}
	return render(mapping(
		"apiVersion", UpdateServiceAPIVersion,
		"kind", KindUpdateService,
		"metadata", mapping("name", name, "namespace", namespace),
		"spec", mapping(
			"replicas", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(replicas)},
			"releases", releasesRepo,
			"graphDataImage", graphDataImage,
		),
	))
}

// checkUpdateServiceName accepts a namespace that is a DNS-1123 label and
// a name that makes valid Service names.
func checkUpdateServiceName(name, namespace string) error {
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return fmt.Errorf("update service namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	if len(validation.IsDNS1035Label(name)) > 0 || len(validation.IsDNS1035Label(name+policyEngineSuffix)) > 0 {
		return fmt.Errorf("update service name %q: the operator names a Service %q, which must be a DNS-1035 label "+
			"(lower-case letters, digits and '-', starting with a letter, at most %d characters in all)",
			name, name+policyEngineSuffix, validation.DNS1035LabelMaxLength)
	}
	return nil
}

// checkDigestOnly accepts a fully qualified image reference by digest and
// without a tag: repository@sha256:<hex>.
func checkDigestOnly(s string) error {
	named, err := reference.ParseNamed(s)
	if err != nil {
		return fmt.Errorf("%q is not a fully qualified image reference: %w", s, err)
	}
	if _, ok := named.(reference.Canonical); !ok {
		return fmt.Errorf("%q: want repository@digest, not a reference by tag", s)
	}
	if _, tagged := named.(reference.Tagged); tagged {
		return fmt.Errorf("%q: want repository@digest, without a tag", s)
	}
	return nil
}

// UpdateServiceSteps is the text of the steps that remain once the
// UpdateService name in namespace is applied, for a person to run with
// oc: trust the mirror registry's CA (caFile, a PEM file on the bastion;
// empty writes a placeholder) under UpdateServiceCAKey, read the policy
// engine's URI once the operator publishes it, and point the cluster's
// updates at it.
func UpdateServiceSteps(name, namespace, caFile string) (string, error) {
	if err := checkUpdateServiceName(name, namespace); err != nil {
		return "", err
	}
	ca := "<mirror-registry-ca.pem>"
	if caFile != "" {
		ca = shellQuote(caFile)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Remaining steps for the update service %[2]s/%[1]s:

1. Let the update service trust the mirror registry: its CA must be in the
   ConfigMap in openshift-config that image.config.openshift.io/cluster
   names in spec.additionalTrustedCA, under the key %[3]s.
   See which ConfigMap that is:

     oc get image.config.openshift.io/cluster -o jsonpath='{.spec.additionalTrustedCA.name}'

   If it prints a name, add the key to that ConfigMap:

     oc set data configmap/<that name> -n openshift-config --from-file=%[3]s=%[4]s

   If it prints nothing, create one and name it there:

     oc create configmap %[5]s -n openshift-config --from-file=%[3]s=%[4]s
     oc patch image.config.openshift.io/cluster --type merge -p '{"spec":{"additionalTrustedCA":{"name":"%[5]s"}}}'

2. Wait until the operator publishes the policy engine's URI:

     oc get updateservice %[1]s -n %[2]s -o jsonpath='{.status.policyEngineURI}'

3. Point the cluster's updates at it, with the URI step 2 printed:

     oc patch clusterversion version --type merge -p '{"spec":{"upstream":"<policyEngineURI>/api/upgrades_info/v1/graph"}}'
`, name, namespace, UpdateServiceCAKey, ca, updateServiceCAConfigMap)
	return b.String(), nil
}

// shellSafe matches words a POSIX shell takes as they are.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellQuote makes s one word for a POSIX shell.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
