package release

import (
	"cmp"
	"strings"
)

// CompareVersions orders two valid versions (see ValidateVersion)
// by semantic-versioning precedence: -1 when a is older than b, 0 when they
// are equal, 1 when a is newer. Numbers are compared as digit strings, so a
// part too long for an integer still orders correctly.
func CompareVersions(a, b string) int {
	aCore, aPre, _ := strings.Cut(a, "-")
	bCore, bPre, _ := strings.Cut(b, "-")
	aParts, bParts := strings.Split(aCore, "."), strings.Split(bCore, ".")
	for i := range min(len(aParts), len(bParts)) {
		if c := compareNumeric(aParts[i], bParts[i]); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(len(aParts), len(bParts)); c != 0 {
		return c
	}
	// A version without a pre-release is newer than any with one.
	switch {
	case aPre == bPre:
		return 0
	case aPre == "":
		return 1
	case bPre == "":
		return -1
	}
	aIDs, bIDs := strings.Split(aPre, "."), strings.Split(bPre, ".")
	for i := range min(len(aIDs), len(bIDs)) {
		if c := compareIdentifier(aIDs[i], bIDs[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(aIDs), len(bIDs))
}

// compareIdentifier orders pre-release identifiers: numeric ones by value,
// below alphanumeric ones, which are ordered as ASCII strings.
func compareIdentifier(a, b string) int {
	aNum, bNum := isNumeric(a), isNumeric(b)
	switch {
	case aNum && bNum:
		return compareNumeric(a, b)
	case aNum:
		return -1
	case bNum:
		return 1
	}
	return strings.Compare(a, b)
}

// compareNumeric orders decimal strings without leading zeros by value.
func compareNumeric(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
