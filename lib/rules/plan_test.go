package rules

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

func objMeta(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

func fixture() Input {
	return Input{
		Providers: []v1alpha1.GitProvider{
			{ObjectMeta: objMeta("gitops", "repo"), Spec: v1alpha1.GitProviderSpec{URL: "http://git/repo.git"}},
			{ObjectMeta: objMeta("team-a", "repo"), Spec: v1alpha1.GitProviderSpec{URL: "http://git/team.git"}},
		},
		Targets: []v1alpha1.GitTarget{
			{ObjectMeta: objMeta("gitops", "prod"), Spec: v1alpha1.GitTargetSpec{ProviderRef: v1alpha1.LocalObjectReference{Name: "repo"}, Branch: "main", Path: "prod", SourceClusters: []string{"prod"}}},
			{ObjectMeta: objMeta("gitops", "all"), Spec: v1alpha1.GitTargetSpec{ProviderRef: v1alpha1.LocalObjectReference{Name: "repo"}, Branch: "main", Path: "all", SourceClusters: []string{"prod", "dev"}}},
			{ObjectMeta: objMeta("gitops", "orphan"), Spec: v1alpha1.GitTargetSpec{ProviderRef: v1alpha1.LocalObjectReference{Name: "missing"}, Branch: "main", SourceClusters: []string{"prod"}}},
			{ObjectMeta: objMeta("team-a", "team"), Spec: v1alpha1.GitTargetSpec{ProviderRef: v1alpha1.LocalObjectReference{Name: "repo"}, Branch: "team", SourceClusters: []string{"prod"}}},
		},
		WatchRules: []v1alpha1.WatchRule{{
			ObjectMeta: objMeta("team-a", "cms"),
			Spec: v1alpha1.WatchRuleSpec{
				TargetRef: v1alpha1.LocalObjectReference{Name: "team"},
				Rules:     []v1alpha1.ResourceRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Operations: []v1alpha1.Operation{v1alpha1.OperationCreate, v1alpha1.OperationUpdate}}},
			},
		}},
		ClusterWatchRules: []v1alpha1.ClusterWatchRule{
			{
				ObjectMeta: objMeta("", "core-in-web"),
				Spec: v1alpha1.ClusterWatchRuleSpec{
					TargetRef: v1alpha1.NamespacedObjectReference{Namespace: "gitops", Name: "prod"},
					Rules:     []v1alpha1.ClusterResourceRule{{ResourceRule: v1alpha1.ResourceRule{APIGroups: []string{""}, Resources: []string{"*"}}, Namespaces: []string{"web"}}},
				},
			},
			{
				ObjectMeta: objMeta("", "apps-in-web"),
				Spec: v1alpha1.ClusterWatchRuleSpec{
					TargetRef:      v1alpha1.NamespacedObjectReference{Namespace: "gitops", Name: "prod"},
					ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"git": "yes"}},
					Rules: []v1alpha1.ClusterResourceRule{{
						ResourceRule: v1alpha1.ResourceRule{APIGroups: []string{"apps"}, Resources: []string{"*"}},
						Scope:        v1alpha1.ScopeNamespaced, Namespaces: []string{"web"},
					}},
				},
			},
			{
				ObjectMeta: objMeta("", "everything-cluster-scoped"),
				Spec: v1alpha1.ClusterWatchRuleSpec{
					TargetRef: v1alpha1.NamespacedObjectReference{Namespace: "gitops", Name: "all"},
					Rules:     []v1alpha1.ClusterResourceRule{{ResourceRule: v1alpha1.ResourceRule{APIGroups: []string{"*"}, Resources: []string{"*"}}, Scope: v1alpha1.ScopeCluster}},
				},
			},
			{
				ObjectMeta: objMeta("", "dangling"),
				Spec: v1alpha1.ClusterWatchRuleSpec{
					TargetRef: v1alpha1.NamespacedObjectReference{Namespace: "gitops", Name: "nope"},
					Rules:     []v1alpha1.ClusterResourceRule{{ResourceRule: v1alpha1.ResourceRule{APIGroups: []string{"*"}, Resources: []string{"*"}}}},
				},
			},
		},
	}
}

func TestMatch(t *testing.T) {
	plan, problems := Compile(fixture())
	if len(problems) != 2 {
		t.Errorf("problems = %v, want the orphan target and the dangling rule", problems)
	}
	deploy := Object{Cluster: "prod", Group: "apps", Resource: "deployments", Namespace: "web", Labels: map[string]string{"git": "yes"}, Operation: v1alpha1.OperationUpdate}
	tests := []struct {
		name string
		obj  func(o *Object)
		want []string
	}{
		{"selected deployment", func(o *Object) {}, []string{"gitops/prod"}},
		{"label mismatch", func(o *Object) { o.Labels = map[string]string{"git": "no"} }, nil},
		{"unknown labels on delete still match", func(o *Object) { o.Labels, o.Operation = nil, v1alpha1.OperationDelete }, []string{"gitops/prod"}},
		{"other namespace", func(o *Object) { o.Namespace = "db" }, nil},
		{"other group", func(o *Object) { o.Group = "batch" }, nil},
		{"cluster not accepted by target", func(o *Object) { o.Cluster = "dev" }, nil},
		{"cluster scoped goes to both-cluster target", func(o *Object) { o.Group, o.Resource, o.Namespace = "rbac.authorization.k8s.io", "clusterroles", "" }, []string{"gitops/all"}},
		{"cluster scoped from dev", func(o *Object) { o.Cluster, o.Namespace = "dev", "" }, []string{"gitops/all"}},
		{"watchrule namespace", func(o *Object) { o.Group, o.Resource, o.Namespace = "", "configmaps", "team-a" }, []string{"team-a/team"}},
		{"watchrule operation filter", func(o *Object) {
			o.Group, o.Resource, o.Namespace, o.Operation = "", "configmaps", "team-a", v1alpha1.OperationDelete
		}, nil},
		{"watchrule is namespace-bound", func(o *Object) { o.Group, o.Resource, o.Namespace = "", "configmaps", "team-b" }, nil},
		{"a rule naming namespaces skips cluster-scoped objects", func(o *Object) { o.Group, o.Resource, o.Namespace = "", "namespaces", "" }, []string{"gitops/all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := deploy
			tt.obj(&o)
			var got []string
			for _, target := range plan.Match(o) {
				got = append(got, target.Ref.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Match() = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("Match() = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestCompileIsOrderIndependent(t *testing.T) {
	in := fixture()
	a, _ := Compile(in)
	in.Targets[0], in.Targets[1] = in.Targets[1], in.Targets[0]
	in.ClusterWatchRules[0], in.ClusterWatchRules[1] = in.ClusterWatchRules[1], in.ClusterWatchRules[0]
	b, _ := Compile(in)
	obj := Object{Cluster: "prod", Group: "apps", Resource: "deployments", Labels: map[string]string{"git": "yes"}, Operation: v1alpha1.OperationCreate}
	for _, ns := range []string{"", "web"} {
		obj.Namespace = ns
		ma, mb := a.Match(obj), b.Match(obj)
		if len(ma) != len(mb) {
			t.Fatalf("namespace %q: %d vs %d targets", ns, len(ma), len(mb))
		}
		for i := range ma {
			if ma[i].Ref != mb[i].Ref {
				t.Errorf("namespace %q: order differs: %v vs %v", ns, ma[i].Ref, mb[i].Ref)
			}
		}
	}
	if a.Targets()[0].Partition != identity.PartitionOf("http://git/repo.git", "main") {
		t.Errorf("partition not derived from provider URL and branch")
	}
}

func TestScopeOf(t *testing.T) {
	plan, _ := Compile(fixture())
	tests := []struct {
		name                     string
		cluster, group, resource string
		namespaced               bool
		want                     Scope
	}{
		{"core wildcard limited to web", "prod", "", "configmaps", true, Scope{Wanted: true, Namespaces: []string{"team-a", "web"}}},
		{"apps in web only", "prod", "apps", "deployments", true, Scope{Wanted: true, Namespaces: []string{"web"}}},
		{"cluster-scoped everything", "dev", "rbac.authorization.k8s.io", "clusterroles", false, Scope{Wanted: true}},
		{"namespaced in a cluster-scoped-only rule", "dev", "apps", "deployments", true, Scope{}},
		{"unknown cluster", "staging", "", "configmaps", true, Scope{}},
		{"group nobody names", "prod", "batch", "jobs", true, Scope{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan.ScopeOf(tt.cluster, tt.group, tt.resource, tt.namespaced)
			if got.Wanted != tt.want.Wanted || len(got.Namespaces) != len(tt.want.Namespaces) {
				t.Fatalf("ScopeOf = %+v, want %+v", got, tt.want)
			}
			for i := range got.Namespaces {
				if got.Namespaces[i] != tt.want.Namespaces[i] {
					t.Fatalf("ScopeOf = %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestScopeOfAllNamespacesWins(t *testing.T) {
	in := fixture()
	in.ClusterWatchRules = append(in.ClusterWatchRules, v1alpha1.ClusterWatchRule{
		ObjectMeta: objMeta("", "all-configmaps"),
		Spec: v1alpha1.ClusterWatchRuleSpec{
			TargetRef: v1alpha1.NamespacedObjectReference{Namespace: "gitops", Name: "prod"},
			Rules:     []v1alpha1.ClusterResourceRule{{ResourceRule: v1alpha1.ResourceRule{APIGroups: []string{""}, Resources: []string{"configmaps"}}}},
		},
	})
	plan, _ := Compile(in)
	if got := plan.ScopeOf("prod", "", "configmaps", true); !got.Wanted || got.Namespaces != nil {
		t.Errorf("ScopeOf = %+v, want every namespace", got)
	}
}
