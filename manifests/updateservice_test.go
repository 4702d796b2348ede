package manifests

import (
	"strings"
	"testing"
)

const (
	graphImage = "registry.example:5000/ocp4/graph-image@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// updateServiceObject is an UpdateService as the test reads it, strictly.
type updateServiceObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas       int    `yaml:"replicas"`
		Releases       string `yaml:"releases"`
		GraphDataImage string `yaml:"graphDataImage"`
	} `yaml:"spec"`
}

func TestUpdateService(t *testing.T) {
	data, err := UpdateService("service", UpdateServiceNamespace, mirrorRepo, graphImage, DefaultUpdateServiceReplicas)
	if err != nil {
		t.Fatal(err)
	}
	var obj updateServiceObject
	decodeStrict(t, data, &obj)
	if obj.APIVersion != "updateservice.operator.openshift.io/v1" || obj.Kind != "UpdateService" ||
		obj.Metadata.Name != "service" || obj.Metadata.Namespace != "openshift-update-service" ||
		obj.Spec.Replicas != 2 || obj.Spec.Releases != mirrorRepo || obj.Spec.GraphDataImage != graphImage {
		t.Errorf("rendered %+v from\n%s", obj, data)
	}
	again, err := UpdateService("service", UpdateServiceNamespace, mirrorRepo, graphImage, DefaultUpdateServiceReplicas)
	if err != nil || string(again) != string(data) {
		t.Errorf("rendered twice, differently: %v\n%s\n%s", err, data, again)
	}
}

func TestUpdateServiceRefuses(t *testing.T) {
	long := strings.Repeat("a", 63-len("-policy-engine")+1)
	for name, c := range map[string]struct {
		name, namespace, releases, image string
		replicas                         int
		want                             string
	}{
		"releases with a tag":     {"service", UpdateServiceNamespace, mirrorRepo + ":4.15.0-x86_64", graphImage, 2, "without tag or digest"},
		"releases with a digest":  {"service", UpdateServiceNamespace, graphImage, graphImage, 2, "without tag or digest"},
		"releases not qualified":  {"service", UpdateServiceNamespace, "Ocp4/Release", graphImage, 2, "not a fully qualified"},
		"image by tag":            {"service", UpdateServiceNamespace, mirrorRepo, "registry.example:5000/ocp4/graph-image:latest", 2, "not a reference by tag"},
		"image by tag and digest": {"service", UpdateServiceNamespace, mirrorRepo, strings.Replace(graphImage, "@", ":latest@", 1), 2, "without a tag"},
		"image by name only":      {"service", UpdateServiceNamespace, mirrorRepo, "registry.example:5000/ocp4/graph-image", 2, "not a reference by tag"},
		"no replicas":             {"service", UpdateServiceNamespace, mirrorRepo, graphImage, 0, "want 1 to"},
		"name ending in a dash":   {"service-", UpdateServiceNamespace, mirrorRepo, graphImage, 2, "DNS-1035"},
		"name too long":           {long, UpdateServiceNamespace, mirrorRepo, graphImage, 2, "DNS-1035"},
		"name with a digit first": {"1service", UpdateServiceNamespace, mirrorRepo, graphImage, 2, "DNS-1035"},
		"no name":                 {"", UpdateServiceNamespace, mirrorRepo, graphImage, 2, "DNS-1035"},
		"bad namespace":           {"service", "Openshift_Update", mirrorRepo, graphImage, 2, "namespace"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := UpdateService(c.name, c.namespace, c.releases, c.image, c.replicas)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v: want one saying %q", err, c.want)
			}
			t.Log(err)
		})
	}
	// The longest name that fits.
	if _, err := UpdateService(long[1:], UpdateServiceNamespace, mirrorRepo, graphImage, 2); err != nil {
		t.Errorf("a %d-character name: %v", len(long)-1, err)
	}
}

func TestUpdateServiceSteps(t *testing.T) {
	text, err := UpdateServiceSteps("service", UpdateServiceNamespace, "/etc/pki/mirror ca's.pem")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"oc get image.config.openshift.io/cluster -o jsonpath='{.spec.additionalTrustedCA.name}'",
		`--from-file=updateservice-registry='/etc/pki/mirror ca'\''s.pem'`,
		"oc create configmap registry-config -n openshift-config --from-file=updateservice-registry=",
		`oc patch image.config.openshift.io/cluster --type merge -p '{"spec":{"additionalTrustedCA":{"name":"registry-config"}}}'`,
		"oc get updateservice service -n openshift-update-service -o jsonpath='{.status.policyEngineURI}'",
		`oc patch clusterversion version --type merge -p '{"spec":{"upstream":"<policyEngineURI>/api/upgrades_info/v1/graph"}}'`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("steps lack %s:\n%s", want, text)
		}
	}
	text, err = UpdateServiceSteps("service", UpdateServiceNamespace, "")
	if err != nil || !strings.Contains(text, "--from-file=updateservice-registry=<mirror-registry-ca.pem>") {
		t.Errorf("steps without a CA file (%v):\n%s", err, text)
	}
	if _, err := UpdateServiceSteps("Service", UpdateServiceNamespace, ""); err == nil {
		t.Error("steps for an invalid name")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/pki/ca.pem":  "/etc/pki/ca.pem",
		"a b":              "'a b'",
		"it's":             `'it'\''s'`,
		"$(rm -rf /)":      "'$(rm -rf /)'",
		"":                 "''",
		"semi;colon`tick`": "'semi;colon`tick`'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
