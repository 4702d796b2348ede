package catalog

import "fmt"

// Bounds on reading a catalog image. Its layers are checked against their
// digests, but not what they inflate to nor what their tars hold: a few
// hundred KB of gzip can inflate to many GB, a zstd frame may ask for a
// window of terabytes, and a tar of empty entries never ends. ReadFBC
// streams every layer (a file under the configs directory may sit in any
// of them) and holds only the files of the configs directory, so the
// bounds are on what it streams and on what it holds.
//
// A real catalog image is a RHEL base with opm (a few hundred MB inflated,
// some tens of thousands of entries), the FBC under /configs and opm's
// cache of it under /tmp/cache, each from a few MB (one package) to some
// hundreds of MB (a full Red Hat index whose bundles carry their manifests
// as olm.bundle.object), in one file per package.
const (
	// MaxFileBytes caps one file of the configs directory, which ReadFBC
	// holds until it is parsed: the largest package file of the largest
	// public index is some tens of MB.
	MaxFileBytes = 512 << 20
	// MaxCatalogBytes caps everything ReadFBC holds: the files of the
	// configs directory and the names of what it tracks there. About four
	// times the largest real FBC, so that any catalog opm can serve is
	// read, while a hostile image costs no more memory than this.
	MaxCatalogBytes = 2 << 30
	// MaxInflatedBytes caps what all the layers of the image inflate to
	// together (a plain tar counts as it is): a real catalog image is a
	// few GB at most, base, FBC and cache together; a bomb is stopped
	// after this much inflating (about half a minute of CPU) and no
	// memory.
	MaxInflatedBytes = 16 << 30
	// MaxTarEntries caps the entries of all the layers together: a RHEL
	// base has some tens of thousands, an FBC one to a few per package.
	// It stops an endless tar of empty entries long before
	// MaxInflatedBytes would.
	MaxTarEntries = 1_000_000
	// MaxFiles caps the entries ReadFBC keeps track of under the configs
	// directory and its parents (files, directories, whiteouts): the
	// largest public index has a few thousand packages, in one to a few
	// files each.
	MaxFiles = 100_000
	// MaxZstdWindow caps the window (history buffer) a zstd frame may
	// demand, which the decoder allocates: 128 MiB is the reference
	// decoder's own default limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 2^27), so
	// any layer `zstd -d` decodes without --memory decodes here too. It
	// is the release reader's bound (release.MaxZstdWindow).
	MaxZstdWindow = 128 << 20
)

// Bounds on reading a catalog image's manifests and config, which are held
// in memory whole.
const (
	// MaxPlatforms caps the manifests of a catalog's index: OpenShift
	// builds catalogs for four or five architectures, and the widest
	// public images name about fifteen platforms (mirror.MaxListChildren).
	MaxPlatforms = 64
	// MaxImageLayers caps the layers of one platform image: twice the 127
	// that Docker and overlayfs let an image have (mirror.MaxImageLayers).
	MaxImageLayers = 256
	// MaxConfigBytes caps the image config, read whole for its labels and
	// command: a real one is a few KB, its history included.
	MaxConfigBytes = 4 << 20
)

// BoundError reports a catalog image that needs more than one of the
// bounds allows to be read: a decompression bomb, an endless tar, or no
// catalog anyone builds. The error that wraps it names the image. Callers match it with errors.As to tell hostile
// content from a broken read.
type BoundError struct {
	// Bound names the constant exceeded, such as "MaxInflatedBytes", and
	// Limit is its value (bytes, entries or files).
	Bound string
	Limit int64
	// Path is the file that crossed the bound, for MaxFileBytes.
	Path string
}

func (e *BoundError) Error() string {
	switch e.Bound {
	case "MaxFileBytes":
		return fmt.Sprintf("%s is larger than %d bytes, the bound (catalog.%s)", e.Path, e.Limit, e.Bound)
	case "MaxCatalogBytes":
		return fmt.Sprintf("the configs directory holds more than %d bytes, the bound (catalog.%s)", e.Limit, e.Bound)
	case "MaxInflatedBytes":
		return fmt.Sprintf("the layers inflate to more than %d bytes, the bound (catalog.%s): a decompression bomb, or not a catalog image", e.Limit, e.Bound)
	case "MaxTarEntries":
		return fmt.Sprintf("the layers hold more than %d entries, the bound (catalog.%s): an endless tar, or not a catalog image", e.Limit, e.Bound)
	case "MaxFiles":
		return fmt.Sprintf("the configs directory holds more than %d entries, the bound (catalog.%s)", e.Limit, e.Bound)
	case "MaxZstdWindow":
		return fmt.Sprintf("a zstd frame asks for a window larger than %d bytes, the bound (catalog.%s)", e.Limit, e.Bound)
	case "MaxPlatforms", "MaxImageLayers", "MaxConfigBytes":
		// Wrapped by what the manifest or config has.
		return fmt.Sprintf("more than the %d allowed (catalog.%s)", e.Limit, e.Bound)
	}
	return fmt.Sprintf("more than %d, the bound (catalog.%s)", e.Limit, e.Bound)
}

// limits are the bounds one ReadFBC call applies; tests shrink them.
type limits struct {
	fileBytes, catalogBytes, inflatedBytes int64
	tarEntries, files                      int64
	zstdWindow                             uint64
}

var defaultLimits = limits{
	fileBytes:     MaxFileBytes,
	catalogBytes:  MaxCatalogBytes,
	inflatedBytes: MaxInflatedBytes,
	tarEntries:    MaxTarEntries,
	files:         MaxFiles,
	zstdWindow:    MaxZstdWindow,
}
