// Package strictjson decodes JSON that ferry reads back from untrusted
// places (a bundle's index, an inventory carried across the gap): exactly
// one value, no unknown fields, nothing after it. Callers cap the input.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Decode decodes data into v, refusing unknown fields and any data after
// the JSON value.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}
