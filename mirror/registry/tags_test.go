package registry

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferryhq/ferry/e2e/testbed"
)

// manyTags is a registry whose repository ocp/many holds more tags than
// one page lists, and those tags, sorted.
func manyTags(t *testing.T) (*testbed.Registry, []string) {
	t.Helper()
	reg := testbed.NewMemoryRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/many", "")
	var want []string
	for i := range tagsPageSize + 5 {
		tag := fmt.Sprintf("t%05d", i)
		pushManifest(t, reg.URL, "ocp/many", tag, img.mediaType, img.manifest)
		want = append(want, tag)
	}
	return reg, want
}

// TestListTagsPages: a repository of more tags than one page holds is
// listed in full, page by page, behind bearer-token auth.
func TestListTagsPages(t *testing.T) {
	ctx := ctxT(t)
	reg, want := manyTags(t)
	p := testbed.NewFaultProxy(t, reg.URL)
	p.SetAuth(&testbed.TokenAuth{Username: "user", Password: "secret"})
	tags, err := New(authOptions(t, nil, p.Host, "user", "secret")).ListTags(ctx, p.Host+"/ocp/many")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, want) {
		t.Errorf("listed %d tags, want %d", len(tags), len(want))
	}
	if s := p.Stats(); s.TokensIssued == 0 || s.Methods[http.MethodGet] < 3 {
		t.Errorf("no token or fewer than two pages: %+v", s)
	}
}

// TestListTagsRetriesThePage: a page whose first try fails (503) is
// asked for again, the same page: the listing is complete, not restarted
// nor cut short.
func TestListTagsRetriesThePage(t *testing.T) {
	ctx := ctxT(t)
	reg, want := manyTags(t)
	p := testbed.NewFaultProxy(t, reg.URL)
	secondPage := func(r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/tags/list") && r.URL.Query().Get("last") != ""
	}
	p.SetFaults(testbed.Faults{Errors: 1, Times: 1, Match: secondPage})
	var retries atomic.Int32
	tags, err := New(testOptions(t, &retries)).ListTags(ctx, p.Host+"/ocp/many")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, want) || retries.Load() != 1 {
		t.Errorf("listed %d tags of %d after %d retries; want all after 1", len(tags), len(want), retries.Load())
	}
}

// TestListTagsUnknownRepository: a 404 is ErrNotFound, which Scan takes
// for an empty repository.
func TestListTagsUnknownRepository(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	_, err := New(testOptions(t, nil)).ListTags(ctxT(t), reg.Host+"/no/such")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), reg.Host+"/no/such") {
		t.Errorf("error = %v, want ErrNotFound naming the repository", err)
	}
}

// TestListTagsEndless: a registry whose tag list always links to a next
// page is read up to MaxTags tags, or maxTagPages pages when they hold
// none, and no further: a *TagListBoundError naming the repository.
func TestListTagsEndless(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/endless", "real")
	for _, tc := range []struct {
		empty bool
		bound string
		limit int
		pages int64
	}{
		{false, "MaxTags", MaxTags, MaxTags/tagsPageSize + 1},
		{true, "maxTagPages", maxTagPages, maxTagPages},
	} {
		t.Run(tc.bound, func(t *testing.T) {
			p := testbed.NewEndlessTagsProxy(t, reg.URL)
			p.Empty = tc.empty
			var retries atomic.Int32
			_, err := New(testOptions(t, &retries)).ListTags(ctxT(t), p.Host+"/ocp/endless")
			be, ok := errors.AsType[*TagListBoundError](err)
			if !ok || be.Bound != tc.bound || be.Limit != tc.limit || be.Repository != p.Host+"/ocp/endless" ||
				!strings.Contains(err.Error(), "registry."+tc.bound) {
				t.Fatalf("error = %v, want a *TagListBoundError for %s", err, tc.bound)
			}
			if got := p.Pages(); got != tc.pages || retries.Load() != 0 {
				t.Errorf("%d pages read (%d retries), want %d", got, retries.Load(), tc.pages)
			}
		})
	}
}

// TestListTagsHostilePages: a page larger than maxTagsPageBytes, or a
// broken Link, fails the listing.
func TestListTagsHostilePages(t *testing.T) {
	reg := testbed.NewMemoryRegistry(t)
	img := makeImage("a", "amd64")
	img.push(t, reg.URL, "ocp/x", "real")
	for _, tc := range []struct {
		name string
		rule func(w http.ResponseWriter)
		want string
	}{
		{"huge page", func(w http.ResponseWriter) {
			w.Write([]byte(`{"tags":["`))
			chunk := []byte(strings.Repeat("a", 1<<20))
			for range maxTagsPageBytes>>20 + 1 {
				w.Write(chunk)
			}
		}, "larger than"},
		{"bad link", func(w http.ResponseWriter) {
			w.Header().Set("Link", "<:%zz>; rel=next")
			w.Write([]byte(`{"tags":["a"]}`))
		}, "invalid Link header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, reg, func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if !strings.HasSuffix(r.URL.Path, "/tags/list") {
					return false
				}
				tc.rule(w)
				return true
			})
			_, err := New(testOptions(t, nil)).ListTags(ctxT(t), p.Host+"/ocp/x")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestParseChallenge(t *testing.T) {
	c := parseChallenge(`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`)
	if c.scheme != "bearer" || c.params["realm"] != "https://auth.example/token" || c.params["service"] != "registry.example" ||
		c.params["scope"] != "repository:a/b:pull,push" {
		t.Errorf("parsed %+v", c)
	}
	if c := parseChallenge(`Basic realm=registry`); c.scheme != "basic" || c.params["realm"] != "registry" {
		t.Errorf("parsed %+v", c)
	}
	if c := parseChallenge(""); c.scheme != "" {
		t.Errorf("parsed %+v", c)
	}
}
