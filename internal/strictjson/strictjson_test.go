package strictjson

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type doc struct {
		A int `json:"a"`
	}
	var d doc
	if err := Decode([]byte(`{"a": 1}`), &d); err != nil || d.A != 1 {
		t.Fatalf("valid document: %v, %+v", err, d)
	}
	for in, want := range map[string]string{
		`{"a": 1, "b": 2}`:  "unknown field",
		`{"a": 1} {"a": 2}`: "after the JSON value",
		`{"a": 1} x`:        "after the JSON value",
		`{"a": "one"}`:      "cannot unmarshal",
		``:                  "EOF",
	} {
		if err := Decode([]byte(in), &d); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}
