// Package render writes an object as the YAML file stored in Git. The output is a pure
// function of the object: apiVersion, kind and metadata first (name and namespace leading),
// every other key sorted, two-space indentation. Equal objects give equal bytes, so a change
// that alters nothing makes no commit.
package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

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
	obj, err := decode(objectJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	if obj["apiVersion"] == nil || obj["kind"] == nil {
		return nil, fmt.Errorf("%w: apiVersion or kind missing", ErrNotObject)
	}
	if meta, ok := obj["metadata"].(map[string]any); ok {
		obj["metadata"] = ordered(meta, leadingMetadata)
	}
	return yaml.Marshal(ordered(obj, leadingTop))
}

// decode reads a JSON object with encoding/json, several times faster than the YAML parser
// that rendering first used, and types its numbers as that parser did (int, then uint64,
// then float64), so the bytes written are the same.
func decode(objectJSON []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(objectJSON))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("null is not an object")
	}
	if _, err := d.Token(); err == nil {
		return nil, errors.New("more than one value")
	}
	return obj, typeNumbers(obj)
}

// typeNumbers replaces, in place, every json.Number below v.
func typeNumbers(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if n, ok := e.(json.Number); ok {
				v[k] = number(n)
			} else if err := typeNumbers(e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if n, ok := e.(json.Number); ok {
				v[i] = number(n)
			} else if err := typeNumbers(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func number(n json.Number) any {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return int(i)
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u
	}
	f, _ := strconv.ParseFloat(string(n), 64) // valid JSON: out of range gives ±Inf, as YAML's did
	return f
}

// ordered returns m's entries with the leading keys first, in order, then the rest sorted.
func ordered(m map[string]any, leading []string) yaml.MapSlice {
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
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, yaml.MapItem{Key: k, Value: m[k]})
	}
	return out
}
