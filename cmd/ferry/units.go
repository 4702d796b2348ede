package main

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes --volume-size accepts: SI (kB, MB, GB, TB) and
// binary (KiB, MiB, GiB, TiB), case-insensitive; a bare number is bytes.
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// parseSize reads a size such as "4GiB" or "700MB"; "" is 0.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	lower := strings.ToLower(s)
	factor := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			lower, factor = strings.TrimSpace(strings.TrimSuffix(lower, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseFloat(lower, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size; write e.g. 4GiB, 700MB or 1048576", s)
	}
	size := n * float64(factor)
	if size > float64(1<<62) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(size), nil
}

// formatBytes prints n in binary units.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
