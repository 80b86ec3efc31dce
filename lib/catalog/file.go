package catalog

import (
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Static is a Source whose Snapshot never changes.
type Static struct{ s *Snapshot }

// Snapshot returns the snapshot.
func (s *Static) Snapshot() *Snapshot { return s.s }

// Fixed is a Source that always returns s: a job's one snapshot, for parts that take a Source.
func Fixed(s *Snapshot) *Static { return &Static{s: s} }

// LoadFile reads a multi-document YAML (or JSON) file of reverser.gitops.dev objects and the
// v1 Secrets they reference. Namespaced objects without a namespace are put in "default", as
// kubectl would.
func LoadFile(path string) (*Static, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	defer f.Close()
	s, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return &Static{s: s}, nil
}

// Decode builds a Snapshot from a multi-document YAML stream.
func Decode(r io.Reader) (*Snapshot, error) {
	c, err := decode(r)
	if err != nil {
		return nil, err
	}
	return Build(c.objs, c.getSecret, UsesAll), nil // a file holds its Secrets: no access to limit
}

// ReadFile returns the configuration objects of a catalog file, without resolving the Secrets
// they name: for tools that need the objects' references, not the Secrets' values.
func ReadFile(path string) (Objects, error) {
	f, err := os.Open(path)
	if err != nil {
		return Objects{}, fmt.Errorf("catalog: %w", err)
	}
	defer f.Close()
	c, err := decode(f)
	if err != nil {
		return Objects{}, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c.objs, nil
}

// decode collects the documents of a multi-document YAML stream.
func decode(r io.Reader) (*collector, error) {
	c := newCollector(true)
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	for doc := 1; ; doc++ {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if len(u.Object) == 0 {
			continue // an empty document between two "---"
		}
		if u.GetNamespace() == "" && namespaced(u.GetKind()) {
			u.SetNamespace("default")
		}
		if err := c.add(u); err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
	}
	return c, nil
}

func namespaced(kind string) bool {
	return kind != "ClusterWatchRule" && kind != "SourceCluster"
}
