package writer

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v2"

	"github.com/gitops-reverser/gitops-reverser/lib/render"
)

// scaleEdit returns the edit that a scale makes to its parent's file: spec.replicas set to
// replicas, the file otherwise as it was. The writer cannot ask the cluster for the object,
// so the file in Git, as the earlier changes of the batch left it, is the object.
func scaleEdit(replicas int64) func(current []byte) []byte {
	return func(current []byte) []byte {
		out, err := setReplicas(current, replicas)
		if err != nil {
			// Not an object file any more (edited by hand): leave it to the reconcile job,
			// rather than block the partition on a file we cannot read.
			return current
		}
		return out
	}
}

// setReplicas sets spec.replicas in a rendered object file and renders it again. A file
// without spec.replicas is returned as it is: every built-in scalable kind defaults the
// field, and a custom resource may keep its replicas at another path, which only the
// reconcile job can know.
func setReplicas(file []byte, replicas int64) ([]byte, error) {
	var doc map[any]any
	if err := yaml.Unmarshal(file, &doc); err != nil {
		return nil, err
	}
	obj, err := jsonable(doc)
	if err != nil {
		return nil, err
	}
	spec, _ := obj.(map[string]any)["spec"].(map[string]any)
	if _, ok := spec["replicas"]; !ok {
		return file, nil
	}
	spec["replicas"] = replicas
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return render.YAML(b)
}

// jsonable turns a decoded YAML value into one encoding/json can write: string keys only.
func jsonable(v any) (any, error) {
	switch v := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, val := range v {
			s, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("non-string key %v", k)
			}
			j, err := jsonable(val)
			if err != nil {
				return nil, err
			}
			out[s] = j
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, val := range v {
			j, err := jsonable(val)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	}
	return v, nil
}
