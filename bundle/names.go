package bundle

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

const (
	blockSize = 512
	// endOfArchive is the two zero blocks that close a tar.
	endOfArchive = 2 * blockSize
	// maxNameLen bounds entry names; ferry's longest is about 110 bytes.
	maxNameLen = 1024
	// mirrorDir is the only directory at the top of a bundle.
	mirrorDir = "mirror"
	blobDir   = "mirror/oci/blobs/"
)

// checkName accepts the names a bundle may hold: clean, relative, slash
// separated, made of a conservative character set (so no backslash, colon
// or control character can mean something else to another tar or file
// system), and either the volume marker, ferry's own binary and its
// signature, or under mirror/.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > maxNameLen:
		return fmt.Errorf("name longer than %d bytes", maxNameLen)
	case strings.HasPrefix(name, "/"):
		return errors.New("absolute name")
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) && name[i] != '/' {
			return fmt.Errorf("character %q not allowed in a name", name[i])
		}
	}
	if path.Clean(name) != name {
		return errors.New("name is not clean")
	}
	for _, el := range strings.Split(name, "/") {
		if el == "." || el == ".." {
			return errors.New("a .. element leads out of the bundle")
		}
	}
	if name == VolumeMarkerName || name == SelfName || name == SelfSignatureName {
		return nil
	}
	if name == IndexName || name == IndexSignatureName {
		return errors.New("the index and its signature are not files of the index")
	}
	if !strings.HasPrefix(name, mirrorDir+"/") {
		return fmt.Errorf("name outside %s/", mirrorDir)
	}
	if strings.HasPrefix(name, blobDir) {
		if _, ok := blobHex(name); !ok {
			return fmt.Errorf("blob name is not %ssha256/<64 hex>", blobDir)
		}
	}
	return nil
}

func nameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '=' || c == '+' || c == ',' || c == '@'
}

// validVolumeName accepts a plain file name (spaces allowed, no
// separators): volumes are found beside volume 0, never elsewhere.
func validVolumeName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) && name[i] != ' ' {
			return false
		}
	}
	return true
}

func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !nameChar(c) || c == '=' || c == '+' || c == ',' || c == '@' {
			return false
		}
	}
	return true
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// blobHex returns the hex digest of a name of the form
// mirror/oci/blobs/sha256/<hex>.
func blobHex(name string) (string, bool) {
	hex, ok := strings.CutPrefix(name, blobDir+"sha256/")
	if !ok || !isSHA256Hex(hex) {
		return "", false
	}
	return hex, true
}

// paddedSize is the size of a tar entry's data rounded up to whole blocks.
func paddedSize(n int64) int64 {
	return (n + blockSize - 1) &^ (blockSize - 1)
}
