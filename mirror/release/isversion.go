package release

// IsVersion reports whether s names a release by bare version (4.15.0),
// which ParseRef expands with an architecture, rather than by pull spec.
func IsVersion(s string) bool { return s != "" && looksLikeVersion(s) }
