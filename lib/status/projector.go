package status

import (
	"context"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// FieldManager names this package's status writes in managedFields.
const FieldManager = "gitops-reverser-status"

// Projector writes the status of GitProviders, GitTargets and SourceClusters on an API server.
// It reads the objects and the Secrets they reference from the API server (not from a
// catalog Snapshot, which may be a resync behind) and the queues and results from Valkey.
// It is safe for concurrent use; concurrent writers of one object retry on conflict.
type Projector struct {
	dyn  dynamic.Interface
	core kubernetes.Interface
	bus  *bus.Bus
	rec  *Recorder
}

// NewProjector returns a Projector on the API server of cfg and the queues of b. Its service
// account needs get/list on the reverser.gitops.dev kinds, update on their /status, and get on
// the Secrets they reference.
func NewProjector(cfg *rest.Config, b *bus.Bus) (*Projector, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return &Projector{dyn: dyn, core: core, bus: b, rec: NewRecorder(b)}, nil
}

// Open returns a Projector on the API server the process runs in (or the one KUBECONFIG names),
// or nil when catalogFile is set: in local mode the objects live in a file and have no status.
// A nil Projector's methods do nothing, so callers need no branch.
func Open(catalogFile string, b *bus.Bus) (*Projector, error) {
	if catalogFile != "" {
		return nil, nil
	}
	cfg, err := catalog.RESTConfig()
	if err != nil {
		return nil, err
	}
	return NewProjector(cfg, b)
}

// ProjectAll computes and writes, where it changed, the status of every GitProvider, GitTarget
// and SourceCluster once. The dlq-sweep and reconcile jobs call it at the end of a run, which
// also repairs statuses a writer scaled to zero did not get to. It returns every failure,
// joined, after trying every object.
func (p *Projector) ProjectAll(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.project(ctx, nil)
}

// ProjectPartition does the same for the GitTargets of one partition and their GitProviders.
func (p *Projector) ProjectPartition(ctx context.Context, partitionID string) error {
	if p == nil {
		return nil
	}
	return p.project(ctx, &partitionID)
}

// world is the objects statuses are computed from, listed once per projection.
type world struct {
	providers map[identity.TargetRef]*v1alpha1.GitProvider
	targets   []*v1alpha1.GitTarget
	clusters  []*v1alpha1.SourceCluster
	// partitionOf maps a target to its partition; targets without a provider are absent.
	partitionOf map[*v1alpha1.GitTarget]identity.Partition
}

func (p *Projector) project(ctx context.Context, only *string) error {
	w, err := p.read(ctx, only == nil)
	if err != nil {
		return err
	}
	// Which targets and providers to write, and the partitions their statuses need: a provider
	// needs every partition of every target that uses it.
	wantProvider := map[identity.TargetRef]bool{}
	var targets []*v1alpha1.GitTarget
	for _, t := range w.targets {
		part, ok := w.partitionOf[t]
		if only == nil || (ok && part.ID == *only) {
			targets = append(targets, t)
			wantProvider[providerRef(t)] = true
		}
	}
	if only == nil {
		for ref := range w.providers {
			wantProvider[ref] = true
		}
	}
	parts := map[string]*Partition{}
	for _, t := range w.targets {
		part, ok := w.partitionOf[t]
		if !ok || !wantProvider[providerRef(t)] || parts[part.ID] != nil {
			continue
		}
		st, err := p.partition(ctx, part)
		if err != nil {
			return err
		}
		parts[part.ID] = st
	}

	secrets := secretCache{core: p.core, cache: map[string]*corev1.Secret{}}
	var errs []error
	computed := map[identity.TargetRef]*v1alpha1.GitProvider{}
	for _, ref := range sortedRefs(wantProvider) {
		prov, ok := w.providers[ref]
		if !ok {
			continue // named by a target, but missing
		}
		var ps []Partition
		seen := map[string]bool{}
		for _, t := range w.targets {
			if part, ok := w.partitionOf[t]; ok && providerRef(t) == ref && !seen[part.ID] {
				seen[part.ID] = true
				ps = append(ps, *parts[part.ID])
			}
		}
		check := secrets.provider(ctx, prov)
		next := prov.DeepCopy()
		next.Status = GitProviderStatus(prov, check, ps)
		computed[ref] = next
		errs = append(errs, update(ctx, p, "gitproviders", prov, func(cur *v1alpha1.GitProvider) (*v1alpha1.GitProvider, bool) {
			n := cur.DeepCopy()
			n.Status = GitProviderStatus(cur, check, ps)
			return n, !Equal(n.Status, cur.Status)
		}))
	}
	for _, t := range targets {
		prov := computed[providerRef(t)]
		var part Partition
		if pt, ok := w.partitionOf[t]; ok {
			part = *parts[pt.ID]
		}
		errs = append(errs, update(ctx, p, "gittargets", t, func(cur *v1alpha1.GitTarget) (*v1alpha1.GitTarget, bool) {
			n := cur.DeepCopy()
			n.Status = GitTargetStatus(cur, prov, part)
			return n, !Equal(n.Status, cur.Status)
		}))
	}
	for _, c := range w.clusters {
		check := secrets.tokens(ctx, c)
		errs = append(errs, update(ctx, p, "sourceclusters", c, func(cur *v1alpha1.SourceCluster) (*v1alpha1.SourceCluster, bool) {
			n := cur.DeepCopy()
			n.Status = SourceClusterStatus(cur, check)
			return n, !Equal(n.Status, cur.Status)
		}))
	}
	return errors.Join(errs...)
}

// read lists the objects; SourceClusters are projected only when withClusters.
func (p *Projector) read(ctx context.Context, withClusters bool) (*world, error) {
	objs, err := catalog.ListObjects(ctx, p.dyn)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	w := &world{providers: map[identity.TargetRef]*v1alpha1.GitProvider{}, partitionOf: map[*v1alpha1.GitTarget]identity.Partition{}}
	for i := range objs.Providers {
		pr := &objs.Providers[i]
		w.providers[identity.TargetRef{Namespace: pr.Namespace, Name: pr.Name}] = pr
	}
	for i := range objs.Targets {
		t := &objs.Targets[i]
		w.targets = append(w.targets, t)
		if pr, ok := w.providers[providerRef(t)]; ok {
			w.partitionOf[t] = identity.PartitionOf(pr.Spec.URL, t.Spec.Branch)
		}
	}
	if withClusters {
		for i := range objs.SourceClusters {
			w.clusters = append(w.clusters, &objs.SourceClusters[i])
		}
	}
	return w, nil
}

// partition reads a partition's queue and results.
func (p *Projector) partition(ctx context.Context, part identity.Partition) (*Partition, error) {
	stats, err := p.bus.Stats(ctx, part.ID)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	res, err := p.rec.Read(ctx, part.ID)
	if err != nil {
		return nil, err
	}
	return &Partition{ID: part.ID, Branch: part.Branch, Stats: stats, Result: res}, nil
}

// update writes cur's status subresource when next says it changed. On a conflict (another
// replica wrote meanwhile) it reads the object again and asks next again; an object deleted
// meanwhile needs no status.
func update[T any, PT interface {
	*T
	metav1.Object
	runtime.Object
}](ctx context.Context, p *Projector, resource string, cur PT, next func(cur PT) (PT, bool)) error {
	client := p.dyn.Resource(catalog.GVR(resource)).Namespace(cur.GetNamespace())
	first := true
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !first {
			u, err := client.Get(ctx, cur.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			fresh, err := fromUnstructured[T](u)
			if err != nil {
				return err
			}
			cur = fresh
		}
		first = false
		upd, changed := next(cur)
		if !changed {
			return nil
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(upd)
		if err != nil {
			return err
		}
		_, err = client.UpdateStatus(ctx, &unstructured.Unstructured{Object: m}, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("status: update %s %s: %w", resource, identity.TargetRef{Namespace: cur.GetNamespace(), Name: cur.GetName()}, err)
}

func providerRef(t *v1alpha1.GitTarget) identity.TargetRef {
	return identity.TargetRef{Namespace: t.Namespace, Name: t.Spec.ProviderRef.Name}
}

func sortedRefs(m map[identity.TargetRef]bool) []identity.TargetRef {
	out := make([]identity.TargetRef, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func fromUnstructured[T any](u *unstructured.Unstructured) (*T, error) {
	obj := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// Refresh projects every status once, when the configuration lives on the API server (in
// local mode, catalogFile set, there is nothing to project). The jobs call it at the end of
// a run.
func Refresh(ctx context.Context, catalogFile string, b *bus.Bus) error {
	p, err := Open(catalogFile, b)
	if err != nil {
		return err
	}
	return p.ProjectAll(ctx)
}
