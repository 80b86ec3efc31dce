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
