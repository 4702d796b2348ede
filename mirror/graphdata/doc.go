// Package graphdata carries the OpenShift update service's graph data
// across the air gap (SPEC §11): it reads the data the service needs and
// builds the graph-data image the service's operator runs as an init
// container.
//
// [Fetch] reads the data from Red Hat's tarball ([DefaultURL]), from a
// tarball saved earlier or from a directory (file:// URLs), with bounded
// size, entry count, time and retries, and keeps only what the service
// reads: channels/*.yaml, blocked-edges/*.yaml, raw/metadata.json and
// version. Entries that could escape the data directory (links, absolute
// paths, "..") refuse the whole archive.
//
// [BuildImage] puts that data on a base image as one added layer under
// [DataDir], with a command that copies it where the operator's volume is
// mounted. The same base and data always give the same image digest, so
// a graph-data image built twice is pushed once.
//
// Failures are typed for errors.As: [*StatusError] (an HTTP answer other
// than 200), [*TooLargeError] (the tarball over its cap), [*BoundError]
// (the archive unpacks past a bound), [*UnsafeEntryError] and
// [*MalformedError] (a file the service could not read).
package graphdata
