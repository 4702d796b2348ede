package serve

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
)

// accessLog logs one line per request: method, path, status, bytes sent,
// duration, client and the user it claimed (when not refused). Server
// errors (5xx) are logged as errors.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if rec.status >= http.StatusInternalServerError {
			level = slog.LevelError
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes), slog.Duration("duration", time.Since(start)), slog.String("client", r.RemoteAddr),
		}
		if user, _, ok := r.BasicAuth(); ok && rec.status != http.StatusUnauthorized {
			attrs = append(attrs, slog.String("user", user))
		}
		log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// statusRecorder remembers the status and counts the bytes of an answer.
// It passes ReadFrom through, so that blobs still go out by sendfile.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) ReadFrom(src io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// LogHook routes the distribution library's log (it logs through logrus's
// standard logger) into a slog logger, in ferry's format. The library logs
// every request and every refused one, which the access log already says:
// its request-scoped lines and its info lines go to debug; its warnings and
// errors outside a request (storage, upload purging) keep their level.
// The program installs it: logrus.StandardLogger().AddHook(hook), with the
// logger's output discarded.
type LogHook struct {
	Log *slog.Logger
}

// Levels are all of logrus's levels: the slog handler filters.
func (h LogHook) Levels() []logrus.Level { return logrus.AllLevels }

// requestField is the field the library sets on request-scoped lines.
const requestField = "http.request.method"

// Fire logs one library line.
func (h LogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	if _, inRequest := e.Data[requestField]; !inRequest {
		switch {
		case e.Level <= logrus.ErrorLevel:
			level = slog.LevelError
		case e.Level == logrus.WarnLevel:
			level = slog.LevelWarn
		}
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if !h.Log.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]slog.Attr, 0, len(e.Data)+1)
	attrs = append(attrs, slog.String("component", "registry"))
	for _, k := range slices.Sorted(maps.Keys(e.Data)) {
		if k != "go.version" {
			attrs = append(attrs, slog.Any(k, e.Data[k]))
		}
	}
	h.Log.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}
