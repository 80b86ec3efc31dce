package rbac

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
)

// ReadCluster lists the configuration objects on the API server of cfg. Unlike a catalog
// Watcher it reads no Secret: RBAC needs their names, which the objects hold, not their values.
func ReadCluster(ctx context.Context, cfg *rest.Config) (catalog.Objects, error) {
	var objs catalog.Objects
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return objs, fmt.Errorf("rbac: %w", err)
	}
	for _, resource := range []string{"gitproviders", "gittargets", "watchrules", "clusterwatchrules", "sourceclusters"} {
		list, err := dyn.Resource(catalog.GVR(resource)).List(ctx, metav1.ListOptions{})
		if err != nil {
			return objs, fmt.Errorf("rbac: list %s.%s (are the CRDs of manifests/crds installed, and may you list them?): %w", resource, v1alpha1.GroupName, err)
		}
		for i := range list.Items {
			if err := collect(&objs, &list.Items[i]); err != nil {
				return objs, err
			}
		}
	}
	return objs, nil
}

// ReadFile reads the configuration objects of a CATALOG_FILE; other documents, such as the
// Secrets a catalog file holds, are skipped. Namespaced objects without a namespace are in
// "default", as for lib/catalog.
func ReadFile(path string) (catalog.Objects, error) {
	var objs catalog.Objects
	f, err := os.Open(path)
	if err != nil {
		return objs, fmt.Errorf("rbac: %w", err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for doc := 1; ; doc++ {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return objs, fmt.Errorf("rbac: %s: document %d: %w", path, doc, err)
		}
		if len(u.Object) == 0 || u.GroupVersionKind().GroupVersion() != v1alpha1.SchemeGroupVersion {
			continue
		}
		if k := u.GetKind(); u.GetNamespace() == "" && k != "ClusterWatchRule" && k != "SourceCluster" {
			u.SetNamespace("default")
		}
		if err := collect(&objs, u); err != nil {
			return objs, fmt.Errorf("rbac: %s: document %d: %w", path, doc, err)
		}
	}
}

// collect converts one reverser.gitops.dev object into objs by its kind.
func collect(objs *catalog.Objects, u *unstructured.Unstructured) error {
	conv := func(into any) error {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		return nil
	}
	switch u.GetKind() {
	case "GitProvider":
		var o v1alpha1.GitProvider
		if err := conv(&o); err != nil {
			return err
		}
		objs.Providers = append(objs.Providers, o)
	case "GitTarget":
		var o v1alpha1.GitTarget
		if err := conv(&o); err != nil {
			return err
		}
		objs.Targets = append(objs.Targets, o)
	case "WatchRule":
		var o v1alpha1.WatchRule
		if err := conv(&o); err != nil {
			return err
		}
		objs.WatchRules = append(objs.WatchRules, o)
	case "ClusterWatchRule":
		var o v1alpha1.ClusterWatchRule
		if err := conv(&o); err != nil {
			return err
		}
		objs.ClusterWatchRules = append(objs.ClusterWatchRules, o)
	case "SourceCluster":
		var o v1alpha1.SourceCluster
		if err := conv(&o); err != nil {
			return err
		}
		objs.SourceClusters = append(objs.SourceClusters, o)
	default:
		return fmt.Errorf("unknown kind %s of %s", u.GetKind(), v1alpha1.SchemeGroupVersion)
	}
	return nil
}
