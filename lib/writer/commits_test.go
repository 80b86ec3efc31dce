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

func msgIn(t testing.TB, streamID, user, namespace, name string, op change.Op) bus.Message {
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

// state is a batchState for tests: nothing applied, no versions known, park at once.
func state(roots ...string) batchState {
	return batchState{
		roots: roots, committer: committer, epoch: 7, now: time.Now(), maxDeliveries: 1,
		applied: func(string) bool { return false }, versions: map[string]string{},
	}
}

func TestPlanBatchGroupsConsecutiveChangesByUser(t *testing.T) {
	msgs := []bus.Message{
		msg(t, "1-0", "alice", "a", change.OpUpsert),
		msg(t, "2-0", "alice", "b", change.OpUpsert),
		msg(t, "3-0", "bob", "a", change.OpDelete),
		msg(t, "4-0", "alice", "c", change.OpUpsert),
	}
	p := planBatch(decode(msgs), state("clusters/prod"))
	if len(p.poison) != 0 {
		t.Fatalf("poison: %v", reasons(p.poison))
	}
	if got := strings.Join(p.ack, ","); got != "1-0,2-0,3-0,4-0" {
		t.Errorf("ack = %s", got)
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
	if !strings.HasPrefix(first.Message, "2 changes by alice (prod)\n") || strings.Count(first.Message, TrailerEventID+": ") != 2 ||
		!strings.Contains(first.Message, TrailerCluster+": prod") || !strings.Contains(first.Message, TrailerWriterEpoch+": 7") {
		t.Errorf("first message:\n%s", first.Message)
	}
	if del := p.commits[1]; !del.Changes[0].Delete || !strings.HasPrefix(del.Message, "update configmaps apps/a (prod)\n") {
		t.Errorf("delete commit = %+v", del)
	}
	if !strings.Contains(string(first.Changes[0].Content), "kind: ConfigMap") {
		t.Errorf("content not rendered: %s", first.Changes[0].Content)
	}
}

func TestPlanBatchSkipsWhatGitAlreadyHas(t *testing.T) {
	withRV := func(m bus.Message, rv string) bus.Message {
		c, err := change.Unmarshal(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		c.ResourceVersion = rv
		b, _ := c.Marshal()
		return bus.Message{StreamID: m.StreamID, Payload: b, Deliveries: 1}
	}
	a5 := withRV(msg(t, "1-0", "alice", "a", change.OpUpsert), "5")
	a3 := withRV(msg(t, "2-0", "alice", "a", change.OpUpsert), "3") // queued after a newer one
	b9 := withRV(msg(t, "3-0", "alice", "b", change.OpUpsert), "9")
	c1 := withRV(msg(t, "4-0", "alice", "c", change.OpUpsert), "1")
	batch := decode([]bus.Message{a5, a3, b9, c1})

	st := state("clusters/prod")
	st.applied = func(id string) bool { return id == batch[3].change.ID } // c1 pushed, ack lost
	st.versions = map[string]string{versionKey(batch[2].change): "10"}    // b is in Git at 10
	p := planBatch(batch, st)
	if p.skipped != 3 || len(p.commits) != 1 || len(p.commits[0].Changes) != 1 {
		t.Fatalf("skipped %d, commits %+v; want only a@5 written", p.skipped, p.commits)
	}
	if strings.Join(p.ack, ",") != "1-0,2-0,3-0,4-0" {
		t.Errorf("ack = %v: skipped events are acknowledged too", p.ack)
	}
	if got := p.versions[versionKey(batch[0].change)]; got != "5" {
		t.Errorf("versions = %v, want a -> 5", p.versions)
	}
	if got := p.versions[versionKey(batch[3].change)]; got != "1" {
		t.Errorf("versions = %v: c@1 is in Git (pushed, ack lost), so its version counts", p.versions)
	}
}

// An event pushed before a crash (its ack lost) and redelivered is skipped, but its version
// must still guard against an older change of the same object queued behind it.
func TestPlanBatchRecordsTheVersionOfARedeliveredEvent(t *testing.T) {
	withRV := func(m bus.Message, rv string) bus.Message {
		c, _ := change.Unmarshal(m.Payload)
		c.ResourceVersion = rv
		b, _ := c.Marshal()
		return bus.Message{StreamID: m.StreamID, Payload: b, Deliveries: 1}
	}
	newer := withRV(msg(t, "1-0", "alice", "a", change.OpUpsert), "15")
	older := withRV(msg(t, "2-0", "bob", "a", change.OpUpsert), "12") // appended late by a second ingest
	batch := decode([]bus.Message{newer, older})
	st := state("clusters/prod")
	st.applied = func(id string) bool { return id == batch[0].change.ID }
	p := planBatch(batch, st)
	if len(p.commits) != 0 || p.skipped != 2 {
		t.Errorf("commits %d, skipped %d: the older change must not be written over the newer one in Git", len(p.commits), p.skipped)
	}
}

// A create and a delete by alice make no commit (the file ends as it began), so their ids
// reach no commit; bob's create after them does. Redelivered after a crash that lost the
// ack, alice's pair must not be written again after bob's create: it would delete his file.
func TestPlanBatchSkipsWhatALaterAppliedEventSupersedes(t *testing.T) {
	batch := decode([]bus.Message{
		msg(t, "1-0", "alice", "x", change.OpUpsert),
		msg(t, "2-0", "alice", "x", change.OpDelete),
		msg(t, "3-0", "bob", "x", change.OpUpsert),
		msg(t, "4-0", "alice", "y", change.OpUpsert), // another object: written as usual
	})
	st := state("clusters/prod")
	st.applied = func(id string) bool { return id == batch[2].change.ID }
	p := planBatch(batch, st)
	if p.skipped != 3 || len(p.commits) != 1 || len(p.commits[0].Changes) != 1 || !strings.HasSuffix(p.commits[0].Changes[0].Path, "/y.yaml") {
		t.Fatalf("skipped %d, commits %+v; want x's three events skipped and only y written", p.skipped, p.commits)
	}
	if strings.Join(p.ack, ",") != "1-0,2-0,3-0,4-0" {
		t.Errorf("ack = %v, want all four", p.ack)
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
		{"undecodable", bus.Message{StreamID: "2-0", Payload: []byte(`{"source":"/clusters/prod"}`)}, []string{"clusters/prod"}, "invalid change event"},
		{"outside the target folders", msgIn(t, "2-0", "alice", "other", "x", change.OpUpsert), []string{"clusters/prod/apps", "elsewhere"}, "outside the folders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := state(tt.roots...)
			st.maxDeliveries = 3
			for deliveries := int64(1); deliveries <= 3; deliveries++ {
				tt.bad.Deliveries = deliveries
				p := planBatch(decode([]bus.Message{good, tt.bad}), st)
				if len(p.commits) != 1 {
					t.Errorf("delivery %d: the good message must still be committed: %d commits", deliveries, len(p.commits))
				}
				if deliveries < 3 {
					if len(p.poison) != 0 || strings.Join(p.ack, ",") != "1-0" {
						t.Errorf("delivery %d: poison %v, ack %v; want it left pending to be tried again", deliveries, reasons(p.poison), p.ack)
					}
					continue
				}
				if len(p.poison) != 1 || p.poison[0].msg.StreamID != "2-0" || !strings.Contains(p.poison[0].reason, tt.reason) || p.poison[0].cluster != "prod" {
					t.Fatalf("poison = %v (cluster %q), want stream id 2-0 from prod with %q", reasons(p.poison), p.poison[0].cluster, tt.reason)
				}
			}
		})
	}
	if p := planBatch(decode([]bus.Message{{StreamID: "9-0"}}), state()); len(p.commits) != 0 || len(p.poison) != 0 || len(p.ack) != 1 {
		t.Errorf("a trimmed entry must only be acknowledged: %+v", p)
	}
}

func TestOlder(t *testing.T) {
	tests := []struct {
		v, w string
		want bool
	}{
		{"3", "5", true}, {"5", "5", false}, {"10", "9", false}, {"", "5", false}, {"5", "", false}, {"abc", "5", false},
	}
	for _, tt := range tests {
		if got := older(tt.v, tt.w); got != tt.want {
			t.Errorf("older(%q, %q) = %v, want %v", tt.v, tt.w, got, tt.want)
		}
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
