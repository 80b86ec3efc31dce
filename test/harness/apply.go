package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// Apply creates or updates every object of a multi-document YAML stream as user, the way
// `kubectl apply` would for simple objects (server-side apply, field manager "harness").
// Kinds unknown at first (a CRD applied in the same stream) are retried until discovery
// knows them.
func (k *Kube) Apply(ctx context.Context, user string, manifests []byte) error {
	cfg := k.RESTConfig(user)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	cached := memory.NewMemCacheClient(disco)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)

	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := applyOne(ctx, dyn, mapper, cached, u); err != nil {
			return err
		}
	}
}

// ApplyFiles applies every *.yaml file in the given files or directories.
func (k *Kube) ApplyFiles(ctx context.Context, user string, paths ...string) error {
	for _, p := range paths {
		files := []string{p}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			files, _ = filepath.Glob(filepath.Join(p, "*.yaml"))
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if err := k.Apply(ctx, user, b); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	return nil
}

func applyOne(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, cached discovery.CachedDiscoveryInterface, u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	for {
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			return applyMapped(ctx, dyn, m, u)
		}
		if !meta.IsNoMatchError(err) {
			return err
		}
		// A kind from a CRD that is not established yet: look again shortly.
		cached.Invalidate()
		mapper.Reset()
		select {
		case <-ctx.Done():
			return fmt.Errorf("apply %s %s: kind unknown to the apiserver: %w", gvk, u.GetName(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func applyMapped(ctx context.Context, dyn dynamic.Interface, m *meta.RESTMapping, u *unstructured.Unstructured) error {
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		if err := ensureNamespace(ctx, dyn, ns); err != nil {
			return err
		}
		ri = dyn.Resource(m.Resource).Namespace(ns)
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	if _, err := ri.Patch(ctx, u.GetName(), "application/apply-patch+yaml", data, metav1.PatchOptions{FieldManager: "harness", Force: &force}); err != nil {
		return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

func ensureNamespace(ctx context.Context, dyn dynamic.Interface, name string) error {
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	_, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}
