package reconcile

import (
	"fmt"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
	"github.com/gitops-reverser/gitops-reverser/lib/render"
	"github.com/gitops-reverser/gitops-reverser/lib/rules"
)

// Verbs in the commit messages of reconcile changes: "sync configmaps team-a/web".
const (
	VerbSync  = "sync"
	VerbPrune = "prune"
)

// tree maps each file under a target's root to its blob.
type tree map[string]plumbing.Hash

// diff compares what the clusters hold with a target's tree. With all set, every wanted
// object becomes an upsert (a snapshot); otherwise only missing and differing files do.
// Files whose object is gone from every cluster that was listed become deletes.
func diff(plan *rules.Plan, t *rules.Target, obs []*observation, files tree, all bool, actor change.Actor) ([]*change.Change, int, error) {
	wanted := map[string]bool{}
	var out []*change.Change
	n := 0
	for _, o := range obs {
		for i := range o.objects {
			obj := &o.objects[i]
			if !wants(plan, t, obj) {
				continue
			}
			c := change.For(t, "reconcile:"+obj.listRV, change.OpUpsert, obj.key, obj.json)
			if c == nil {
				continue // kept out of Git by the target's policy
			}
			n++
			wanted[c.Path] = true
			if !all {
				content, err := render.YAML(obj.json)
				if err != nil {
					return nil, 0, fmt.Errorf("render %s: %w", obj.key, err)
				}
				if blob, ok := files[c.Path]; ok && blob == plumbing.ComputeHash(plumbing.BlobObject, content) {
					continue
				}
			}
			c.ResourceVersion, c.Verb, c.Actor = obj.listRV, VerbSync, actor
			out = append(out, c)
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		if wanted[p] {
			continue
		}
		if c := orphan(t, p, obs, actor); c != nil {
			out = append(out, c)
		}
	}
	return out, n, nil
}

// wants reports whether a rule routes the object to the target, as a create or update would.
func wants(plan *rules.Plan, t *rules.Target, obj *object) bool {
	labels := obj.labels
	if labels == nil {
		labels = map[string]string{} // known to have none: nil would mean unknown, matching any selector
	}
	for _, op := range []v1alpha1.Operation{v1alpha1.OperationUpdate, v1alpha1.OperationCreate} {
		o := rules.Object{Cluster: obj.key.Cluster, Group: obj.key.Group, Resource: obj.key.Resource, Namespace: obj.key.Namespace, Labels: labels, Operation: op}
		if slices.Contains(plan.Match(o), t) {
			return true
		}
	}
	return false
}

// orphan returns the delete of a file whose object every listing of the target's clusters
// covered and none found, or nil. A file the layout does not produce, or of a resource or
// namespace that was not listed, is not ours to judge and stays. The delete carries the
// list's resourceVersion, so an object recreated after the list outranks it.
//
// The file's path does not say which cluster wrote it; the delete is attributed to the
// target's first cluster.
func orphan(t *rules.Target, p string, obs []*observation, actor change.Actor) *change.Change {
	key, ok := layout.Parse(t.Path, p)
	if !ok || len(obs) == 0 {
		return nil
	}
	rv := ""
	for _, o := range obs {
		k := key
		k.Cluster = o.cluster
		covered, listed := o.coverage(k)
		if !listed || o.exists[k] {
			return nil
		}
		if rv == "" {
			rv = covered
		}
	}
	key.Cluster = obs[0].cluster
	c := change.For(t, "reconcile:"+rv, change.OpDelete, key, nil)
	if c == nil {
		return nil
	}
	c.ResourceVersion, c.Verb, c.Actor = rv, VerbPrune, actor
	return c
}
