package registry

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/mirror/retry"
)

// FuzzAnswerHeaders feeds the headers ferry reads from a registry's
// answers itself (a hostile registry writes them): the auth challenge, the
// tag list's Link and Retry-After. Each must end, stay within its bounds,
// and never lead a request to another host.
func FuzzAnswerHeaders(f *testing.F) {
	f.Add(`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`,
		`</v2/a/b/tags/list?last=t&n=1000>; rel="next"`, "120", []byte(`{"errors":[{"code":"UNSUPPORTED"}]}`))
	f.Add(`Basic realm="x\"y"`, `<https://evil.example/v2/x/tags/list>`, "Fri, 04 Dec 2026 17:00:00 GMT", []byte(`{}`))
	f.Add(`bearer a=,b="`, `<//evil.example/x?u=http://evil.example/>`, "-5", []byte(`[`))
	now := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, challengeHeader, link, retryHeader string, body []byte) {
		c := parseChallenge(challengeHeader)
		if len(c.params) > len(challengeHeader) {
			t.Fatalf("%d parameters from a %d-byte header", len(c.params), len(challengeHeader))
		}
		if next, err := nextPage(link); err == nil && next != "" {
			if !strings.HasPrefix(next, "/") {
				t.Fatalf("next page %q (from %q) is not a path on this registry", next, link)
			}
			u, perr := url.Parse("https://registry.example" + next)
			if perr == nil && u.Host != "registry.example" {
				t.Fatalf("next page %q (from %q) leads to host %q", next, link, u.Host)
			}
		}
		if d := retryAfter(retryHeader, now); d < 0 || d > retry.MaxAfter {
			t.Fatalf("Retry-After %q gives %v, outside [0, %v]", retryHeader, d, retry.MaxAfter)
		}
		_ = hasErrorCode(body, "UNSUPPORTED")
	})
}
