package layout

import (
	"testing"

	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

func TestPath(t *testing.T) {
	tests := []struct {
		name   string
		target string
		key    identity.Key
		want   string
	}{
		{"core namespaced", "clusters/a", identity.Key{Resource: "configmaps", Namespace: "default", Name: "app"}, "clusters/a/default/core/configmaps/app.yaml"},
		{"group namespaced", "", identity.Key{Group: "apps", Resource: "deployments", Namespace: "web", Name: "front"}, "web/apps/deployments/front.yaml"},
		{"cluster scoped", "/x/", identity.Key{Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: "system:view"}, "x/_cluster/rbac.authorization.k8s.io/clusterroles/system:view.yaml"},
		{"dot-dot cannot escape", "../../etc", identity.Key{Resource: "configmaps", Namespace: "n", Name: "c"}, "etc/n/core/configmaps/c.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Path(tt.target, tt.key); got != tt.want {
				t.Errorf("Path() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseInvertsPath(t *testing.T) {
	for _, target := range []string{"", "clusters/a", "/x/"} {
		for _, k := range []identity.Key{
			{Resource: "configmaps", Namespace: "default", Name: "app"},
			{Group: "apps", Resource: "deployments", Namespace: "web", Name: "front"},
			{Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: "system:view"},
		} {
			got, ok := Parse(target, Path(target, k))
			if !ok || got != k {
				t.Errorf("Parse(%q, Path(%v)) = %v, %v", target, k, got, ok)
			}
		}
	}
}

func TestParseRefusesFilesTheLayoutDoesNotMake(t *testing.T) {
	for _, p := range []string{
		"clusters/a/README.md",                          // not at object depth
		"clusters/a/default/core/configmaps/app.json",   // not YAML
		"clusters/a/default/core/configmaps/x/app.yaml", // too deep
		"clusters/b/default/core/configmaps/app.yaml",   // another target's folder
		"clusters/a/default/core/configmaps/.yaml",      // no name
	} {
		if k, ok := Parse("clusters/a", p); ok {
			t.Errorf("Parse(%q) = %v, want refused", p, k)
		}
	}
}
