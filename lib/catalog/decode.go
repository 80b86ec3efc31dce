package catalog

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
)

// collector sorts decoded objects into Objects and Secrets. Both sources feed it, so a file
// and a cluster are read by the same code.
type collector struct {
	objs    Objects
	secrets map[string]*corev1.Secret // namespace/name
	// strict rejects unknown fields: a typo in a hand-written file must not pass silently.
	strict bool
}

func newCollector(strict bool) *collector {
	return &collector{secrets: map[string]*corev1.Secret{}, strict: strict}
}

// add converts one object by its kind.
func (c *collector) add(u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	var into runtime.Object
	switch {
	case gvk.Group == v1alpha1.GroupName && gvk.Version == v1alpha1.SchemeGroupVersion.Version:
		switch gvk.Kind {
		case "GitProvider":
			into = &v1alpha1.GitProvider{}
		case "GitTarget":
			into = &v1alpha1.GitTarget{}
		case "WatchRule":
			into = &v1alpha1.WatchRule{}
		case "ClusterWatchRule":
			into = &v1alpha1.ClusterWatchRule{}
		case "SourceCluster":
			into = &v1alpha1.SourceCluster{}
		}
	case gvk.Group == "" && gvk.Version == "v1" && gvk.Kind == "Secret":
		into = &corev1.Secret{}
	}
	if into == nil {
		return fmt.Errorf("unsupported kind %s (want %s kinds or v1 Secret)", gvk, v1alpha1.SchemeGroupVersion)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, c.strict); err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, u.GetName(), err)
	}
	switch o := into.(type) {
	case *v1alpha1.GitProvider:
		c.objs.Providers = append(c.objs.Providers, *o)
	case *v1alpha1.GitTarget:
		c.objs.Targets = append(c.objs.Targets, *o)
	case *v1alpha1.WatchRule:
		c.objs.WatchRules = append(c.objs.WatchRules, *o)
	case *v1alpha1.ClusterWatchRule:
		c.objs.ClusterWatchRules = append(c.objs.ClusterWatchRules, *o)
	case *v1alpha1.SourceCluster:
		c.objs.SourceClusters = append(c.objs.SourceClusters, *o)
	case *corev1.Secret:
		// stringData is write-only sugar the apiserver folds into data; do the same here.
		if o.Data == nil {
			o.Data = map[string][]byte{}
		}
		for k, v := range o.StringData {
			o.Data[k] = []byte(v)
		}
		c.secrets[o.Namespace+"/"+o.Name] = o
	}
	return nil
}

// getSecret looks up a collected Secret.
func (c *collector) getSecret(namespace, name string) (*corev1.Secret, error) {
	s, ok := c.secrets[namespace+"/"+name]
	if !ok {
		return nil, fmt.Errorf("not found")
	}
	return s, nil
}
