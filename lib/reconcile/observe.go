package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"

	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/rules"
	"github.com/gitops-reverser/gitops-reverser/lib/sanitize"
)

// object is one listed object, sanitized, with the resourceVersion of the list that saw it.
type object struct {
	key    identity.Key
	listRV string
	labels map[string]string
	json   []byte
}

// resourceRef is a (group, resource) of one cluster.
type resourceRef struct{ group, resource string }

// observation is what listing one cluster saw.
type observation struct {
	cluster string
	objects []object
	// listed says, per resource, which namespaces were listed ("" for the whole cluster)
	// and the resourceVersion of each list. An object absent from a listed namespace is gone.
	listed map[resourceRef]map[string]string
	// exists holds every listed object's key, matched by a rule or not: a file is only an
	// orphan when its object is gone, not when it merely stopped matching.
	exists map[identity.Key]bool
	// partial names resources that could not be discovered or listed; their files are left
	// alone.
	partial []string
}

// coverage returns the resourceVersion of the list that covered an object's namespace, and
// whether one did.
func (o *observation) coverage(k identity.Key) (string, bool) {
	ns := o.listed[resourceRef{k.Group, k.Resource}]
	if rv, ok := ns[""]; ok {
		return rv, true
	}
	rv, ok := ns[k.Namespace]
	return rv, ok && k.Namespace != ""
}

// observe lists every object of the cluster that the plan's rules can want.
func observe(ctx context.Context, c *Cluster, plan *rules.Plan, pageSize int64, listed func(int)) (*observation, error) {
	o := &observation{cluster: c.ID, listed: map[resourceRef]map[string]string{}, exists: map[identity.Key]bool{}}
	lists, err := c.Discovery.ServerPreferredResources()
	if err != nil {
		// Groups that failed discovery (an aggregated API down) are skipped, not fatal: the
		// rest of the cluster still converges and those files are left as they are.
		var failed *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &failed) || len(lists) == 0 {
			return nil, fmt.Errorf("cluster %s: discovery: %w", c.ID, err)
		}
		for gv := range failed.Groups {
			o.partial = append(o.partial, gv.String())
		}
	}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue // a subresource, or nothing to list
			}
			scope := plan.ScopeOf(c.ID, gv.Group, r.Name, r.Namespaced)
			if !scope.Wanted {
				continue
			}
			namespaces := scope.Namespaces
			if !r.Namespaced || namespaces == nil {
				namespaces = []string{""}
			}
			gvr := gv.WithResource(r.Name)
			for _, ns := range namespaces {
				if err := o.list(ctx, c, gvr, ns, pageSize, listed); err != nil {
					return nil, err
				}
			}
		}
	}
	return o, nil
}

// list reads one resource in one namespace ("" for all), page by page, starting over if the
// continue token expires so every object comes from one consistent snapshot.
func (o *observation) list(ctx context.Context, c *Cluster, gvr schema.GroupVersionResource, ns string, pageSize int64, listed func(int)) error {
	ref := resourceRef{gvr.Group, gvr.Resource}
	for attempt := 0; ; attempt++ {
		var objects []object
		opts := metav1.ListOptions{Limit: pageSize}
		listRV := ""
		for {
			page, err := c.Dynamic.Resource(gvr).Namespace(ns).List(ctx, opts)
			if apierrors.IsResourceExpired(err) && attempt < 3 {
				break // the snapshot behind the continue token is compacted: list again
			}
			if err != nil {
				return fmt.Errorf("cluster %s: list %s%s: %w", c.ID, gvr.GroupResource(), inNamespace(ns), err)
			}
			if listRV == "" {
				listRV = page.GetResourceVersion()
			}
			for i := range page.Items {
				item := page.Items[i].Object
				obj := object{
					key:    identity.Key{Cluster: c.ID, Group: gvr.Group, Resource: gvr.Resource, Namespace: page.Items[i].GetNamespace(), Name: page.Items[i].GetName()},
					labels: page.Items[i].GetLabels(),
				}
				if obj.json, err = json.Marshal(sanitize.Object(item)); err != nil {
					return fmt.Errorf("cluster %s: encode %s: %w", c.ID, obj.key, err)
				}
				objects = append(objects, obj)
			}
			if listed != nil {
				listed(len(page.Items))
			}
			if opts.Continue = page.GetContinue(); opts.Continue == "" {
				for i := range objects {
					objects[i].listRV = listRV
					o.exists[objects[i].key] = true
				}
				o.objects = append(o.objects, objects...)
				if o.listed[ref] == nil {
					o.listed[ref] = map[string]string{}
				}
				o.listed[ref][ns] = listRV
				return nil
			}
		}
	}
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return " in namespace " + ns
}
