package retry

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxAfter bounds a Retry-After, so that a huge one cannot overflow
// time.Duration; a Policy's Max caps the wait further.
const MaxAfter = 24 * time.Hour

// ParseAfter reads a Retry-After header: delay seconds or an HTTP date
// (one in the past asks for no wait), at most MaxAfter. ok is false when
// there is none or it does not parse (a negative delay does not).
func ParseAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(MaxAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxAfter), true
	}
	return 0, false
}
