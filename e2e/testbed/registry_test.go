package testbed

import (
	"net/http"
	"testing"
)

func TestRegistryServesV2(t *testing.T) {
	r := NewRegistry(t)
	resp, err := http.Get(r.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", resp.Status)
	}
}
