package rbac

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
)

// served is a Discovery with a fixed answer.
type served []*metav1.APIResourceList

func (s served) ServerPreferredResources() ([]*metav1.APIResourceList, error) { return s, nil }

var batchAndCore = served{
	{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "configmaps", Namespaced: true, Verbs: []string{"get", "list", "watch"}},
		{Name: "namespaces", Namespaced: false, Verbs: []string{"get", "list", "watch"}},
		{Name: "secrets", Namespaced: true, Verbs: []string{"get", "list", "watch"}},
	}},
	{GroupVersion: "batch/v1", APIResources: []metav1.APIResource{
		{Name: "cronjobs", Namespaced: true, Verbs: []string{"get", "list", "watch"}},
		{Name: "cronjobs/status", Namespaced: true, Verbs: []string{"get", "update"}},
		{Name: "jobs", Namespaced: true, Verbs: []string{"get", "list", "watch"}},
	}},
}

func sample(t *testing.T) catalog.Objects {
	t.Helper()
	objs, err := catalog.ReadFile("testdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Providers) != 2 || len(objs.Targets) != 2 || len(objs.WatchRules) != 2 || len(objs.ClusterWatchRules) != 2 || len(objs.SourceClusters) != 2 {
		t.Fatalf("read %+v", objs)
	}
	return objs
}

// index returns the generated objects by "Kind namespace/name".
func index(out *Output) map[string]runtime.Object {
	m := map[string]runtime.Object{}
	for _, o := range out.Objects {
		acc, _ := o.(metav1.Object)
		m[o.GetObjectKind().GroupVersionKind().Kind+" "+acc.GetNamespace()+"/"+acc.GetName()] = o
	}
	return m
}

func subjectNames(s []rbacv1.Subject) []string {
	var out []string
	for _, x := range s {
		if x.Kind != rbacv1.ServiceAccountKind || x.Namespace != DefaultNamespace {
			return []string{"unexpected subject " + x.String()}
		}
		out = append(out, x.Name)
	}
	return out
}

func TestGenerateSample(t *testing.T) {
	out, err := Generate(sample(t), Options{Discovery: batchAndCore})
	if err != nil {
		t.Fatal(err)
	}
	got := index(out)
	secretRule := func(names ...string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: names}}
	}
	read := func(group string, resources ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: resources, Verbs: []string{"get", "list"}}
	}
	wantRoles := map[string]struct {
		rules    []rbacv1.PolicyRule
		subjects []string
	}{
		"Role team-a/" + CredentialsRole:          {secretRule("git-creds"), []string{Writer, Reconcile, DLQSweep}},
		"Role gitops-reverser/" + TokensRole:      {secretRule("cluster-tokens"), []string{Ingest, Reconcile, DLQSweep}},
		"Role gitops-reverser/" + KubeconfigsRole: {secretRule("remote-kubeconfig"), []string{Reconcile}},
		"Role team-a/" + ReaderRole:               {[]rbacv1.PolicyRule{read("", "configmaps")}, []string{Reconcile}},
		"Role team-b/" + ReaderRole:               {[]rbacv1.PolicyRule{read("apps", "deployments")}, []string{Reconcile}},
		"Role team-c/" + ReaderRole:               {[]rbacv1.PolicyRule{read("batch", "cronjobs", "jobs")}, []string{Reconcile}},
		"ClusterRole /" + ReaderRole:              {[]rbacv1.PolicyRule{read("", "namespaces")}, []string{Reconcile}},
	}
	if len(got) != 2*len(wantRoles) {
		t.Errorf("generated %d objects, want %d: %v", len(got), 2*len(wantRoles), keys(got))
	}
	for key, want := range wantRoles {
		var rules []rbacv1.PolicyRule
		var subjects []rbacv1.Subject
		switch o := got[key].(type) {
		case *rbacv1.Role:
			rules = o.Rules
			b, _ := got["RoleBinding "+strings.TrimPrefix(key, "Role ")].(*rbacv1.RoleBinding)
			if b == nil || b.RoleRef.Kind != "Role" || b.RoleRef.Name != o.Name {
				t.Errorf("%s: no RoleBinding of it", key)
				continue
			}
			subjects = b.Subjects
		case *rbacv1.ClusterRole:
			rules = o.Rules
			b, _ := got["ClusterRoleBinding /"+o.Name].(*rbacv1.ClusterRoleBinding)
			if b == nil || b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != o.Name {
				t.Errorf("%s: no ClusterRoleBinding of it", key)
				continue
			}
			subjects = b.Subjects
		default:
			t.Errorf("%s not generated; got %v", key, keys(got))
			continue
		}
		if !reflect.DeepEqual(rules, want.rules) {
			t.Errorf("%s rules = %+v, want %+v", key, rules, want.rules)
		}
		if names := subjectNames(subjects); !reflect.DeepEqual(names, want.subjects) {
			t.Errorf("%s subjects = %v, want %v", key, names, want.subjects)
		}
	}
	if len(out.Notes) != 1 || !strings.Contains(out.Notes[0], "SourceCluster remote") {
		t.Errorf("notes = %q, want one about the remote cluster", out.Notes)
	}
	assertLeastPrivilege(t, out)
}

// assertLeastPrivilege checks what must hold of any generated RBAC: no "*", and Secrets only
// by name.
func assertLeastPrivilege(t *testing.T, out *Output) {
	t.Helper()
	for _, o := range out.Objects {
		var rules []rbacv1.PolicyRule
		switch r := o.(type) {
		case *rbacv1.Role:
			rules = r.Rules
		case *rbacv1.ClusterRole:
			rules = r.Rules
		}
		for _, r := range rules {
			for _, v := range append(append(append([]string{}, r.Verbs...), r.Resources...), r.APIGroups...) {
				if v == "*" {
					t.Errorf("%T %v has a wildcard rule %+v", o, o.(metav1.Object).GetName(), r)
				}
			}
			for _, res := range r.Resources {
				if res == "secrets" && len(r.ResourceNames) == 0 {
					t.Errorf("%T %v grants Secrets without resourceNames: %+v", o, o.(metav1.Object).GetName(), r)
				}
			}
		}
	}
}

func keys(m map[string]runtime.Object) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWildcardWithoutDiscoveryIsRefused(t *testing.T) {
	out, err := Generate(sample(t), Options{})
	if err == nil {
		t.Fatal("a \"*\" rule was granted without discovery")
	}
	for _, want := range []string{"ClusterWatchRule batch-of-team-c", `"*"`, "name the resources"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The rest is still generated, the wildcard rule's namespace is not.
	got := index(out)
	if got["Role team-a/"+ReaderRole] == nil || got["Role team-a/"+CredentialsRole] == nil {
		t.Errorf("the rules without \"*\" were not generated: %v", keys(got))
	}
	if got["Role team-c/"+ReaderRole] != nil {
		t.Error("the wildcard rule was granted")
	}
	assertLeastPrivilege(t, out)
}

func TestWildcardNamingSecretsIsNoted(t *testing.T) {
	objs := sample(t)
	objs.ClusterWatchRules = []v1alpha1.ClusterWatchRule{{
		ObjectMeta: metav1.ObjectMeta{Name: "everything"},
		Spec: v1alpha1.ClusterWatchRuleSpec{
			TargetRef: v1alpha1.NamespacedObjectReference{Namespace: "team-a", Name: "main"},
			Rules: []v1alpha1.ClusterResourceRule{{
				ResourceRule: v1alpha1.ResourceRule{APIGroups: []string{"*"}, Resources: []string{"*"}},
				Scope:        v1alpha1.ScopeNamespaced,
			}},
		},
	}}
	out, err := Generate(objs, Options{Discovery: batchAndCore})
	if err != nil {
		t.Fatal(err)
	}
	cr, _ := index(out)["ClusterRole /"+ReaderRole].(*rbacv1.ClusterRole)
	if cr == nil {
		t.Fatal("no ClusterRole for a rule over every namespace")
	}
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs", "jobs"}, Verbs: []string{"get", "list"}},
	}
	if !reflect.DeepEqual(cr.Rules, want) {
		t.Errorf("rules = %+v, want %+v (namespaced resources only, no subresources)", cr.Rules, want)
	}
	// Covered by the ClusterRole: no Role repeats configmaps in team-a.
	if index(out)["Role team-a/"+ReaderRole] != nil {
		t.Error("a Role repeats what the ClusterRole grants")
	}
	if !strings.Contains(strings.Join(out.Notes, "\n"), "ClusterWatchRule everything names Secrets") {
		t.Errorf("notes = %q, want one about Secrets", out.Notes)
	}
}

func TestRemoteOnlyTargetsGrantNothingLocally(t *testing.T) {
	objs := sample(t)
	objs.Targets[0].Spec.SourceClusters = []string{"remote"} // team-a/main
	objs.ClusterWatchRules = nil
	out, err := Generate(objs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := index(out)
	if got["Role team-a/"+ReaderRole] != nil {
		t.Error("rules of a target read only through a kubeconfig were granted to the reconcile job")
	}
	if got["Role team-b/"+ReaderRole] == nil {
		t.Error("team-b, read locally, got no reader Role")
	}
}

func TestWriteYAMLRoundTrips(t *testing.T) {
	out, err := Generate(sample(t), Options{Discovery: batchAndCore})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteYAML(&b, out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "creationTimestamp") {
		t.Error("YAML carries creationTimestamp")
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(&b, 4096)
	var n int
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if obj == nil {
			continue
		}
		want := out.Objects[n]
		back := reflect.New(reflect.TypeOf(want).Elem()).Interface()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, want) {
			t.Errorf("document %d = %+v, want %+v", n, back, want)
		}
		n++
	}
	if n != len(out.Objects) {
		t.Errorf("%d documents, want %d", n, len(out.Objects))
	}
}
