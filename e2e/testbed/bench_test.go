package testbed

import (
	"runtime"
	"testing"
)

// BenchmarkBuildLargeRelease builds a 500 MiB release on a filesystem-backed
// registry: go test -run '^$' -bench BuildLargeRelease -benchtime 1x ./e2e/testbed/
func BenchmarkBuildLargeRelease(b *testing.B) {
	const total = 500 << 20
	for b.Loop() {
		reg := NewRegistry(b)
		rel := BuildRelease(b, reg.Host, LargeRelease(total))
		if rel.Bytes < total {
			b.Fatalf("release has %d bytes, want %d", rel.Bytes, int64(total))
		}
		b.SetBytes(rel.Bytes)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapSys)/(1<<20), "heap-MiB")
}
