package signature

import (
	"bytes"
	_ "crypto/sha256" // digest.Parse needs the algorithms linked in
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
)

// PayloadType is the only critical.type the cluster accepts.
const PayloadType = "atomic container signature"

// MaxPayloadSize caps a signature's payload (its literal data). Real
// payloads are a few hundred bytes.
const MaxPayloadSize = 64 << 10

// Payload is the signed JSON of a release signature (SPEC §2):
//
//	{"critical": {"type": "atomic container signature",
//	              "image": {"docker-manifest-digest": "sha256:..."},
//	              "identity": {"docker-reference": "quay.io/...:4.15.0-x86_64"}},
//	 "optional": {"creator": "...", "timestamp": 1700000000}}
type Payload struct {
	// Digest is critical.image.docker-manifest-digest.
	Digest digest.Digest
	// Identity is critical.identity.docker-reference, never empty. It is
	// informative only: it is not compared to any image name.
	Identity string
	// Creator is optional.creator, empty when absent.
	Creator string
	// Timestamp is optional.timestamp in Unix seconds, 0 when absent.
	Timestamp int64
}

// ParsePayload parses a payload strictly, as the cluster does: every object
// may hold only its defined fields (matched case-sensitively, each at most
// once), critical.type must be exactly PayloadType, the digest must be well
// formed and the reference non-empty. The optional object and its fields
// may be absent. Nothing may follow the JSON object. data larger than
// MaxPayloadSize is refused. Errors are a *PayloadError, *UnknownFieldError
// or *WrongTypeError.
func ParsePayload(data []byte) (*Payload, error) {
	if len(data) > MaxPayloadSize {
		return nil, &PayloadError{Reason: fmt.Sprintf("%d bytes, larger than the %d-byte limit", len(data), MaxPayloadSize)}
	}
	top, err := jsonObject(data, "", "critical", "optional")
	if err != nil {
		return nil, err
	}
	rawCritical, ok := top["critical"]
	if !ok {
		return nil, &PayloadError{Field: "critical", Reason: "missing"}
	}
	critical, err := jsonObject(rawCritical, "critical", "type", "image", "identity")
	if err != nil {
		return nil, err
	}

	typ, err := jsonString(critical, "critical", "type")
	if err != nil {
		return nil, err
	}
	if typ != PayloadType {
		return nil, &WrongTypeError{Type: typ}
	}

	p := &Payload{}
	image, err := jsonSubObject(critical, "critical", "image", "docker-manifest-digest")
	if err != nil {
		return nil, err
	}
	d, err := jsonString(image, "critical.image", "docker-manifest-digest")
	if err != nil {
		return nil, err
	}
	if p.Digest, err = digest.Parse(d); err != nil {
		return nil, &PayloadError{Field: "critical.image.docker-manifest-digest", Reason: fmt.Sprintf("%q is not a valid digest: %v", d, err)}
	}

	identity, err := jsonSubObject(critical, "critical", "identity", "docker-reference")
	if err != nil {
		return nil, err
	}
	if p.Identity, err = jsonString(identity, "critical.identity", "docker-reference"); err != nil {
		return nil, err
	}
	if p.Identity == "" {
		return nil, &PayloadError{Field: "critical.identity.docker-reference", Reason: "empty"}
	}

	rawOptional, ok := top["optional"]
	if !ok {
		return p, nil
	}
	optional, err := jsonObject(rawOptional, "optional", "creator", "timestamp")
	if err != nil {
		return nil, err
	}
	if _, ok := optional["creator"]; ok {
		if p.Creator, err = jsonString(optional, "optional", "creator"); err != nil {
			return nil, err
		}
	}
	if raw, ok := optional["timestamp"]; ok {
		// json.Unmarshal accepts null for an int64 and leaves it 0; a
		// null timestamp is not an integer, so refuse it ourselves.
		if string(raw) == "null" {
			return nil, &PayloadError{Field: "optional.timestamp", Reason: "want an integer, got null"}
		}
		if err := json.Unmarshal(raw, &p.Timestamp); err != nil {
			return nil, &PayloadError{Field: "optional.timestamp", Reason: "want an integer: " + err.Error()}
		}
	}
	return p, nil
}

// jsonObject decodes data as exactly one JSON object whose keys are all in
// allowed, each present at most once, and returns each key's raw value.
// Unlike encoding/json's struct decoding it matches keys case-sensitively
// and refuses duplicates: a payload must mean the same thing to every
// parser that reads it.
func jsonObject(data []byte, path string, allowed ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, &PayloadError{Field: path, Reason: "not valid JSON: " + err.Error()}
	}
	if tok != json.Delim('{') {
		return nil, &PayloadError{Field: path, Reason: fmt.Sprintf("want a JSON object, got %s", jsonKind(tok))}
	}
	fields := make(map[string]json.RawMessage, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, &PayloadError{Field: path, Reason: "not valid JSON: " + err.Error()}
		}
		key, ok := tok.(string)
		if !ok { // the decoder only yields strings in key position; be safe
			return nil, &PayloadError{Field: path, Reason: "object key is not a string"}
		}
		field := joinPath(path, key)
		if !slices.Contains(allowed, key) {
			return nil, &UnknownFieldError{Field: field}
		}
		if _, dup := fields[key]; dup {
			return nil, &PayloadError{Field: field, Reason: "appears more than once"}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &PayloadError{Field: field, Reason: "not valid JSON: " + err.Error()}
		}
		fields[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, &PayloadError{Field: path, Reason: "not valid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &PayloadError{Field: path, Reason: "data after the JSON object"}
	}
	return fields, nil
}

// jsonSubObject returns the fields of the required object parent.key, which
// may hold only the field want, and requires that field.
func jsonSubObject(parent map[string]json.RawMessage, path, key, want string) (map[string]json.RawMessage, error) {
	field := joinPath(path, key)
	raw, ok := parent[key]
	if !ok {
		return nil, &PayloadError{Field: field, Reason: "missing"}
	}
	obj, err := jsonObject(raw, field, want)
	if err != nil {
		return nil, err
	}
	if _, ok := obj[want]; !ok {
		return nil, &PayloadError{Field: joinPath(field, want), Reason: "missing"}
	}
	return obj, nil
}

// jsonString returns the required string obj[key].
func jsonString(obj map[string]json.RawMessage, path, key string) (string, error) {
	field := joinPath(path, key)
	raw, ok := obj[key]
	if !ok {
		return "", &PayloadError{Field: field, Reason: "missing"}
	}
	// json.Unmarshal would turn null into "" without error.
	if len(raw) == 0 || raw[0] != '"' {
		return "", &PayloadError{Field: field, Reason: "want a string, got " + jsonRawKind(raw)}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &PayloadError{Field: field, Reason: "want a string: " + err.Error()}
	}
	return s, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('[') {
			return "an array"
		}
		return fmt.Sprintf("%q", tok)
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

func jsonRawKind(raw json.RawMessage) string {
	tok, err := json.NewDecoder(bytes.NewReader(raw)).Token()
	if err != nil {
		return "invalid JSON"
	}
	if tok == json.Delim('{') {
		return "an object"
	}
	return jsonKind(tok)
}
