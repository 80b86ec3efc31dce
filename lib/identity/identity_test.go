package identity

import "testing"

func TestKeyString(t *testing.T) {
	tests := []struct {
		name string
		key  Key
		want string
	}{
		{"namespaced core", Key{Cluster: "a", Resource: "configmaps", Namespace: "default", Name: "x"}, "a/core/configmaps/default/x"},
		{"cluster scoped group", Key{Cluster: "a", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: "view"}, "a/rbac.authorization.k8s.io/clusterroles/_cluster/view"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.key.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEventID(t *testing.T) {
	key := Key{Cluster: "a", Resource: "configmaps", Namespace: "default", Name: "x"}
	target := TargetRef{Namespace: "gitops", Name: "main"}
	id := EventID("audit-1", key, target)
	if len(id) != 32 {
		t.Fatalf("EventID length = %d, want 32", len(id))
	}
	if again := EventID("audit-1", key, target); again != id {
		t.Errorf("EventID not deterministic: %q then %q", id, again)
	}
	other := key
	other.Cluster = "b"
	variants := map[string]string{
		"other origin":    EventID("audit-2", key, target),
		"other cluster":   EventID("audit-1", other, target),
		"other target":    EventID("audit-1", key, TargetRef{Namespace: "gitops", Name: "second"}),
		"other namespace": EventID("audit-1", Key{Cluster: "a", Resource: "configmaps", Namespace: "kube-system", Name: "x"}, target),
	}
	for name, v := range variants {
		if v == id {
			t.Errorf("%s: EventID collides with the original", name)
		}
	}
}

func TestPartitionOf(t *testing.T) {
	p := PartitionOf("https://git.example/repo.git/", "main")
	if p.RepoURL != "https://git.example/repo.git" {
		t.Errorf("RepoURL = %q, trailing slash not trimmed", p.RepoURL)
	}
	if q := PartitionOf("https://git.example/repo.git", "main"); q.ID != p.ID {
		t.Errorf("trailing slash changed the partition: %q vs %q", p.ID, q.ID)
	}
	if q := PartitionOf("https://git.example/repo.git", "dev"); q.ID == p.ID {
		t.Errorf("two branches share partition %q", p.ID)
	}
	if len(p.ID) != 16 {
		t.Errorf("ID length = %d, want 16", len(p.ID))
	}
}
