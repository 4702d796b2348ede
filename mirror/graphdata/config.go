package graphdata

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
)

// jsonObject is a JSON object whose members are kept as written, so that
// fields ferry does not know survive an edit.
type jsonObject map[string]json.RawMessage

// object reads the member key as an object: empty when it is absent or
// null.
func (o jsonObject) object(key string) (jsonObject, error) {
	obj := jsonObject{}
	if raw, ok := o[key]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	return obj, nil
}

// set makes v the member key.
func (o jsonObject) set(key string, v any) error {
	raw, err := marshalJSON(v)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	o[key] = raw
	return nil
}

// editConfig is the base config raw with the data layer (diffID) added
// after the base's layers, a history entry saying createdBy, and the
// graph-data command. Every other field is kept.
func editConfig(raw []byte, diffID digest.Digest, baseLayers int, createdBy string) ([]byte, error) {
	var config jsonObject
	if err := json.Unmarshal(raw, &config); err != nil {
		return nil, err
	}
	if config == nil {
		return nil, errors.New("null config")
	}
	created := baseCreated(config)
	if err := config.set("created", created); err != nil {
		return nil, err
	}
	if err := addDiffID(config, diffID, baseLayers); err != nil {
		return nil, err
	}
	if err := addHistory(config, created, createdBy); err != nil {
		return nil, err
	}
	run, err := config.object("config")
	if err != nil {
		return nil, err
	}
	if err := run.set("Cmd", command()); err != nil {
		return nil, err
	}
	delete(run, "Entrypoint")
	if err := config.set("config", run); err != nil {
		return nil, err
	}
	return marshalJSON(config)
}

// baseCreated is the base's created time when it has a valid one, else
// the Unix epoch (see BuildImage).
func baseCreated(config jsonObject) string {
	var s string
	if json.Unmarshal(config["created"], &s) == nil {
		if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return s
		}
	}
	return time.Unix(0, 0).UTC().Format(time.RFC3339)
}

// addDiffID appends diffID to rootfs.diff_ids, which must list one diff
// ID for each of the base's layers.
func addDiffID(config jsonObject, diffID digest.Digest, baseLayers int) error {
	rootfs, err := config.object("rootfs")
	if err != nil {
		return err
	}
	var kind string
	var diffIDs []digest.Digest
	if json.Unmarshal(rootfs["type"], &kind) != nil || kind != "layers" {
		return fmt.Errorf("rootfs.type %s, want \"layers\"", rootfs["type"])
	}
	if err := json.Unmarshal(rootfs["diff_ids"], &diffIDs); err != nil {
		return fmt.Errorf("rootfs.diff_ids: %w", err)
	}
	if len(diffIDs) != baseLayers {
		return fmt.Errorf("rootfs.diff_ids lists %d layers, the manifest %d", len(diffIDs), baseLayers)
	}
	for i, d := range diffIDs {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("rootfs.diff_ids[%d]: %w", i, err)
		}
	}
	if err := rootfs.set("diff_ids", append(diffIDs, diffID)); err != nil {
		return err
	}
	return config.set("rootfs", rootfs)
}

// addHistory appends the data layer's entry to the history, keeping the
// base's entries as written.
func addHistory(config jsonObject, created, createdBy string) error {
	var history []json.RawMessage
	if raw, ok := config["history"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &history); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	entry, err := marshalJSON(struct {
		Created   string `json:"created"`
		CreatedBy string `json:"created_by"`
	}{created, createdBy})
	if err != nil {
		return err
	}
	return config.set("history", append(history, entry))
}
