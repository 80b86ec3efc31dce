package audit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const cm = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app","namespace":"default","uid":"u1","resourceVersion":"42","labels":{"team":"a"}},"data":{"k":"v"}}`

func event(verb string, code int, response string, mods ...func(*Event)) Event {
	e := Event{
		AuditID:        "audit-1",
		Stage:          StageResponseComplete,
		RequestURI:     "/api/v1/namespaces/default/configmaps/app",
		Verb:           verb,
		User:           UserInfo{Username: "alice", Groups: []string{"dev"}},
		ObjectRef:      &ObjectReference{Resource: "configmaps", Namespace: "default", Name: "app", APIVersion: "v1"},
		ResponseStatus: &ResponseStatus{Code: code},
	}
	if response != "" {
		e.ResponseObject = json.RawMessage(response)
	}
	for _, m := range mods {
		m(&e)
	}
	return e
}

func TestChanges(t *testing.T) {
	tests := []struct {
		name       string
		event      Event
		wantReason Reason
		wantOps    []Op
		wantNames  []string
		wantActor  string
	}{
		{name: "create", event: event("create", 201, cm), wantOps: []Op{OpCreate}, wantNames: []string{"app"}, wantActor: "alice"},
		{name: "update", event: event("update", 200, cm), wantOps: []Op{OpUpdate}, wantNames: []string{"app"}, wantActor: "alice"},
		{name: "apply that creates", event: event("patch", 201, cm), wantOps: []Op{OpCreate}, wantNames: []string{"app"}, wantActor: "alice"},
		{name: "delete answered with status", event: event("delete", 200, `{"kind":"Status","status":"Success"}`), wantOps: []Op{OpDelete}, wantNames: []string{"app"}, wantActor: "alice"},
		{name: "impersonated", event: event("patch", 200, cm, func(e *Event) { e.ImpersonatedUser = &UserInfo{Username: "bob"} }), wantOps: []Op{OpUpdate}, wantNames: []string{"app"}, wantActor: "bob"},
		{name: "generateName create", event: event("create", 201, cm, func(e *Event) { e.ObjectRef.Name = "" }), wantOps: []Op{OpCreate}, wantNames: []string{"app"}, wantActor: "alice"},
		{name: "earlier stage", event: event("create", 201, cm, func(e *Event) { e.Stage = "ResponseStarted" }), wantReason: ReasonNotComplete},
		{name: "conflict", event: event("update", 409, `{"kind":"Status"}`), wantReason: ReasonFailed},
		{name: "no status", event: event("update", 200, cm, func(e *Event) { e.ResponseStatus = nil }), wantReason: ReasonFailed},
		{name: "get", event: event("get", 200, cm), wantReason: ReasonReadOnly},
		{name: "dry run", event: event("create", 201, cm, func(e *Event) { e.RequestURI += "?dryRun=All&fieldManager=kubectl" }), wantReason: ReasonDryRun},
		{name: "status subresource", event: event("update", 200, cm, func(e *Event) { e.ObjectRef.Subresource = "status" }), wantReason: ReasonSubresource},
		{name: "metadata level has no object", event: event("update", 200, ""), wantReason: ReasonNoObject},
		{name: "delete held by finalizer", event: event("delete", 200, `{"kind":"ConfigMap","metadata":{"name":"app","deletionTimestamp":"2026-01-01T00:00:00Z","finalizers":["x"]}}`), wantReason: ReasonTerminating},
		{name: "last finalizer removed", event: event("update", 200, `{"kind":"ConfigMap","metadata":{"name":"app","deletionTimestamp":"2026-01-01T00:00:00Z"}}`), wantOps: []Op{OpDelete}, wantNames: []string{"app"}, wantActor: "alice"},
		{name: "deletecollection", event: event("deletecollection", 200, `{"kind":"ConfigMapList","items":[{"metadata":{"name":"a","namespace":"default"}},{"metadata":{"name":"b","namespace":"default","deletionTimestamp":"x","finalizers":["f"]}},{"metadata":{"name":"c","namespace":"default"}}]}`, func(e *Event) { e.ObjectRef.Name = "" }), wantOps: []Op{OpDelete, OpDelete}, wantNames: []string{"a", "c"}, wantActor: "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, reason := tt.event.Changes()
			if reason != tt.wantReason {
				t.Fatalf("reason = %q, want %q", reason, tt.wantReason)
			}
			if len(changes) != len(tt.wantOps) {
				t.Fatalf("got %d changes, want %d", len(changes), len(tt.wantOps))
			}
			for i, c := range changes {
				if c.Op != tt.wantOps[i] || c.Name != tt.wantNames[i] {
					t.Errorf("change %d = %s %s, want %s %s", i, c.Op, c.Name, tt.wantOps[i], tt.wantNames[i])
				}
				if c.Actor.Username != tt.wantActor {
					t.Errorf("actor = %q, want %q", c.Actor.Username, tt.wantActor)
				}
				if c.Op == OpDelete && c.Object != nil {
					t.Errorf("delete carries an object")
				}
				if c.Op != OpDelete && (c.Object == nil || c.Labels["team"] != "a" || c.ResourceVersion != "42") {
					t.Errorf("upsert lost object metadata: %+v", c)
				}
			}
		})
	}
}

func TestImpersonationKeepsRealUser(t *testing.T) {
	e := event("patch", 200, cm, func(e *Event) { e.ImpersonatedUser = &UserInfo{Username: "bob"} })
	changes, _ := e.Changes()
	if got := changes[0].Actor.ImpersonatedBy; got != "alice" {
		t.Errorf("ImpersonatedBy = %q, want alice", got)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{"valid", `{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[]}`, false},
		{"syntax", `{"apiVersion":`, true},
		{"wrong kind", `{"apiVersion":"audit.k8s.io/v1","kind":"Event"}`, true},
		{"trailing", `{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[]} {}`, true},
		{"not an object", `[1,2]`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}
