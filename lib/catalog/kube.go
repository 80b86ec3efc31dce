package catalog

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/logging"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
)

// resources are the kinds a Watcher watches.
var resources = []string{"gitproviders", "gittargets", "watchrules", "clusterwatchrules", "sourceclusters"}

// DefaultResync is how often a Watcher rebuilds even without changes, which is how rotated
// Secret values are picked up (Secrets are read, not watched, so only referenced ones are
// ever fetched and RBAC can name them).
const DefaultResync = 30 * time.Second

// Watcher is a Source that follows the configuration on an API server.
type Watcher struct {
	uses    Uses
	dyn     dynamic.Interface
	core    kubernetes.Interface
	resync  time.Duration
	current atomic.Pointer[Snapshot]
	changed chan struct{}
	stores  []cache.Store
}

// Snapshot returns the latest snapshot.
func (w *Watcher) Snapshot() *Snapshot { return w.current.Load() }

// Watch starts informers for the configuration kinds, waits for their first list and returns
// a Watcher with its first Snapshot. It keeps the snapshot current until ctx is done.
// It reads only the referenced Secrets that uses names.
func Watch(ctx context.Context, cfg *rest.Config, resync time.Duration, uses Uses) (*Watcher, error) {
	if resync <= 0 {
		resync = DefaultResync
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	w := &Watcher{dyn: dyn, core: core, resync: resync, uses: uses, changed: make(chan struct{}, 1)}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	notify := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(any, any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}
	var synced []cache.InformerSynced
	for _, r := range resources {
		inf := factory.ForResource(GVR(r)).Informer()
		if _, err := inf.AddEventHandler(notify); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		w.stores = append(w.stores, inf.GetStore())
		synced = append(synced, inf.HasSynced)
	}
	factory.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), synced...) {
		return nil, fmt.Errorf("catalog: could not list %s from the API server within a minute: are the CRDs in manifests/crds installed and may this service account list them?", v1alpha1.GroupName)
	}
	w.rebuild(ctx)
	go w.run(ctx)
	return w, nil
}

func (w *Watcher) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// run rebuilds on every change (coalesced) and on every resync tick.
func (w *Watcher) run(ctx context.Context) {
	tick := time.NewTicker(w.resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.changed:
		case <-tick.C:
		}
		w.rebuild(ctx)
	}
}

func (w *Watcher) rebuild(ctx context.Context) {
	c := newCollector(false)
	for _, store := range w.stores {
		for _, obj := range store.List() {
			if u, ok := obj.(*unstructured.Unstructured); ok {
				c.addOrSkip(ctx, u)
			}
		}
	}
	secrets := map[string]*corev1.Secret{}
	get := func(namespace, name string) (*corev1.Secret, error) {
		if s, ok := secrets[namespace+"/"+name]; ok {
			return s, nil
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := w.core.CoreV1().Secrets(namespace).Get(rctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		secrets[namespace+"/"+name] = s
		return s, nil
	}
	s := Build(c.objs, get, w.uses)
	if old := w.current.Swap(s); old == nil || fmt.Sprint(old.Problems) != fmt.Sprint(s.Problems) {
		for _, p := range s.Problems {
			logging.FromContext(ctx).Warnw("Configuration problem", "problem", p)
		}
	}
}

// ListObjects lists the configuration objects on an API server once, without resolving the
// Secrets they name: for tools that need the objects themselves (status projection, RBAC
// generation). Objects that do not convert are logged and skipped, as a Watcher does.
func ListObjects(ctx context.Context, dyn dynamic.Interface) (Objects, error) {
	c := newCollector(false)
	for _, r := range resources {
		l, err := dyn.Resource(GVR(r)).List(ctx, metav1.ListOptions{})
		if err != nil {
			return Objects{}, fmt.Errorf("catalog: list %s.%s (are the CRDs of manifests/crds installed, and may this identity list them?): %w", r, v1alpha1.GroupName, err)
		}
		for i := range l.Items {
			c.addOrSkip(ctx, &l.Items[i])
		}
	}
	return c.objs, nil
}

// addOrSkip adds an object read from the API server; one that does not convert is logged and
// left out, so one bad object does not hide the rest of the configuration.
func (c *collector) addOrSkip(ctx context.Context, u *unstructured.Unstructured) {
	if err := c.add(u); err != nil {
		logging.FromContext(ctx).Warnw("Ignoring unreadable configuration object", "error", err)
	}
}

// GVR returns the GroupVersionResource of one of the watched resources, e.g. "gittargets".
func GVR(resource string) schema.GroupVersionResource {
	return v1alpha1.SchemeGroupVersion.WithResource(resource)
}
