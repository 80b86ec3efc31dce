package catalog

import (
	"strings"
	"testing"

	"github.com/gitops-reverser/gitops-reverser/lib/rules"
)

const sample = `
apiVersion: v1
kind: Secret
metadata: {name: t, namespace: gitops}
stringData: {token: tok-1, password: pw}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: prod}
spec:
  clusterID: prod
  tokenSecretRefs: [{namespace: gitops, name: t}]
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitProvider
metadata: {name: repo, namespace: gitops}
spec: {url: "https://git.example/repo.git", secretRef: {name: t}}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: main, namespace: gitops}
spec: {providerRef: {name: repo}, branch: main, path: prod, sourceClusters: [prod]}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: WatchRule
metadata: {name: cms, namespace: gitops}
spec:
  targetRef: {name: main}
  rules: [{apiGroups: [""], resources: [configmaps]}]
`

func TestDecode(t *testing.T) {
	s, err := Decode(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Problems) != 0 {
		t.Errorf("problems: %v", s.Problems)
	}
	c, ok := s.Cluster("prod")
	if !ok || !c.Authenticate("tok-1") || c.Authenticate("tok-2") || c.Authenticate("") {
		t.Errorf("cluster prod: found %v, token checks wrong", ok)
	}
	targets := s.Plan.Match(rules.Object{Cluster: "prod", Resource: "configmaps", Namespace: "gitops", Operation: "CREATE"})
	if len(targets) != 1 {
		t.Fatalf("targets = %v", targets)
	}
	p, ok := s.Partition(targets[0].Partition.ID)
	if !ok || p.Auth.Password != "pw" || p.Committer.Name == "" || p.Roots[0] != "prod" {
		t.Errorf("partition = %+v", p)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown kind", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}", "document 1: unsupported kind"},
		{"typo in a field", "apiVersion: reverser.gitops.dev/v1alpha1\nkind: GitTarget\nmetadata: {name: x}\nspec: {brnach: main}", `unknown field "spec.brnach"`},
		{"not YAML", "a: [", "document 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestMissingSecretsAreProblemsNotFailures(t *testing.T) {
	doc := strings.Replace(sample, "name: t, namespace: gitops}\nstringData", "name: other, namespace: gitops}\nstringData", 1)
	s, err := Decode(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Problems) != 2 {
		t.Errorf("problems = %v, want the SourceCluster's and the GitProvider's missing Secret", s.Problems)
	}
	if c, ok := s.Cluster("prod"); !ok || c.Authenticate("tok-1") {
		t.Error("a cluster without a resolvable token must exist but accept nothing")
	}
}

func TestClusterPolicy(t *testing.T) {
	s, err := Decode(strings.NewReader(`
apiVersion: v1
kind: Secret
metadata: {name: t, namespace: ops}
stringData: {token: x}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: bounded}
spec:
  clusterID: bounded
  tokenSecretRefs: [{namespace: ops, name: t}]
  namespaces: [shop]
  resources: [{apiGroups: [""], resources: [configmaps]}, {apiGroups: [apps], resources: ["*"]}]
  rateLimit: {eventsPerSecond: 5}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: open}
spec:
  clusterID: open
  tokenSecretRefs: [{namespace: ops, name: t}]
`))
	if err != nil {
		t.Fatal(err)
	}
	bounded, _ := s.Cluster("bounded")
	for _, tc := range []struct {
		group, resource, namespace string
		want                       bool
	}{
		{"", "configmaps", "shop", true},
		{"apps", "deployments", "shop", true},
		{"", "secrets", "shop", false},        // resource not listed
		{"", "configmaps", "payments", false}, // namespace not listed
		{"", "namespaces", "", false},         // cluster-scoped: not in a listed namespace
	} {
		if got := bounded.Admits(tc.group, tc.resource, tc.namespace); got != tc.want {
			t.Errorf("bounded admits %s/%s in %q = %v, want %v", tc.group, tc.resource, tc.namespace, got, tc.want)
		}
	}
	if bounded.RateLimit == nil || bounded.RateLimit.EventsPerSecond != 5 {
		t.Errorf("rate limit = %+v", bounded.RateLimit)
	}
	open, _ := s.Cluster("open")
	if !open.Admits("", "secrets", "") || !open.Admits("x.io", "things", "any") || open.RateLimit != nil {
		t.Error("a SourceCluster without policy must admit everything, without a rate limit")
	}
}
