package graph

import (
	"fmt"
	"strings"

	"github.com/ferryhq/ferry/mirror/internal/httpget"
	"github.com/ferryhq/ferry/mirror/release"
)

// APIError is the update service's own error answer: a 4xx or 5xx status
// with a JSON body {"kind": ..., "value": ...}, e.g. kind "invalid_params"
// for a missing or malformed channel.
type APIError struct {
	URL        string
	StatusCode int
	Kind       string
	Value      string
}

func (e *APIError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("update service answered %d: %s", e.StatusCode, e.Kind)
	}
	return fmt.Sprintf("update service answered %d: %s: %s", e.StatusCode, e.Kind, e.Value)
}

// StatusError is an HTTP answer other than 200 whose body is not an
// [APIError]: URL, Status (e.g. "503 Service Unavailable") and Code. Its
// message is "GET <URL>: <Status>". Package signature's StatusError is the
// same type.
type StatusError = httpget.StatusError

// TooLargeError means the graph (or an error body) is larger than the cap
// it is read with: [MaxGraphSize] unless FetchOptions.MaxBody says
// otherwise. Its fields are URL, where the graph was read from, and Limit,
// the cap in bytes.
type TooLargeError httpget.TooLargeError

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: update graph larger than the %d-byte limit (graph.MaxGraphSize)", e.URL, e.Limit)
}

// MalformedError means a graph document is not one the API serves: not
// JSON, an unknown field, a version or payload that does not parse, an edge
// naming no node. Field is the offending field's path, e.g. "nodes[3].payload",
// empty for the document as a whole.
type MalformedError struct {
	Field string
	Err   error
}

func (e *MalformedError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("malformed update graph: %v", e.Err)
	}
	return fmt.Sprintf("malformed update graph: %s: %v", e.Field, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

// EmptyChannelError means the graph holds no release of the channel and
// architecture asked for. The API answers an unknown channel this way.
type EmptyChannelError struct {
	Channel, Arch string
}

func (e *EmptyChannelError) Error() string {
	return fmt.Sprintf("channel %q has no %s releases: check the channel name (e.g. stable-4.15) and the architecture", e.Channel, e.Arch)
}

// UnknownVersionError means a version is not a node of the graph. Oldest
// and Newest bound the versions the graph does hold (empty for an empty
// graph).
type UnknownVersionError struct {
	Version        string
	Channel, Arch  string
	Oldest, Newest string
}

func (e *UnknownVersionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %s is not in the update graph", e.Version)
	if e.Channel != "" {
		fmt.Fprintf(&b, " of channel %s (%s)", e.Channel, e.Arch)
	}
	if e.Oldest != "" {
		fmt.Fprintf(&b, ", which holds %s to %s", e.Oldest, e.Newest)
	}
	return b.String()
}

// NoPathError means the graph has no update path from From to To that may
// be taken. When risks were not accepted and a path through conditional
// edges exists, RiskyAlternative is the one [Graph.Path] would take with
// risks accepted.
type NoPathError struct {
	From, To         string
	RiskyAlternative *Path
}

func (e *NoPathError) Error() string {
	msg := fmt.Sprintf("no update path from %s to %s", e.From, e.To)
	switch {
	case e.RiskyAlternative != nil:
		msg += fmt.Sprintf(" without known risks; a path of %d hops exists through conditional updates (risks: %s)",
			len(e.RiskyAlternative.Hops), strings.Join(riskNames(e.RiskyAlternative.Risks()), ", "))
	case release.CompareVersions(e.To, e.From) < 0:
		msg += ": updates only go to newer releases"
	}
	return msg
}

func riskNames(risks []Risk) []string {
	names := make([]string, len(risks))
	for i, r := range risks {
		names[i] = r.Name
	}
	return names
}
