package retry

import (
	"testing"
	"time"
)

func TestParseAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"-1", 0, false},
		{"99999999999", MaxAfter, true},
		{"Wed, 01 May 2024 12:00:30 GMT", 30 * time.Second, true},
		{"Wed, 01 May 2024 11:00:00 GMT", 0, true}, // in the past
		{"Fri, 01 May 2026 12:00:00 GMT", MaxAfter, true},
		{"soon", 0, false},
	} {
		if got, ok := ParseAfter(tt.in, now); got != tt.want || ok != tt.ok {
			t.Errorf("ParseAfter(%q) = %s, %t; want %s, %t", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-5", "Wed, 01 May 2024 12:00:30 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "x"} {
		f.Add(s)
	}
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseAfter(v, now)
		if d < 0 || d > MaxAfter || (!ok && d != 0) {
			t.Fatalf("ParseAfter(%q) = %s, %t", v, d, ok)
		}
	})
}
