package writer

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
)

var committer = v1alpha1.Identity{Name: "Bot", Email: "bot@example.com"}

// msg builds a stream message for a ConfigMap change.
func msg(t *testing.T, streamID, user, name string, op change.Op) bus.Message {
	return msgIn(t, streamID, user, "apps", name, op)
}

func msgIn(t *testing.T, streamID, user, namespace, name string, op change.Op) bus.Message {
	t.Helper()
	key := identity.Key{Cluster: "prod", Resource: "configmaps", Namespace: namespace, Name: name}
	target := identity.TargetRef{Namespace: "gitops", Name: "main"}
	c := &change.Change{
		ID: identity.EventID("audit-"+streamID, key, target), Op: op, Time: time.Unix(1700000000, 0),
		Actor: change.Actor{Username: user}, AuditID: "audit-" + streamID, Verb: "update",
		Key: key, Target: target, Path: layout.Path("clusters/prod", key),
	}
	if op == change.OpUpsert {
		c.Object = json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","namespace":"` + namespace + `"}}`)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return bus.Message{StreamID: streamID, Payload: b}
}

func TestPlanBatchGroupsConsecutiveChangesByUser(t *testing.T) {
	msgs := []bus.Message{
		msg(t, "1-0", "alice", "a", change.OpUpsert),
		msg(t, "2-0", "alice", "b", change.OpUpsert),
		msg(t, "3-0", "bob", "a", change.OpDelete),
		msg(t, "4-0", "alice", "c", change.OpUpsert),
	}
	p := planBatch(msgs, []string{"clusters/prod"}, committer, time.Now())
	if len(p.poison) != 0 {
		t.Fatalf("poison: %v", p.poison)
	}
	if got := strings.Join(p.ids, ","); got != "1-0,2-0,3-0,4-0" {
		t.Errorf("ids = %s", got)
	}
	var authors []string
	for _, c := range p.commits {
		authors = append(authors, c.Author.Name)
	}
	if strings.Join(authors, ",") != "alice,bob,alice" {
		t.Fatalf("commit authors = %v, want alice,bob,alice (order kept, runs grouped)", authors)
	}
	first := p.commits[0]
	if len(first.Changes) != 2 || first.Committer.Name != "Bot" || first.Author.Email != "alice@prod" {
		t.Errorf("first commit = %+v", first)
	}
	if !strings.HasPrefix(first.Message, "2 changes by alice (prod)\n") || strings.Count(first.Message, TrailerEventID+": ") != 2 || !strings.Contains(first.Message, TrailerCluster+": prod") {
		t.Errorf("first message:\n%s", first.Message)
	}
	if del := p.commits[1]; !del.Changes[0].Delete || !strings.HasPrefix(del.Message, "update configmaps apps/a (prod)\n") {
		t.Errorf("delete commit = %+v", del)
	}
	if !strings.Contains(string(first.Changes[0].Content), "kind: ConfigMap") {
		t.Errorf("content not rendered: %s", first.Changes[0].Content)
	}
}

func TestPlanBatchParksWhatCannotBeWritten(t *testing.T) {
	good := msg(t, "1-0", "alice", "ok", change.OpUpsert)
	tests := []struct {
		name   string
		bad    bus.Message
		roots  []string
		reason string
	}{
		{"undecodable", bus.Message{StreamID: "2-0", Payload: []byte("{garbage")}, []string{"clusters/prod"}, "invalid change event"},
		{"outside the target folders", msgIn(t, "2-0", "alice", "other", "x", change.OpUpsert), []string{"clusters/prod/apps", "elsewhere"}, "outside the folders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planBatch([]bus.Message{good, tt.bad}, tt.roots, committer, time.Now())
			if len(p.poison) != 1 || p.poison[0].msg.StreamID != "2-0" || !strings.Contains(p.poison[0].reason, tt.reason) {
				t.Fatalf("poison = %v, want stream id 2-0 with %q", reasons(p.poison), tt.reason)
			}
			if len(p.commits) != 1 {
				t.Errorf("the good message must still be committed: %d commits", len(p.commits))
			}
			if strings.Join(p.ids, ",") != "1-0,2-0" {
				t.Errorf("ids = %v: a parked message is acknowledged with its batch", p.ids)
			}
		})
	}
	if p := planBatch([]bus.Message{{StreamID: "9-0"}}, nil, committer, time.Now()); len(p.commits) != 0 || len(p.poison) != 0 || len(p.ids) != 1 {
		t.Errorf("a trimmed entry must only be acknowledged: %+v", p)
	}
}

func TestInside(t *testing.T) {
	tests := []struct {
		path  string
		roots []string
		want  bool
	}{
		{"clusters/a/x.yaml", []string{"clusters/a"}, true},
		{"clusters/ab/x.yaml", []string{"clusters/a"}, false},
		{"clusters/a/../b/x.yaml", []string{"clusters/a"}, false},
		{"/clusters/a/x.yaml", []string{"clusters/a"}, false},
		{"anything.yaml", []string{""}, true},
		{"x.yaml", []string{"/a/"}, false},
	}
	for _, tt := range tests {
		if got := inside(tt.path, tt.roots); got != tt.want {
			t.Errorf("inside(%q, %q) = %v, want %v", tt.path, tt.roots, got, tt.want)
		}
	}
}

func TestEmail(t *testing.T) {
	tests := []struct{ user, want string }{
		{"alice", "alice@prod"},
		{"jane@example.com", "jane@example.com"},
		{"system:serviceaccount:kube-system:replicaset-controller", "system-serviceaccount-kube-system-replicaset-controller@prod"},
		{"oidc:jane@example.com", "oidc-jane-example.com@prod"},
		{"", "unknown@prod"},
	}
	for _, tt := range tests {
		if got := Email(tt.user, "prod"); got != tt.want {
			t.Errorf("Email(%q) = %q, want %q", tt.user, got, tt.want)
		}
	}
}

func reasons(ps []poisoned) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.msg.StreamID+": "+p.reason)
	}
	return out
}
