package testbed

import "encoding/json"

// cvoNamespace is one ordinary manifest beside the two that matter.
const cvoNamespace = `apiVersion: v1
kind: Namespace
metadata:
  name: openshift-cluster-version
  annotations:
    include.release.openshift.io/self-managed-high-availability: "true"
`

// imageReferences renders release-manifests/image-references as `oc adm
// release new` does: an ImageStream named after the version, one tag per
// component, with the fields a real one carries.
func imageReferences(version string, comps []Component, annotations func(string) map[string]string) ([]byte, error) {
	type tagRef struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
		From        struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"from"`
		Generation      *int64   `json:"generation"`
		ImportPolicy    struct{} `json:"importPolicy"`
		ReferencePolicy struct {
			Type string `json:"type"`
		} `json:"referencePolicy"`
	}
	var is struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Metadata   struct {
			Name              string            `json:"name"`
			CreationTimestamp string            `json:"creationTimestamp"`
			Annotations       map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			LookupPolicy struct {
				Local bool `json:"local"`
			} `json:"lookupPolicy"`
			Tags []tagRef `json:"tags"`
		} `json:"spec"`
		Status struct {
			DockerImageRepository string `json:"dockerImageRepository"`
		} `json:"status"`
	}
	is.Kind, is.APIVersion = "ImageStream", "image.openshift.io/v1"
	is.Metadata.Name = version
	is.Metadata.CreationTimestamp = epoch.Format("2006-01-02T15:04:05Z")
	is.Metadata.Annotations = map[string]string{"release.openshift.io/from-image-stream": "ocp/" + version + "-art-latest"}
	is.Spec.Tags = []tagRef{}
	for _, c := range comps {
		var t tagRef
		t.Name = c.Name
		t.Annotations = annotations(c.Name)
		t.From.Kind = "DockerImage"
		t.From.Name = c.Image
		t.ReferencePolicy.Type = "Source"
		is.Spec.Tags = append(is.Spec.Tags, t)
	}
	data, err := json.MarshalIndent(is, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// releaseMetadata renders release-manifests/release-metadata.
func releaseMetadata(version string, previous []string, multi bool) ([]byte, error) {
	m := struct {
		Kind     string            `json:"kind"`
		Version  string            `json:"version"`
		Previous []string          `json:"previous"`
		Next     []string          `json:"next"`
		Metadata map[string]string `json:"metadata"`
	}{Kind: "cincinnati-metadata-v0", Version: version, Previous: []string{}, Next: []string{}, Metadata: map[string]string{}}
	m.Previous = append(m.Previous, previous...)
	if multi {
		m.Metadata["release.openshift.io/architecture"] = "multi"
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
