package serve

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestLogHook: the library's request-scoped lines and info lines go to
// debug; its warnings and errors outside a request keep their level, with
// their fields.
func TestLogHook(t *testing.T) {
	var out bytes.Buffer
	lr := logrus.New()
	lr.SetOutput(io.Discard)
	lr.SetLevel(logrus.DebugLevel)
	lr.AddHook(LogHook{Log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))})

	lr.WithField(requestField, "HEAD").Error("response completed with error")
	lr.Info("redis not configured")
	lr.WithField("path", "/docker/registry/v2/_uploads").Warn("upload purge failed")
	lr.Error("storage unreachable")

	got := out.String()
	for _, hidden := range []string{"response completed", "redis"} {
		if strings.Contains(got, hidden) {
			t.Errorf("%q reached the info log:\n%s", hidden, got)
		}
	}
	for _, want := range []string{`level=WARN msg="upload purge failed" component=registry path=/docker/registry/v2/_uploads`,
		`level=ERROR msg="storage unreachable" component=registry`} {
		if !strings.Contains(got, want) {
			t.Errorf("the log does not say %q:\n%s", want, got)
		}
	}
}
