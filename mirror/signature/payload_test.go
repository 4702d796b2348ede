package signature_test

import (
	"strings"
	"testing"

	"github.com/ferryhq/ferry/mirror/signature"
)

const (
	digestJSON = `"docker-manifest-digest": "` + testDigest + `"`
	imageJSON  = `"image": {` + digestJSON + `}`
	identJSON  = `"identity": {"docker-reference": "quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64"}`
	typeJSON   = `"type": "atomic container signature"`
	critJSON   = `"critical": {` + imageJSON + `, ` + typeJSON + `, ` + identJSON + `}`
)

func TestParsePayload(t *testing.T) {
	const ref = "quay.io/openshift-release-dev/ocp-release:4.15.0-x86_64"
	tests := []struct {
		name string
		json string
		want signature.Payload
	}{
		{"red hat form", `{` + critJSON + `, "optional": {"creator": "Red Hat OpenShift Signing Authority 0.0.1"}}`,
			signature.Payload{Digest: testDigest, Identity: ref, Creator: "Red Hat OpenShift Signing Authority 0.0.1"}},
		{"with timestamp", `{` + critJSON + `, "optional": {"creator": "c", "timestamp": 1708963212}}`,
			signature.Payload{Digest: testDigest, Identity: ref, Creator: "c", Timestamp: 1708963212}},
		{"timestamp only", `{"optional": {"timestamp": 5}, ` + critJSON + `}`,
			signature.Payload{Digest: testDigest, Identity: ref, Timestamp: 5}},
		{"empty optional", `{` + critJSON + `, "optional": {}}`, signature.Payload{Digest: testDigest, Identity: ref}},
		{"no optional", `{` + critJSON + `}`, signature.Payload{Digest: testDigest, Identity: ref}},
		{"whitespace around", "\n {" + critJSON + "} \n", signature.Payload{Digest: testDigest, Identity: ref}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := signature.ParsePayload([]byte(tt.json))
			if err != nil {
				t.Fatalf("ParsePayload: %v", err)
			}
			if *p != tt.want {
				t.Errorf("ParsePayload = %+v, want %+v", *p, tt.want)
			}
		})
	}
}

func TestParsePayloadErrors(t *testing.T) {
	crit := func(inner string) string { return `{"critical": {` + inner + `}}` }
	payloadErr := func(field string) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			t.Helper()
			if e := wantErr[*signature.PayloadError](t, err); e.Field != field {
				t.Errorf("PayloadError.Field = %q, want %q", e.Field, field)
			}
		}
	}
	tests := []struct {
		name  string
		json  string
		check func(*testing.T, error)
	}{
		{"not JSON", `not json`, payloadErr("")},
		{"empty", ``, payloadErr("")},
		{"array", `[]`, payloadErr("")},
		{"null", `null`, payloadErr("")},
		{"data after the object", `{` + critJSON + `} {}`, payloadErr("")},
		{"unterminated", `{` + critJSON, payloadErr("")},
		{"missing critical", `{"optional": {}}`, payloadErr("critical")},
		{"critical twice", `{` + critJSON + `, ` + critJSON + `}`, payloadErr("critical")},
		{"critical not an object", `{"critical": "x"}`, payloadErr("critical")},
		{"key case differs", `{"Critical": {` + imageJSON + `, ` + typeJSON + `, ` + identJSON + `}}`, unknownField("Critical")},
		{"unknown top-level field", `{` + critJSON + `, "extra": {}}`, unknownField("extra")},
		{"unknown critical field", crit(imageJSON + `, ` + typeJSON + `, ` + identJSON + `, "extra": null`), unknownField("critical.extra")},
		{"unknown image field", crit(`"image": {` + digestJSON + `, "x": 1}, ` + typeJSON + `, ` + identJSON), unknownField("critical.image.x")},
		{"unknown identity field", crit(imageJSON + `, ` + typeJSON + `, "identity": {"docker-reference": "r", "x": 1}`), unknownField("critical.identity.x")},
		{"unknown optional field", `{` + critJSON + `, "optional": {"creator": "c", "extra": 1}}`, unknownField("optional.extra")},
		{"missing type", crit(imageJSON + `, ` + identJSON), payloadErr("critical.type")},
		{"type twice", crit(imageJSON + `, ` + typeJSON + `, ` + typeJSON + `, ` + identJSON), payloadErr("critical.type")},
		{"type not a string", crit(imageJSON + `, "type": 1, ` + identJSON), payloadErr("critical.type")},
		{"type null", crit(imageJSON + `, "type": null, ` + identJSON), payloadErr("critical.type")},
		{"wrong type", crit(imageJSON + `, "type": "atomic container signature ", ` + identJSON), isErr[*signature.WrongTypeError]},
		{"type case differs", crit(imageJSON + `, "type": "Atomic container signature", ` + identJSON), isErr[*signature.WrongTypeError]},
		{"missing image", crit(typeJSON + `, ` + identJSON), payloadErr("critical.image")},
		{"image not an object", crit(`"image": "x", ` + typeJSON + `, ` + identJSON), payloadErr("critical.image")},
		{"missing digest", crit(`"image": {}, ` + typeJSON + `, ` + identJSON), payloadErr("critical.image.docker-manifest-digest")},
		{"malformed digest", crit(`"image": {"docker-manifest-digest": "sha256:abc"}, ` + typeJSON + `, ` + identJSON), payloadErr("critical.image.docker-manifest-digest")},
		{"digest without algorithm", crit(`"image": {"docker-manifest-digest": "` + strings.Repeat("a", 64) + `"}, ` + typeJSON + `, ` + identJSON), payloadErr("critical.image.docker-manifest-digest")},
		{"digest upper-case hex", crit(`"image": {"docker-manifest-digest": "sha256:` + strings.Repeat("A", 64) + `"}, ` + typeJSON + `, ` + identJSON), payloadErr("critical.image.docker-manifest-digest")},
		{"missing identity", crit(imageJSON + `, ` + typeJSON), payloadErr("critical.identity")},
		{"missing reference", crit(imageJSON + `, ` + typeJSON + `, "identity": {}`), payloadErr("critical.identity.docker-reference")},
		{"empty reference", crit(imageJSON + `, ` + typeJSON + `, "identity": {"docker-reference": ""}`), payloadErr("critical.identity.docker-reference")},
		{"null reference", crit(imageJSON + `, ` + typeJSON + `, "identity": {"docker-reference": null}`), payloadErr("critical.identity.docker-reference")},
		{"optional not an object", `{` + critJSON + `, "optional": []}`, payloadErr("optional")},
		{"creator not a string", `{` + critJSON + `, "optional": {"creator": 1}}`, payloadErr("optional.creator")},
		{"timestamp a string", `{` + critJSON + `, "optional": {"timestamp": "1"}}`, payloadErr("optional.timestamp")},
		{"timestamp a fraction", `{` + critJSON + `, "optional": {"timestamp": 1.5}}`, payloadErr("optional.timestamp")},
		{"timestamp null", `{` + critJSON + `, "optional": {"timestamp": null}}`, payloadErr("optional.timestamp")},
		{"too large", `{` + critJSON + `, "optional": {"creator": "` + strings.Repeat("x", signature.MaxPayloadSize) + `"}}`, payloadErr("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := signature.ParsePayload([]byte(tt.json))
			if err == nil {
				t.Fatalf("ParsePayload = %+v, want an error", *p)
			}
			tt.check(t, err)
		})
	}
}
