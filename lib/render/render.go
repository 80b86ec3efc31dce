// Package render writes an object as the YAML file stored in Git. The output is a pure
// function of the object: apiVersion, kind and metadata first (name and namespace leading),
// every other key sorted, two-space indentation. Equal objects give equal bytes, so a change
// that alters nothing makes no commit.
package render

import (
	"errors"
	"fmt"
	"sort"

	"go.yaml.in/yaml/v2"
)

// ErrNotObject is returned for input that is not a JSON object with apiVersion and kind.
var ErrNotObject = errors.New("not a Kubernetes object")

// leading are the top-level and metadata keys that come first, in this order.
var (
	leadingTop      = []string{"apiVersion", "kind", "metadata"}
	leadingMetadata = []string{"name", "namespace"}
)

// YAML renders a JSON object as YAML.
func YAML(objectJSON []byte) ([]byte, error) {
	// YAML is a superset of JSON, so the YAML decoder reads the object directly, typing numbers
	// as ints or floats and never turning a quoted string into anything else.
	var obj map[any]any
	if err := yaml.Unmarshal(objectJSON, &obj); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	if obj["apiVersion"] == nil || obj["kind"] == nil {
		return nil, fmt.Errorf("%w: apiVersion or kind missing", ErrNotObject)
	}
	if meta, ok := obj["metadata"].(map[any]any); ok {
		obj["metadata"] = ordered(meta, leadingMetadata)
	}
	return yaml.Marshal(ordered(obj, leadingTop))
}

// ordered returns m as a MapSlice with the leading keys first and the rest sorted. Nested maps
// need nothing: the encoder sorts their keys.
func ordered(m map[any]any, leading []string) yaml.MapSlice {
	out := make(yaml.MapSlice, 0, len(m))
	seen := make(map[string]bool, len(leading))
	for _, k := range leading {
		if v, ok := m[k]; ok {
			out = append(out, yaml.MapItem{Key: k, Value: v})
			seen[k] = true
		}
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		if s, ok := k.(string); ok && !seen[s] {
			rest = append(rest, s)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, yaml.MapItem{Key: k, Value: m[k]})
	}
	return out
}
