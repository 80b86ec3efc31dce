package reconcile

import (
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
	"github.com/gitops-reverser/gitops-reverser/lib/render"
	"github.com/gitops-reverser/gitops-reverser/lib/rules"
)

// fixture is one target, clusters/prod of cluster prod, wanting ConfigMaps labelled
// git=yes in namespaces a and b.
func fixture(t *testing.T) (*rules.Plan, *rules.Target) {
	t.Helper()
	plan, problems := rules.Compile(rules.Input{
		Providers: []v1alpha1.GitProvider{{ObjectMeta: metav1.ObjectMeta{Namespace: "gitops", Name: "repo"}, Spec: v1alpha1.GitProviderSpec{URL: "http://git/r.git"}}},
		Targets: []v1alpha1.GitTarget{{ObjectMeta: metav1.ObjectMeta{Namespace: "gitops", Name: "prod"}, Spec: v1alpha1.GitTargetSpec{
			ProviderRef: v1alpha1.LocalObjectReference{Name: "repo"}, Branch: "main", Path: "clusters/prod", SourceClusters: []string{"prod"},
		}}},
		ClusterWatchRules: []v1alpha1.ClusterWatchRule{{ObjectMeta: metav1.ObjectMeta{Name: "cms"}, Spec: v1alpha1.ClusterWatchRuleSpec{
			TargetRef:      v1alpha1.NamespacedObjectReference{Namespace: "gitops", Name: "prod"},
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"git": "yes"}},
			Rules:          []v1alpha1.ClusterResourceRule{{ResourceRule: v1alpha1.ResourceRule{APIGroups: []string{""}, Resources: []string{"configmaps"}}, Namespaces: []string{"a", "b"}}},
		}}},
	})
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	return plan, plan.Targets()[0]
}

func cm(ns, name, v string, labels map[string]string) object {
	return object{
		key:    identity.Key{Cluster: "prod", Resource: "configmaps", Namespace: ns, Name: name},
		listRV: "100",
		labels: labels,
		json:   []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","namespace":"` + ns + `"},"data":{"v":"` + v + `"}}`),
	}
}

func blob(t *testing.T, o object) plumbing.Hash {
	t.Helper()
	content, err := render.YAML(o.json)
	if err != nil {
		t.Fatal(err)
	}
	return plumbing.ComputeHash(plumbing.BlobObject, content)
}

func TestDiff(t *testing.T) {
	plan, target := fixture(t)
	yes := map[string]string{"git": "yes"}
	same, changed, missing := cm("a", "same", "1", yes), cm("a", "changed", "2", yes), cm("b", "missing", "1", yes)
	unlabelled := cm("a", "unlabelled", "1", nil) // exists, but the rule no longer wants it
	obs := &observation{
		cluster: "prod",
		objects: []object{same, changed, missing, unlabelled},
		listed:  map[resourceRef]map[string]string{{"", "configmaps"}: {"a": "100", "b": "101"}},
		exists:  map[identity.Key]bool{},
	}
	for _, o := range obs.objects {
		obs.exists[o.key] = true
	}
	path := func(ns, name string) string {
		return layout.Path(target.Path, identity.Key{Resource: "configmaps", Namespace: ns, Name: name})
	}
	files := tree{
		path("a", "same"):         blob(t, same),
		path("a", "changed"):      blob(t, cm("a", "changed", "1", yes)),
		path("a", "unlabelled"):   blob(t, unlabelled),
		path("b", "gone"):         {1},
		path("c", "unlisted"):     {2}, // namespace c was not listed: not ours to judge
		"clusters/prod/README.md": {3},
	}
	actor := change.Actor{Username: DefaultActor}

	changes, objects, err := diff(plan, target, []*observation{obs}, files, false, actor)
	if err != nil {
		t.Fatal(err)
	}
	if objects != 3 {
		t.Errorf("objects = %d, want 3 (same, changed, missing)", objects)
	}
	got := map[string]*change.Change{}
	for _, c := range changes {
		got[c.Path] = c
	}
	if len(got) != 3 {
		t.Fatalf("changes for %v, want changed, missing and gone", keys(got))
	}
	for _, p := range []string{path("a", "changed"), path("b", "missing")} {
		c := got[p]
		if c == nil || c.Op != change.OpUpsert || c.Verb != VerbSync || c.ResourceVersion != "100" || c.Actor != actor || len(c.Object) == 0 {
			t.Errorf("%s: %+v", p, c)
		}
	}
	del := got[path("b", "gone")]
	if del == nil || del.Op != change.OpDelete || del.Verb != VerbPrune || del.ResourceVersion != "101" || del.Key.Cluster != "prod" || del.Object != nil {
		t.Errorf("orphan delete: %+v", del)
	}

	// The same run again is deterministic: same ids, so a retried run appends nothing new.
	again, _, _ := diff(plan, target, []*observation{obs}, files, false, actor)
	for i := range again {
		if again[i].ID != changes[i].ID {
			t.Errorf("change %d: id %s, then %s", i, changes[i].ID, again[i].ID)
		}
	}

	// A snapshot upserts every wanted object, unchanged ones included.
	all, _, _ := diff(plan, target, []*observation{obs}, files, true, actor)
	if len(all) != 4 {
		t.Errorf("snapshot: %d changes, want 3 upserts and 1 delete", len(all))
	}
}

func keys(m map[string]*change.Change) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
