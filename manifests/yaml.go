// Package manifests renders what a disconnected cluster needs to use a
// ferry mirror (signature ConfigMaps, ImageDigestMirrorSet, ImageTagMirrorSet,
// the legacy ImageContentSourcePolicy and the install-config snippet), reads
// such ConfigMaps back strictly, and applies manifests to a cluster with
// server-side apply.
//
// Everything is rendered with gopkg.in/yaml.v3 from explicit node trees, so
// key order is fixed and output is byte-for-byte reproducible. Strings that a
// YAML 1.1 reader (kubectl, oc) would take for something else (`yes`, `on`,
// `1:20`, ...) are quoted.
package manifests

import (
	"bytes"
	"fmt"
	"regexp"

	"gopkg.in/yaml.v3"
)

// str is a string scalar that every YAML reader, 1.1 or 1.2, reads back as
// the same string. The !!str tag makes yaml.v3 quote anything YAML 1.2 would
// resolve otherwise ("true", "12", "null", ""); yaml11Special covers the rest.
func str(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if yaml11Special(s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// yaml11Bool lists the YAML 1.1 boolean forms that YAML 1.2 reads as strings.
var yaml11Bool = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true,
	"n": true, "N": true, "no": true, "No": true, "NO": true,
	"on": true, "On": true, "ON": true, "off": true, "Off": true, "OFF": true,
}

// yaml11Number matches YAML 1.1 sexagesimal numbers ("1:20", "-3:25:45.5")
// and integers with underscores or binary/octal prefixes, none of which are
// numbers in YAML 1.2.
var yaml11Number = regexp.MustCompile(`^[-+]?(?:[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?|0b[01_]+|0[0-7_]+|[0-9][0-9_]*_[0-9_]*(?:\.[0-9_]*)?)$`)

func yaml11Special(s string) bool {
	return yaml11Bool[s] || yaml11Number.MatchString(s)
}

// mapping builds a mapping node from alternating keys and values.
func mapping(kv ...any) *yaml.Node {
	if len(kv)%2 != 0 {
		panic("manifests: mapping needs key/value pairs")
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i < len(kv); i += 2 {
		n.Content = append(n.Content, str(kv[i].(string)), node(kv[i+1]))
	}
	return n
}

// node turns a string or a ready node into a node.
func node(v any) *yaml.Node {
	switch v := v.(type) {
	case string:
		return str(v)
	case *yaml.Node:
		return v
	default:
		panic(fmt.Sprintf("manifests: cannot render %T", v))
	}
}

// sequence builds a sequence node.
func sequence(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
}

// render encodes one YAML document with two-space indentation.
func render(root *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
