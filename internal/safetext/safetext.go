// Package safetext makes text that came from outside (a bundle, a registry,
// a signature store, a cluster) safe to print on a terminal: control
// characters and the Unicode formatting characters that reorder text are
// shown escaped, so that a hostile string can neither move the cursor,
// clear the screen nor make one line read as another.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean returns s with every character that could steer a terminal shown as
// a Go escape (\x1b, \u202e, ...); invalid UTF-8 bytes are shown as \xNN.
// Printable text, tabs excepted, is returned unchanged, without copying.
func Clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// Block cleans s line by line, keeping its line breaks: for messages that
// ferry itself lays out over several lines (joined errors, reports).
func Block(s string) string {
	if isClean(strings.ReplaceAll(s, "\n", "")) {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Clean(l)
	}
	return strings.Join(lines, "\n")
}

// Lines cleans each string of list, for reports that print one per line.
func Lines(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = Clean(s)
	}
	return out
}

func isClean(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			return false
		}
		i += size
	}
	return true
}

// unsafeRune reports C0 and C1 controls and DEL (newlines included: one
// printed item is one line), and the bidirectional and zero-width
// formatting characters (Unicode category Cf) that change how a line reads.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
