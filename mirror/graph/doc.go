// Package graph reads the OpenShift update graph (the Cincinnati API, SPEC
// §6) and answers the two questions ferry needs: which releases a channel
// holds, and by which updates a cluster gets from one release to another.
//
// [Fetch] asks the update service (or reads a saved graph document from a
// file:// URL) for one channel and architecture, with bounded retries and
// a size cap, and [Parse] checks the document strictly. A [Graph] then
// lists its releases ([Graph.Releases], oldest first by semantic version)
// and finds update paths ([Graph.Path]): the fewest hops, ties broken
// towards fewer conditional updates and then the newest releases.
//
// Conditional updates carry risks (a name, a message and a URL). The
// cluster evaluates each risk's matching rules against its own metrics;
// ferry cannot, so a path through a conditional update is only taken when
// the caller accepts its risks, and is otherwise reported as the
// alternative that was passed over.
//
// Failures are typed for errors.As: [*APIError] (the service's
// {"kind", "value"} answer), [*StatusError], [*TooLargeError],
// [*MalformedError], [*EmptyChannelError], [*UnknownVersionError] and
// [*NoPathError].
package graph
