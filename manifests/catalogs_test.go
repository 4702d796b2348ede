package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "sigs.k8s.io/yaml"
)

const (
	catalogImage = mirrorRepo + "@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	catalogName  = "redhat-operator-index-v4-16"
)

// catalogSourceObject is a CatalogSource with exactly the fields ferry
// writes, read strictly: a field ferry must not write (cacheDir,
// updateStrategy) fails the decoding.
type catalogSourceObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec struct {
		SourceType    string `yaml:"sourceType"`
		Image         string `yaml:"image"`
		DisplayName   string `yaml:"displayName"`
		Publisher     string `yaml:"publisher"`
		GrpcPodConfig struct {
			ExtractContent *struct {
				CatalogDir string `yaml:"catalogDir"`
			} `yaml:"extractContent"`
			SecurityContextConfig string `yaml:"securityContextConfig"`
		} `yaml:"grpcPodConfig"`
	} `yaml:"spec"`
}

func TestCatalogSource(t *testing.T) {
	data, err := CatalogSource(CatalogSourceOptions{
		Name: catalogName, Image: catalogImage, DisplayName: "Red Hat Operators (mirror)", Publisher: "ferry",
		ExtractContent: true, ConfigsDir: "/configs",
	})
	if err != nil {
		t.Fatal(err)
	}
	var cs catalogSourceObject
	decodeStrict(t, data, &cs)
	if cs.APIVersion != "operators.coreos.com/v1alpha1" || cs.Kind != "CatalogSource" ||
		cs.Metadata.Name != catalogName || cs.Metadata.Namespace != "openshift-marketplace" {
		t.Errorf("header %+v %+v", cs, cs.Metadata)
	}
	s := cs.Spec
	if s.SourceType != "grpc" || s.Image != catalogImage || s.DisplayName != "Red Hat Operators (mirror)" || s.Publisher != "ferry" {
		t.Errorf("spec %+v", s)
	}
	if s.GrpcPodConfig.ExtractContent == nil || s.GrpcPodConfig.ExtractContent.CatalogDir != "/configs" ||
		s.GrpcPodConfig.SecurityContextConfig != "restricted" {
		t.Errorf("grpcPodConfig %+v", s.GrpcPodConfig)
	}
	// kubectl's YAML 1.1 reading agrees.
	var v11 map[string]any
	if err := k8syaml.Unmarshal(data, &v11); err != nil || v11["kind"] != "CatalogSource" {
		t.Errorf("sigs.k8s.io/yaml: %v %v", err, v11["kind"])
	}
}

func TestCatalogSourceWithoutExtractContent(t *testing.T) {
	// ConfigsDir is not looked at without ExtractContent.
	data, err := CatalogSource(CatalogSourceOptions{Name: catalogName, Image: catalogImage, ConfigsDir: "not used"})
	if err != nil {
		t.Fatal(err)
	}
	var cs catalogSourceObject
	decodeStrict(t, data, &cs)
	s := cs.Spec
	if s.GrpcPodConfig.ExtractContent != nil || s.GrpcPodConfig.SecurityContextConfig != "restricted" {
		t.Errorf("grpcPodConfig %+v", s.GrpcPodConfig)
	}
	if s.DisplayName != catalogName || s.Publisher != "" || strings.Contains(string(data), "publisher") {
		t.Errorf("display name %q, publisher %q: want the name and none\n%s", s.DisplayName, s.Publisher, data)
	}
}

func TestCatalogSourceRefuses(t *testing.T) {
	good := CatalogSourceOptions{Name: catalogName, Image: catalogImage, ExtractContent: true, ConfigsDir: "/configs"}
	for what, c := range map[string]struct {
		change func(*CatalogSourceOptions)
		want   string // in the error
	}{
		"tag":               {func(o *CatalogSourceOptions) { o.Image = mirrorRepo + ":v4.16" }, "has a tag"},
		"tag and digest":    {func(o *CatalogSourceOptions) { o.Image = mirrorRepo + ":v4.16@sha256:" + strings.Repeat("ab", 32) }, "has a tag"},
		"repository only":   {func(o *CatalogSourceOptions) { o.Image = mirrorRepo }, "has no digest"},
		"not qualified":     {func(o *CatalogSourceOptions) { o.Image = "catalog@sha256:" + strings.Repeat("ab", 32) }, "not a fully qualified"},
		"short digest":      {func(o *CatalogSourceOptions) { o.Image = mirrorRepo + "@sha256:abcd" }, "not a fully qualified"},
		"empty image":       {func(o *CatalogSourceOptions) { o.Image = "" }, "not a fully qualified"},
		"empty name":        {func(o *CatalogSourceOptions) { o.Name = "" }, `name ""`},
		"upper-case name":   {func(o *CatalogSourceOptions) { o.Name = "Redhat" }, `name "Redhat"`},
		"name with dot":     {func(o *CatalogSourceOptions) { o.Name = "a.b" }, `name "a.b"`},
		"leading digit":     {func(o *CatalogSourceOptions) { o.Name = "4-16" }, `name "4-16"`},
		"name too long":     {func(o *CatalogSourceOptions) { o.Name = strings.Repeat("a", 64) }, "name"},
		"default source":    {func(o *CatalogSourceOptions) { o.Name = "redhat-operators" }, "default catalogs"},
		"marketplace":       {func(o *CatalogSourceOptions) { o.Name = "redhat-marketplace" }, "default catalogs"},
		"no configs dir":    {func(o *CatalogSourceOptions) { o.ConfigsDir = "" }, "configs directory"},
		"relative dir":      {func(o *CatalogSourceOptions) { o.ConfigsDir = "configs" }, "configs directory"},
		"unclean dir":       {func(o *CatalogSourceOptions) { o.ConfigsDir = "/configs/" }, "configs directory"},
		"dir going up":      {func(o *CatalogSourceOptions) { o.ConfigsDir = "/x/../configs" }, "configs directory"},
		"dir with newlines": {func(o *CatalogSourceOptions) { o.ConfigsDir = "/configs\n--cache-dir=/x" }, "configs directory"},
	} {
		o := good
		c.change(&o)
		data, err := CatalogSource(o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v (%q), want an error with %q", what, err, data, c.want)
		}
	}
	if _, err := CatalogSource(good); err != nil {
		t.Errorf("the good options: %v", err)
	}
}

func TestClusterCatalog(t *testing.T) {
	data, err := ClusterCatalog(catalogName, catalogImage)
	if err != nil {
		t.Fatal(err)
	}
	// Strict decoding: pollIntervalMinutes (forbidden by OLM v1 beside a
	// digest), priority or availabilityMode would fail it.
	var cc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			Source struct {
				Type  string `yaml:"type"`
				Image struct {
					Ref string `yaml:"ref"`
				} `yaml:"image"`
			} `yaml:"source"`
		} `yaml:"spec"`
	}
	decodeStrict(t, data, &cc)
	if cc.APIVersion != "olm.operatorframework.io/v1" || cc.Kind != "ClusterCatalog" || cc.Metadata.Name != catalogName ||
		cc.Spec.Source.Type != "Image" || cc.Spec.Source.Image.Ref != catalogImage {
		t.Errorf("got %+v", cc)
	}
	if strings.Contains(string(data), "namespace") {
		t.Errorf("a cluster-scoped object with a namespace:\n%s", data)
	}

	// A DNS-1123 label may start with a digit, unlike a CatalogSource's name.
	if _, err := ClusterCatalog("4-16", catalogImage); err != nil {
		t.Errorf("name 4-16: %v", err)
	}
	for what, c := range map[string]struct{ name, image, want string }{
		"tag":                {catalogName, mirrorRepo + ":v4.16", "has a tag"},
		"no digest":          {catalogName, mirrorRepo, "has no digest"},
		"invalid name":       {"Catalog", catalogImage, `name "Catalog"`},
		"name too long":      {strings.Repeat("a", 64), catalogImage, "name"},
		"default v1 catalog": {"openshift-redhat-operators", catalogImage, "default catalogs"},
	} {
		if _, err := ClusterCatalog(c.name, c.image); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", what, err, c.want)
		}
	}
}

func TestOperatorHubDisableDefaults(t *testing.T) {
	data, err := OperatorHubDisableDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var hub struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			// A bool: the string "true" would fail to decode.
			DisableAllDefaultSources bool `yaml:"disableAllDefaultSources"`
		} `yaml:"spec"`
	}
	decodeStrict(t, data, &hub)
	if hub.APIVersion != "config.openshift.io/v1" || hub.Kind != "OperatorHub" || hub.Metadata.Name != "cluster" ||
		!hub.Spec.DisableAllDefaultSources {
		t.Errorf("got %+v", hub)
	}
	var v11 map[string]any
	if err := k8syaml.Unmarshal(data, &v11); err != nil || v11["spec"].(map[string]any)["disableAllDefaultSources"] != true {
		t.Errorf("sigs.k8s.io/yaml: %v %v", err, v11["spec"])
	}
}

func TestCatalogSourceName(t *testing.T) {
	long := "quay.io/org/" + strings.Repeat("catalog", 10) + ":v4.16"
	for spec, want := range map[string]string{
		"registry.redhat.io/redhat/redhat-operator-index:v4.16":    "redhat-operator-index-v4-16",
		"registry.redhat.io/redhat/certified-operator-index:v4.16": "certified-operator-index-v4-16",
		"registry.redhat.io/redhat/community-operator-index:v4.16": "community-operator-index-v4-16",
		"registry.redhat.io/redhat/redhat-marketplace-index:v4.16": "redhat-marketplace-index-v4-16",
		"quay.io/operatorhubio/catalog:latest":                     "catalog-latest",
		"registry.example:5000/a/b/my_catalog__x:V1.2-RC_3":        "my-catalog-x-v1-2-rc-3",
		"catalog:v1":                    "catalog-v1",
		"quay.io/org/3scale-catalog:v1": "catalog-3scale-catalog-v1",
		"quay.io/org/idx@sha256:" + strings.Repeat("0a", 32):         "idx-0a0a0a0a0a0a",
		"quay.io/org/idx:v2@sha256:" + strings.Repeat("0a", 32):      "idx-v2",
		"quay.io/org/redhat:operators":                               "redhat-operators-" + nameHash("redhat-operators"),
		"quay.io/org/openshift-redhat:operators":                     "openshift-redhat-operators-" + nameHash("openshift-redhat-operators"),
		long:                                                         strings.Repeat("catalog", 10)[:54] + "-" + nameHash(strings.Repeat("catalog", 10)+"-v4-16"),
		"quay.io/org/" + strings.Repeat("a", 53) + "-bbbbbbbbbbbb:c": strings.Repeat("a", 53) + "-" + nameHash(strings.Repeat("a", 53)+"-bbbbbbbbbbbb-c"),
		"quay.io/org/" + strings.Repeat("a", 55) + ":" + "12345678":  strings.Repeat("a", 54) + "-" + nameHash(strings.Repeat("a", 55)+"-12345678"),
		"quay.io/org/" + strings.Repeat("a", 54) + ":" + "12345678":  strings.Repeat("a", 54) + "-12345678",
		"quay.io/org/" + strings.Repeat("a", 54) + ":" + "123456789": strings.Repeat("a", 54) + "-" + nameHash(strings.Repeat("a", 54)+"-123456789"),
	} {
		got, err := CatalogSourceName(spec)
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", spec, got, want)
		}
		checkCatalogSourceName(t, spec, got)
	}
	for _, spec := range []string{
		"", "quay.io/org/catalog", "Quay.io/Org/Catalog:v1", "quay.io/org/catalog:", "quay.io/org/catalog@sha256:abc",
		"https://quay.io/org/catalog:v1", "quay.io/org/catalog:v1 ",
	} {
		if got, err := CatalogSourceName(spec); err == nil {
			t.Errorf("%q: got %q, want an error", spec, got)
		} else if !strings.Contains(err.Error(), "catalog name from") {
			t.Errorf("%q: error %q does not say what failed", spec, err)
		}
	}
}

// nameHash is the suffix CatalogSourceName gives a name it cuts or that
// would be a default catalog's, computed here independently.
func nameHash(uncut string) string {
	sum := sha256.Sum256([]byte(uncut))
	return hex.EncodeToString(sum[:4])
}

// checkCatalogSourceName asserts what every name CatalogSourceName returns
// must be: accepted by CatalogSource and ClusterCatalog.
func checkCatalogSourceName(t *testing.T, spec, name string) {
	t.Helper()
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		t.Errorf("%q: %q is not a DNS-1035 label: %v", spec, name, errs)
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		t.Errorf("%q: %q is not a DNS-1123 label: %v", spec, name, errs)
	}
	if defaultCatalogNames[name] {
		t.Errorf("%q: %q is a default catalog's name", spec, name)
	}
	if _, err := CatalogSource(CatalogSourceOptions{Name: name, Image: catalogImage}); err != nil {
		t.Errorf("%q: CatalogSource refuses %q: %v", spec, name, err)
	}
	if _, err := ClusterCatalog(name, catalogImage); err != nil {
		t.Errorf("%q: ClusterCatalog refuses %q: %v", spec, name, err)
	}
}

func TestExtractContentSupported(t *testing.T) {
	for version, want := range map[string]bool{
		"4.20.0": true, "4.20": true, "4.21.3": true, "4.20.0-rc.1": true, "4.20.0-0.nightly-2025-09-01-000000": true,
		"5.0.0": true, "v4.22.1": true,
		// 4.15 to 4.19 have extractContent but require cacheDir.
		"4.19.9": false, "4.15.0": false, "4.16.3": false, "4.14.30": false, "4.2.0": false, "3.11.0": false,
		"": false, "latest": false, "4": false, "4.x": false, "4.20.0.1": false,
	} {
		if got := ExtractContentSupported(version); got != want {
			t.Errorf("%q: got %v, want %v", version, got, want)
		}
	}
}

// FuzzCatalogSourceName checks that a pull spec, which comes from the
// bundle's index, never makes CatalogSourceName panic, and that any name it
// returns is one CatalogSource and ClusterCatalog accept, and the same
// every time.
func FuzzCatalogSourceName(f *testing.F) {
	for _, seed := range []string{
		"registry.redhat.io/redhat/redhat-operator-index:v4.16",
		"quay.io/org/redhat:operators",
		"quay.io/org/3scale:v1@sha256:" + strings.Repeat("0a", 32),
		"localhost:5000/" + strings.Repeat("a-", 40) + ":" + strings.Repeat("_", 100),
		"catalog",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		name, err := CatalogSourceName(spec)
		if err != nil {
			return
		}
		checkCatalogSourceName(t, spec, name)
		if again, _ := CatalogSourceName(spec); again != name {
			t.Errorf("%q: %q, then %q", spec, name, again)
		}
	})
}
