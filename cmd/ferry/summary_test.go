package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// printed is what a summary prints, as text or as --json.
func printed(t *testing.T, print func(*environment, bool) error, asJSON bool) string {
	t.Helper()
	var out bytes.Buffer
	if err := print(newEnvironment(strings.NewReader(""), &out, &bytes.Buffer{}), asJSON); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestPackSummaryAgreesWithJSON: the text summary of a pack holds the
// figures of its --json, in human units, and nothing else: the summary
// decoded from the JSON prints the same text.
func TestPackSummaryAgreesWithJSON(t *testing.T) {
	sum := &packSummary{Bundle: "ferry.tar", ID: "01JEXAMPLE", Volumes: []string{"ferry.tar", "ferry.001.tar"},
		VolumeBytes: []int64{1 << 20, 1900 << 20}, Releases: 2, ReleaseTags: []string{"4.16.1-x86_64", "4.16.3-x86_64"}, Catalogs: 1,
		Images: 190, Blobs: 612, Bytes: 1843 << 20, Prerequisites: 3, PrerequisiteBytes: 12 << 20,
		UpdatePath: []string{"4.16.1", "4.16.3"}, WallTime: 8100 * time.Millisecond}
	text := printed(t, sum.print, false)
	var fromJSON packSummary
	if err := json.Unmarshal([]byte(printed(t, sum.print, true)), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if again := printed(t, fromJSON.print, false); again != text {
		t.Errorf("the summary uses figures --json lacks:\nfrom the struct:\n%s\nfrom its JSON:\n%s", text, again)
	}
	mustContain(t, "pack summary", text,
		"packed 2 releases (4.16.1-x86_64, 4.16.3-x86_64): 190 images, 612 blobs, 1.8 GiB in 8.1s (227.5 MiB/s)",
		fmt.Sprintf("  left out     3 blobs (%s) already in the mirror", formatBytes(fromJSON.PrerequisiteBytes)),
		"  update path  4.16.1 -> 4.16.3",
		"  bundle       ferry.tar (1.0 MiB)\n               ferry.001.tar (1.9 GiB)",
		"  id           01JEXAMPLE")
	t.Logf("pack summary:\n%s", text)
}

// TestApplySummaryAgreesWithJSON: the same for apply.
func TestApplySummaryAgreesWithJSON(t *testing.T) {
	sum := &applySummary{Bundle: "ferry.tar", Target: "registry.example:5000/ocp4/openshift4", BlobsPushed: 600, BlobsSkipped: 12,
		BytesPushed: 1700 << 20, Manifests: 250, Tags: 380, Prerequisites: 3, WallTime: 42 * time.Second,
		Rendered: []string{"ferry-manifests/01JEXAMPLE/idms.yaml"}, NextSteps: []string{"oc adm upgrade --to-image=..."}}
	text := printed(t, sum.print, false)
	var fromJSON applySummary
	if err := json.Unmarshal([]byte(printed(t, sum.print, true)), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if again := printed(t, fromJSON.print, false); again != text {
		t.Errorf("the summary uses figures --json lacks:\nfrom the struct:\n%s\nfrom its JSON:\n%s", text, again)
	}
	mustContain(t, "apply summary", text,
		"pushed 600 blobs (1.7 GiB) to registry.example:5000/ocp4/openshift4 in 42s\n",
		"  already there  12 blobs\n  manifests      250\n  tags           380\n",
		"  prerequisites  all 3 of this incremental bundle in the target already\n",
		"  from           ferry.tar\n")
	t.Logf("apply summary:\n%s", text)
}
