package testbed

// Structural schemas for the spec of the catalog kinds ferry writes, so that
// the test bed's API server checks ferry's objects the way a cluster does:
// server-side apply refuses a field name the schema does not declare, and
// the API server a required field missing, a value outside an enum, of the
// wrong type or breaking a CEL rule. (A schema that preserved unknown
// fields, like the other test bed CRDs, would take any misspelling.) They
// hold only the fields ferry writes, with the names, types and rules of the
// real CRDs; a field ferry starts writing must be added here, or the test
// bed refuses it. The real sources:
//   - CatalogSource: operator-framework/api crds/operators.coreos.com_catalogsources.yaml
//     as shipped in openshift/operator-framework-olm release-4.20 (cacheDir
//     optional; release-4.15 to 4.19 also require it).
//   - ClusterCatalog: operator-framework/operator-controller
//     api/v1/clustercatalog_types.go (the CEL rules, written anew here).
//   - OperatorHub: openshift/api config/v1 operatorhub CRD.

// specSchema is the openAPIV3Schema of kind's spec, or orElse for a kind
// without one here. Every call builds fresh maps.
func specSchema(kind string, orElse map[string]any) map[string]any {
	switch kind {
	case "CatalogSource":
		return catalogSourceSpecSchema()
	case "ClusterCatalog":
		return clusterCatalogSpecSchema()
	case "OperatorHub":
		return operatorHubSpecSchema()
	}
	return orElse
}

func catalogSourceSpecSchema() map[string]any {
	return schemaObject([]string{"sourceType"}, map[string]any{
		// The real CRD takes any string here and OLM refuses the others
		// when it reconciles; the enum makes the test bed refuse them at once.
		"sourceType":  schemaEnum("grpc", "configmap", "internal"),
		"image":       schemaString(),
		"displayName": schemaString(),
		"publisher":   schemaString(),
		"grpcPodConfig": schemaObject(nil, map[string]any{
			"securityContextConfig": schemaEnum("legacy", "restricted"),
			"extractContent": schemaObject([]string{"catalogDir"}, map[string]any{
				"cacheDir":   schemaString(),
				"catalogDir": schemaString(),
			}),
		}),
	})
}

func clusterCatalogSpecSchema() map[string]any {
	ref := schemaString()
	ref["maxLength"] = 1000
	ref["x-kubernetes-validations"] = []any{map[string]any{
		"rule":    `self.matches('@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}$') || self.matches(':[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$')`,
		"message": "must end with a digest or a tag",
	}}
	image := schemaObject([]string{"ref"}, map[string]any{
		"ref":                 ref,
		"pollIntervalMinutes": map[string]any{"type": "integer", "minimum": 1},
	})
	image["x-kubernetes-validations"] = []any{map[string]any{
		"rule":    `!self.ref.contains('@') || !has(self.pollIntervalMinutes)`,
		"message": "cannot specify pollIntervalMinutes while using digest-based image",
	}}
	source := schemaObject([]string{"type"}, map[string]any{
		"type":  schemaEnum("Image"),
		"image": image,
	})
	source["x-kubernetes-validations"] = []any{map[string]any{
		"rule":    `self.type == 'Image' ? has(self.image) : !has(self.image)`,
		"message": "image is required when source type is Image, and forbidden otherwise",
	}}
	return schemaObject([]string{"source"}, map[string]any{
		"source":           source,
		"priority":         map[string]any{"type": "integer", "format": "int32"},
		"availabilityMode": schemaEnum("Available", "Unavailable"),
	})
}

func operatorHubSpecSchema() map[string]any {
	name := schemaString()
	name["minLength"], name["maxLength"] = 1, 253
	return schemaObject(nil, map[string]any{
		"disableAllDefaultSources": map[string]any{"type": "boolean"},
		"sources": map[string]any{
			"type": "array",
			"items": schemaObject(nil, map[string]any{
				"name":     name,
				"disabled": map[string]any{"type": "boolean"},
			}),
		},
	})
}

func schemaObject(required []string, properties map[string]any) map[string]any {
	s := map[string]any{"type": "object", "properties": properties}
	if len(required) > 0 {
		req := make([]any, len(required))
		for i, r := range required {
			req[i] = r
		}
		s["required"] = req
	}
	return s
}

func schemaString() map[string]any { return map[string]any{"type": "string"} }

func schemaEnum(values ...string) map[string]any {
	enum := make([]any, len(values))
	for i, v := range values {
		enum[i] = v
	}
	return map[string]any{"type": "string", "enum": enum}
}
