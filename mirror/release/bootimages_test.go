package release

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"sigs.k8s.io/yaml"
)

const (
	hexB       = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	artDev     = "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
	rhcosBuild = "9.6.20250121-0"
)

// realKubeVirt are kubevirt entries shaped as OpenShift's stream metadata
// has them: x86_64 by tag with a digest-ref (as real releases), aarch64 by
// digest alone, s390x by tag alone, ppc64le none.
func realKubeVirt() map[string]map[string]any {
	return map[string]map[string]any{
		"x86_64":  {"release": rhcosBuild, "image": artDev + ":rhel-9.6-coreos-kubevirt", "digest-ref": artDev + "@sha256:" + hexA},
		"aarch64": {"release": rhcosBuild, "image": artDev + "@sha256:" + hexB},
		"s390x":   {"release": rhcosBuild, "image": artDev + ":rhel-9.6-coreos-kubevirt-s390x"},
	}
}

// streamJSON renders CoreOS stream metadata like the installer's
// data/data/coreos/coreos-rhel-9.json: four arches, each with artifacts
// and cloud images, and kubevirt where given.
func streamJSON(t testing.TB, kubevirt map[string]map[string]any) string {
	t.Helper()
	arches := map[string]any{}
	for _, arch := range []string{"aarch64", "ppc64le", "s390x", "x86_64"} {
		loc := "https://rhcos.mirror.openshift.com/art/storage/prod/streams/rhel-9.6/builds/" + rhcosBuild + "/" + arch + "/rhcos-" + rhcosBuild + "-metal." + arch + ".raw.gz"
		images := map[string]any{
			"gcp": map[string]any{"release": rhcosBuild, "project": "rhcos-cloud", "name": "rhcos-9-6-gcp-" + arch},
		}
		if arch == "x86_64" || arch == "aarch64" {
			images["aws"] = map[string]any{"regions": map[string]any{"us-east-1": map[string]any{"release": rhcosBuild, "image": "ami-0123456789abcdef0"}}}
		}
		if kv, ok := kubevirt[arch]; ok {
			images["kubevirt"] = kv
		}
		arches[arch] = map[string]any{
			"artifacts": map[string]any{"metal": map[string]any{"release": rhcosBuild, "formats": map[string]any{
				"raw.gz": map[string]any{"disk": map[string]any{"location": loc, "sha256": hexA, "uncompressed-sha256": hexB}},
			}}},
			"images":                 images,
			"rhel-coreos-extensions": map[string]any{"azure-disk": map[string]any{"release": rhcosBuild, "url": "https://rhcos.blob.core.windows.net/x.vhd"}},
		}
	}
	data, err := json.MarshalIndent(map[string]any{
		"stream":        "rhcos-4.19",
		"metadata":      map[string]any{"last-modified": "2025-01-21T10:00:00Z", "generator": "plume cosa2stream 1a2b3c"},
		"architectures": arches,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// bootImagesConfigMapMap is the ConfigMap as the installer's build makes
// it (a corev1.ConfigMap through sigs.k8s.io/yaml), for tests to change.
func bootImagesConfigMapMap(stream string) map[string]any {
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name": "coreos-bootimages", "namespace": "openshift-machine-config-operator",
			"creationTimestamp": nil,
			"annotations": map[string]any{
				"include.release.openshift.io/ibm-cloud-managed":              "true",
				"include.release.openshift.io/self-managed-high-availability": "true",
				"include.release.openshift.io/single-node-developer":          "true",
			},
		},
		"data": map[string]any{
			"releaseVersion": "4.19.0",
			"stream":         stream,
			"streams":        `{"rhel-9": ` + stream + `}`,
		},
	}
}

func marshalYAML(t testing.TB, v any) []byte {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func realBootImages(t testing.TB) []byte {
	t.Helper()
	return marshalYAML(t, bootImagesConfigMapMap(streamJSON(t, realKubeVirt())))
}

func TestKubeVirtContainer(t *testing.T) {
	bi, err := ParseBootImages(realBootImages(t))
	if err != nil {
		t.Fatal(err)
	}
	if bi.Stream != "rhcos-4.19" || bi.ReleaseVersion != "4.19.0" {
		t.Errorf("stream %q, releaseVersion %q", bi.Stream, bi.ReleaseVersion)
	}
	for _, tc := range []struct {
		arch string
		want KubeVirtContainer
	}{
		{"x86_64", KubeVirtContainer{
			Arch: "x86_64", Release: rhcosBuild, Image: artDev + ":rhel-9.6-coreos-kubevirt", Repository: artDev,
			Tag: "rhel-9.6-coreos-kubevirt", Digest: "sha256:" + hexA, DigestRef: artDev + "@sha256:" + hexA,
		}},
		{"amd64", KubeVirtContainer{
			Arch: "x86_64", Release: rhcosBuild, Image: artDev + ":rhel-9.6-coreos-kubevirt", Repository: artDev,
			Tag: "rhel-9.6-coreos-kubevirt", Digest: "sha256:" + hexA, DigestRef: artDev + "@sha256:" + hexA,
		}},
		{"arm64", KubeVirtContainer{
			Arch: "aarch64", Release: rhcosBuild, Image: artDev + "@sha256:" + hexB, Repository: artDev, Digest: "sha256:" + hexB,
		}},
		{"s390x", KubeVirtContainer{
			Arch: "s390x", Release: rhcosBuild, Image: artDev + ":rhel-9.6-coreos-kubevirt-s390x", Repository: artDev,
			Tag: "rhel-9.6-coreos-kubevirt-s390x",
		}},
	} {
		k, err := bi.KubeVirtContainer(tc.arch)
		if err != nil {
			t.Errorf("%s: %v", tc.arch, err)
			continue
		}
		if *k != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.arch, *k, tc.want)
		}
	}

	all, err := bi.KubeVirtContainers()
	if err != nil {
		t.Fatal(err)
	}
	var arches []string
	for _, k := range all {
		arches = append(arches, k.Arch)
	}
	if got := strings.Join(arches, ","); got != "x86_64,aarch64,s390x" {
		t.Errorf("KubeVirtContainers arches = %s", got)
	}
	if got := all[0].PullSpec(); got != artDev+"@sha256:"+hexA {
		t.Errorf("x86_64 PullSpec = %s", got)
	}
	if got := all[2].PullSpec(); got != artDev+":rhel-9.6-coreos-kubevirt-s390x" {
		t.Errorf("s390x PullSpec = %s", got)
	}
}

func TestKubeVirtContainerArchErrors(t *testing.T) {
	bi, err := ParseBootImages(realBootImages(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bi.KubeVirtContainer("ppc64le")
	if !errors.Is(err, ErrNoKubeVirtContainer) || !strings.Contains(err.Error(), "only for x86_64, aarch64, s390x") {
		t.Errorf("ppc64le: %v", err)
	}
	if _, err := bi.KubeVirtContainer("multi"); err == nil || !strings.Contains(err.Error(), "per architecture") {
		t.Errorf("multi: %v", err)
	}
	if _, err := bi.KubeVirtContainer("riscv64"); err == nil || !strings.Contains(err.Error(), "unknown architecture") {
		t.Errorf("riscv64: %v", err)
	}

	none, err := ParseBootImages(marshalYAML(t, bootImagesConfigMapMap(streamJSON(t, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := none.KubeVirtContainer("x86_64"); !errors.Is(err, ErrNoKubeVirtContainer) || !strings.Contains(err.Error(), "for no architecture") {
		t.Errorf("stream without kubevirt: %v", err)
	}
	if all, err := none.KubeVirtContainers(); err != nil || len(all) != 0 {
		t.Errorf("KubeVirtContainers of a stream without any = %v, %v", all, err)
	}
}

// TestKubeVirtContainerEntryErrors breaks the x86_64 entry; the others
// stay good, so only the broken arch fails.
func TestKubeVirtContainerEntryErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry map[string]any
		msg   string
	}{
		{"neither tag nor digest", map[string]any{"image": artDev}, "names neither a tag nor a digest"},
		{"not a pull spec", map[string]any{"image": "Quay.io/UPPER/Case:x"}, "not a valid pull spec"},
		{"short digest", map[string]any{"image": artDev + "@sha256:abc"}, "want 64 hex"},
		{"sha512", map[string]any{"image": artDev + "@sha512:" + hexA + hexA}, "want sha256"},
		{"empty", map[string]any{"release": rhcosBuild}, `neither "image" nor "digest-ref"`},
		{"digest-ref by tag", map[string]any{"image": artDev + ":t", "digest-ref": artDev + ":u"}, "names no digest"},
		{"digest-ref elsewhere", map[string]any{"image": artDev + ":t", "digest-ref": "quay.io/other/rhcos@sha256:" + hexA}, "another repository"},
		{"two digests", map[string]any{"image": artDev + "@sha256:" + hexA, "digest-ref": artDev + "@sha256:" + hexB}, "two digests"},
		{"digest-ref broken", map[string]any{"image": artDev + ":t", "digest-ref": artDev + "@sha256:" + hexA[:10]}, `digest-ref "`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := realKubeVirt()
			kv["x86_64"] = tc.entry
			bi, err := ParseBootImages(marshalYAML(t, bootImagesConfigMapMap(streamJSON(t, kv))))
			if err != nil {
				t.Fatal(err)
			}
			_, err = bi.KubeVirtContainer("x86_64")
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "architectures.x86_64.images.kubevirt") {
				t.Errorf("error = %v, want it to contain %q", err, tc.msg)
			}
			if _, err := bi.KubeVirtContainers(); err == nil {
				t.Error("KubeVirtContainers accepted the broken entry")
			}
			if _, err := bi.KubeVirtContainer("aarch64"); err != nil {
				t.Errorf("a good arch failed with the broken one: %v", err)
			}
		})
	}
}

func TestKubeVirtContainerDigestRefOnly(t *testing.T) {
	kv := realKubeVirt()
	kv["x86_64"] = map[string]any{"release": rhcosBuild, "digest-ref": artDev + "@sha256:" + hexA}
	bi, err := ParseBootImages(marshalYAML(t, bootImagesConfigMapMap(streamJSON(t, kv))))
	if err != nil {
		t.Fatal(err)
	}
	k, err := bi.KubeVirtContainer("x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if k.Image != artDev+"@sha256:"+hexA || k.Digest != "sha256:"+hexA || k.Tag != "" || k.Repository != artDev {
		t.Errorf("got %+v", *k)
	}
}

func TestParseBootImagesErrors(t *testing.T) {
	stream := streamJSON(t, realKubeVirt())
	changed := func(change func(cm map[string]any)) []byte {
		cm := bootImagesConfigMapMap(stream)
		change(cm)
		return marshalYAML(t, cm)
	}
	data := func(cm map[string]any) map[string]any { return cm["data"].(map[string]any) }
	meta := func(cm map[string]any) map[string]any { return cm["metadata"].(map[string]any) }
	for _, tc := range []struct {
		name string
		file []byte
		msg  string
	}{
		{"empty", nil, "empty"},
		{"not YAML", []byte("\t{{ nope"), "invalid YAML"},
		{"a list", []byte("- a\n- b\n"), "invalid YAML"},
		{"kind", changed(func(cm map[string]any) { cm["kind"] = "Secret" }), "want a v1 ConfigMap"},
		{"apiVersion", changed(func(cm map[string]any) { cm["apiVersion"] = "v2" }), "want a v1 ConfigMap"},
		{"name", changed(func(cm map[string]any) { meta(cm)["name"] = "other" }), "want openshift-machine-config-operator/coreos-bootimages"},
		{"namespace", changed(func(cm map[string]any) { meta(cm)["namespace"] = "default" }), "want openshift-machine-config-operator/coreos-bootimages"},
		{"metadata not a map", changed(func(cm map[string]any) { cm["metadata"] = "x" }), "metadata"},
		{"unknown field", changed(func(cm map[string]any) { cm["spec"] = map[string]any{} }), "field spec not found"},
		{"data not strings", changed(func(cm map[string]any) { data(cm)["stream"] = map[string]any{"a": 1} }), "invalid YAML"},
		{"no stream", changed(func(cm map[string]any) { delete(data(cm), "stream") }), "no data.stream"},
		{"stream not JSON", changed(func(cm map[string]any) { data(cm)["stream"] = "stream: yaml" }), "data.stream: invalid JSON"},
		{"stream and more", changed(func(cm map[string]any) { data(cm)["stream"] = stream + " {}" }), "data after the document"},
		{"architectures wrong type", changed(func(cm map[string]any) { data(cm)["stream"] = `{"stream":"s","architectures":[]}` }), "data.stream: invalid JSON"},
		{"no architectures", changed(func(cm map[string]any) { data(cm)["stream"] = `{"stream":"s","architectures":{}}` }), "lists no architectures"},
		{"kubevirt wrong type", changed(func(cm map[string]any) {
			data(cm)["stream"] = `{"architectures":{"x86_64":{"images":{"kubevirt":{"image":7}}}}}`
		}), "data.stream: invalid JSON"},
		{"two documents", append(realBootImages(t), "---\nkind: ConfigMap\n"...), "more than one YAML document"},
		{"too big", []byte(strings.Repeat("#", MaxCoreOSBootImagesSize+1)), "MaxCoreOSBootImagesSize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBootImages(tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), CoreOSBootImagesPath) {
				t.Errorf("error = %v, want it to contain %q and the file", err, tc.msg)
			}
		})
	}
}

// TestParseBootImagesTolerates fields the producers add: in the data, in
// the metadata, in the stream and in the kubevirt entry.
func TestParseBootImagesTolerates(t *testing.T) {
	kv := realKubeVirt()
	maps.Copy(kv["x86_64"], map[string]any{"future-field": []int{1}})
	cm := bootImagesConfigMapMap(streamJSON(t, kv))
	cm["metadata"].(map[string]any)["labels"] = map[string]any{"a": "b"}
	cm["metadata"].(map[string]any)["resourceVersion"] = "12"
	cm["data"].(map[string]any)["somethingNew"] = "x"
	cm["immutable"] = false
	bi, err := ParseBootImages(marshalYAML(t, cm))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := bi.KubeVirtContainer("x86_64"); err != nil || k.Digest != "sha256:"+hexA {
		t.Fatalf("got %+v, %v", k, err)
	}
}

func TestReadFilesKeepsBootImages(t *testing.T) {
	bootImages := string(realBootImages(t))
	other := strings.Replace(bootImages, hexA, hexB, -1)
	full := func(c compression, extra ...entry) []byte {
		return layer(t, c, append([]entry{
			{name: "release-manifests/", typ: tar.TypeDir},
			{name: "release-manifests/0000_00_cluster-version-operator_00_namespace.yaml", body: "kind: Namespace\n"},
			{name: "./" + CoreOSBootImagesPath, body: bootImages},
			{name: ImageReferencesPath, body: refsV1},
			{name: MetadataPath, body: metaV1},
		}, extra...)...)
	}
	for _, tc := range []struct {
		name   string
		layers [][]byte
		want   string // the file kept; "" for none
		digest digest.Digest
		err    error
		msg    string
	}{
		{name: "gzip", layers: [][]byte{full(gzipped)}, want: bootImages, digest: "sha256:" + hexA},
		{name: "zstd", layers: [][]byte{full(zstded)}, want: bootImages, digest: "sha256:" + hexA},
		{name: "upper layer wins", layers: [][]byte{full(gzipped), layer(t, plain,
			entry{name: CoreOSBootImagesPath, body: other})}, want: other, digest: "sha256:" + hexB},
		{name: "absent", layers: [][]byte{layer(t, gzipped,
			entry{name: ImageReferencesPath, body: refsV1}, entry{name: MetadataPath, body: metaV1})}, err: ErrNoBootImages},
		{name: "whiteout", layers: [][]byte{full(gzipped), layer(t, plain,
			entry{name: ReleaseManifestsDir + ".wh.0000_50_installer_coreos-bootimages.yaml"})}, err: ErrNoBootImages},
		{name: "symlink", layers: [][]byte{layer(t, plain,
			entry{name: CoreOSBootImagesPath, typ: tar.TypeSymlink},
			entry{name: ImageReferencesPath, body: refsV1}, entry{name: MetadataPath, body: metaV1})}, msg: "not a regular file"},
		{name: "too big", layers: [][]byte{layer(t, gzipped,
			entry{name: CoreOSBootImagesPath, body: bootImages + strings.Repeat("#", MaxCoreOSBootImagesSize)},
			entry{name: ImageReferencesPath, body: refsV1}, entry{name: MetadataPath, body: metaV1})}, msg: "MaxCoreOSBootImagesSize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, _ := openers(tc.layers...)
			files, err := ReadFiles(t.Context(), ls)
			if err != nil {
				t.Fatal(err) // whatever the bootimages, the release reads
			}
			if string(files.ImageReferences) != refsV1 || string(files.Metadata) != metaV1 {
				t.Fatalf("files %q, %q", files.ImageReferences, files.Metadata)
			}
			if string(files.CoreOSBootImages) != tc.want {
				t.Errorf("kept %d bytes, want %d", len(files.CoreOSBootImages), len(tc.want))
			}
			k, err := files.KubeVirtContainer("x86_64")
			switch {
			case tc.err != nil || tc.msg != "":
				if tc.err != nil && !errors.Is(err, tc.err) || tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)) {
					t.Errorf("error = %v, want %v %q", err, tc.err, tc.msg)
				}
			case err != nil:
				t.Error(err)
			case k.Digest != tc.digest:
				t.Errorf("digest %s, want %s", k.Digest, tc.digest)
			}
		})
	}
}

// TestReadFilesScansBootImagesForPolicies: keeping the bootimages manifest
// changes nothing of the scan for image policies, which reads it as any
// other manifest.
func TestReadFilesScansBootImagesForPolicies(t *testing.T) {
	policy := "---\napiVersion: config.openshift.io/v1\nkind: ClusterImagePolicy\nmetadata:\n  name: hidden\n"
	bootImages := string(realBootImages(t))
	ls, _ := openers(layer(t, plain,
		entry{name: CoreOSBootImagesPath, body: bootImages + policy},
		entry{name: ImageReferencesPath, body: refsV1},
		entry{name: MetadataPath, body: metaV1}))
	files, err := ReadFiles(t.Context(), ls)
	if err != nil {
		t.Fatal(err)
	}
	if len(files.PolicyFiles) != 1 || files.PolicyFiles[0].Name != CoreOSBootImagesPath {
		t.Errorf("policy files %+v, want the bootimages manifest", files.PolicyFiles)
	}
	if _, err := files.BootImages(); err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Errorf("BootImages: %v", err)
	}

	big := bootImages + strings.Repeat("#\n", MaxCoreOSBootImagesSize/2) + policy
	ls, _ = openers(layer(t, plain,
		entry{name: CoreOSBootImagesPath, body: big},
		entry{name: ImageReferencesPath, body: refsV1},
		entry{name: MetadataPath, body: metaV1}))
	if _, err := ReadFiles(t.Context(), ls); err == nil || !strings.Contains(err.Error(), "MaxPolicyFileSize") {
		t.Errorf("a too large manifest naming a policy: %v", err)
	}
}
