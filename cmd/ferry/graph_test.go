package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

// graphService serves body as the update service would, checking the query.
func graphService(t *testing.T, status int, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("channel") == "" || r.URL.Query().Get("arch") == "" || r.Header.Get("Accept") != "application/json" {
			t.Errorf("request %s lacks channel, arch or Accept", r.URL)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/upgrades_info/v1/graph"
}

// graphFixture returns the real snapshot, and its payload pull spec by version.
func graphFixture(t *testing.T) ([]byte, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(fixture(t, "graph", "graph-stable-4.15.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Nodes []struct{ Version, Payload string }
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	payloads := map[string]string{}
	for _, n := range doc.Nodes {
		payloads[n.Version] = n.Payload
	}
	return data, payloads
}

func TestGraphReleases(t *testing.T) {
	data, payloads := graphFixture(t)
	u := graphService(t, http.StatusOK, data)

	out := mustFerry(t, "graph", "--channel", "stable-4.15", "--graph-url", u)
	if !strings.Contains(out, "Channel stable-4.15 (amd64): 55 releases, 4.14.0 to 4.15.23") {
		t.Errorf("no summary line:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2+1+55 || !strings.HasPrefix(lines[2], "VERSION") {
		t.Fatalf("want a header and 55 rows, got %d lines:\n%s", len(lines), out)
	}
	last := strings.Fields(lines[len(lines)-1])
	if last[0] != "4.15.23" || !strings.HasSuffix(payloads["4.15.23"], "@"+last[1]) || !strings.HasPrefix(last[2], "https://access.redhat.com/errata/") {
		t.Errorf("last row %v, want 4.15.23, its digest and errata", last)
	}

	// The same from a saved copy, as JSON, with a release-style arch name.
	fileURL := (&url.URL{Scheme: "file", Path: fixture(t, "graph", "graph-stable-4.15.json")}).String()
	out = mustFerry(t, "graph", "--channel", "stable-4.15", "--arch", "x86_64", "--graph-url", fileURL, "--json")
	var got struct {
		Channel, Arch string
		Releases      []struct{ Version, Payload, Digest, URL string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got.Channel != "stable-4.15" || got.Arch != "amd64" || len(got.Releases) != 55 {
		t.Fatalf("JSON: %s (%s), %d releases", got.Channel, got.Arch, len(got.Releases))
	}
	for _, r := range got.Releases {
		if r.Payload != payloads[r.Version] || !strings.HasSuffix(r.Payload, "@"+r.Digest) || r.URL == "" {
			t.Errorf("release %+v differs from the snapshot", r)
		}
	}
}

func TestGraphPath(t *testing.T) {
	data, payloads := graphFixture(t)
	u := graphService(t, http.StatusOK, data)

	// Only conditional updates reach 4.15.23 from 4.14.10.
	code, out, errOut := ferry(t, "graph", "--channel", "stable-4.15", "--graph-url", u, "--from", "4.14.10", "--to", "4.15.23")
	if code != exitFailure || out != "" || !strings.Contains(errOut, "rerun with --accept-risks") ||
		!strings.Contains(errOut, "With --accept-risks, ferry would take this path") || !strings.Contains(errOut, "https://issues.redhat.com/browse/") {
		t.Fatalf("without --accept-risks: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	out = mustFerry(t, "graph", "--channel", "stable-4.15", "--graph-url", u, "--from", "4.14.10", "--to", "4.15.23", "--accept-risks")
	for _, want := range []string{"Update path from 4.14.10 to 4.15.23 in stable-4.15 (amd64): 2 updates, 1 conditional",
		"HOP  FROM", "Known risks", "https://issues.redhat.com/browse/"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out = mustFerry(t, "graph", "--channel", "stable-4.15", "--graph-url", u, "--from", "4.14.10", "--to", "4.15.23", "--accept-risks", "--json")
	var p struct {
		From, To, Digest string
		AcceptRisks      bool
		Hops             []struct {
			From, To, Payload, Digest string
			Risks                     []struct{ Name, Message, URL string }
		}
		Risks []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if p.From != "4.14.10" || p.To != "4.15.23" || !p.AcceptRisks || len(p.Hops) != 2 || len(p.Risks) == 0 {
		t.Fatalf("JSON path %+v", p)
	}
	at, conditional := "4.14.10", 0
	for _, h := range p.Hops {
		if h.From != at || h.Payload != payloads[h.To] || !strings.HasSuffix(h.Payload, "@"+h.Digest) {
			t.Errorf("hop %+v does not follow on from %s with the snapshot's payload", h, at)
		}
		at = h.To
		if len(h.Risks) > 0 {
			conditional++
			for _, r := range h.Risks {
				if r.Name == "" || r.Message == "" || !strings.HasPrefix(r.URL, "https://") {
					t.Errorf("risk %+v incomplete", r)
				}
			}
		}
	}
	if at != "4.15.23" || conditional != 1 {
		t.Errorf("path ends at %s with %d conditional hops", at, conditional)
	}

	out = mustFerry(t, "graph", "--channel", "stable-4.15", "--graph-url", u, "--from", "4.15.0", "--to", "4.15.0")
	if !strings.Contains(out, "no update needed") {
		t.Errorf("same version: %s", out)
	}
}

func TestGraphMentionsShorterRiskyPath(t *testing.T) {
	payload := func(c string) string {
		return "quay.io/openshift-release-dev/ocp-release@sha256:" + strings.Repeat(c, 64)
	}
	doc := `{"version":1,"nodes":[` +
		`{"version":"4.15.0","payload":"` + payload("0") + `","metadata":{}},` +
		`{"version":"4.15.1","payload":"` + payload("1") + `","metadata":{}},` +
		`{"version":"4.15.2","payload":"` + payload("2") + `","metadata":{}}],` +
		`"edges":[[0,1],[1,2]],"conditionalEdges":[{"edges":[{"from":"4.15.0","to":"4.15.2"}],` +
		`"risks":[{"name":"EtcdSlow","message":"etcd may be slow","url":"https://issues.example/1","matchingRules":[{"type":"Always"}]}]}]}`
	u := graphService(t, http.StatusOK, []byte(doc))

	out := mustFerry(t, "graph", "--channel", "stable-4.15", "--graph-url", u, "--from", "4.15.0", "--to", "4.15.2")
	for _, want := range []string{"2 updates\n", "4.15.1", "A shorter path of 1 update goes through conditional updates: 4.15.0 -> 4.15.2 (risks: EtcdSlow)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out = mustFerry(t, "graph", "--channel", "stable-4.15", "--graph-url", u, "--from", "4.15.0", "--to", "4.15.2", "--accept-risks")
	for _, want := range []string{"1 update, 1 conditional", "EtcdSlow (4.15.0 -> 4.15.2)", "etcd may be slow", "https://issues.example/1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "4.15.1") {
		t.Errorf("with risks accepted the path should skip 4.15.1:\n%s", out)
	}
}

func TestGraphErrors(t *testing.T) {
	data, _ := graphFixture(t)
	good := graphService(t, http.StatusOK, data)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/graph"
	l.Close()

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no channel", []string{"--graph-url", good}, exitUsage, "--channel is required"},
		{"from without to", []string{"--channel", "stable-4.15", "--from", "4.15.0"}, exitUsage, "--from and --to go together"},
		{"to without from", []string{"--channel", "stable-4.15", "--to", "4.15.0"}, exitUsage, "--from and --to go together"},
		{"bad arch", []string{"--channel", "stable-4.15", "--arch", "sparc"}, exitUsage, "sparc"},
		{"bad version", []string{"--channel", "stable-4.15", "--from", "4.15", "--to", "4.15.2"}, exitUsage, `--from: invalid release version "4.15"`},
		{"risks without path", []string{"--channel", "stable-4.15", "--accept-risks"}, exitUsage, "--accept-risks applies to an update path"},
		{"argument", []string{"--channel", "stable-4.15", "4.15.0"}, exitUsage, "no arguments"},
		{"unknown version", []string{"--channel", "stable-4.15", "--graph-url", good, "--from", "4.15.99", "--to", "4.15.23"}, exitFailure,
			"version 4.15.99 is not in the update graph of channel stable-4.15 (amd64), which holds 4.14.0 to 4.15.23"},
		{"downgrade", []string{"--channel", "stable-4.15", "--graph-url", good, "--from", "4.15.23", "--to", "4.15.0", "--accept-risks"}, exitFailure,
			"updates only go to newer releases"},
		{"api error", []string{"--channel", "stable 4.15", "--graph-url",
			graphService(t, http.StatusBadRequest, []byte(`{"kind":"Invalid parameter","value":"invalid channel name 'stable 4.15'"}`))}, exitFailure,
			"update service answered 400: Invalid parameter: invalid channel name 'stable 4.15'"},
		{"unknown channel", []string{"--channel", "stable-9.99", "--graph-url",
			graphService(t, http.StatusOK, []byte(`{"version":1,"nodes":[],"edges":[],"conditionalEdges":[]}`))}, exitFailure,
			`channel "stable-9.99" has no amd64 releases`},
		{"malformed", []string{"--channel", "stable-4.15", "--graph-url", graphService(t, http.StatusOK, data[:1000])}, exitFailure,
			"malformed update graph: invalid JSON"},
		{"oversized", []string{"--channel", "stable-4.15", "--graph-url",
			graphService(t, http.StatusOK, []byte(strings.Repeat(" ", 16<<20+1)))}, exitFailure, "16777216-byte limit"},
		{"unreachable", []string{"--channel", "stable-4.15", "--graph-url", closed}, exitFailure, "connection refused (after 4 tries)"},
		{"missing file", []string{"--channel", "stable-4.15", "--graph-url", "file:///no/such/graph.json"}, exitFailure, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := ferry(t, append([]string{"graph"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d; stderr should contain %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}

func TestGraphHelp(t *testing.T) {
	out := mustFerry(t, "graph", "--help")
	for _, want := range []string{"--channel", "--accept-risks", "--graph-url", "Examples:", "ferry graph --channel stable-4.15 --from"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}
