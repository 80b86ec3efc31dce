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

const collection = `{"kind":"ConfigMapList","items":[{"metadata":{"name":"a","namespace":"default"}},{"metadata":{"name":"b","namespace":"default","finalizers":["f"]}},{"metadata":{"name":"c","namespace":"default"}},{"metadata":{"name":"d","namespace":"default","deletionTimestamp":"x","finalizers":["f"]}}]}`

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
		// client-go and kubectl send DeleteOptions in the body: the URI shows no dry run.
		{name: "dry-run delete", event: event("delete", 200, cm, func(e *Event) {
			e.RequestObject = &RequestObject{Kind: "DeleteOptions", DryRun: []string{"All"}}
		}), wantReason: ReasonDryRun},
		{name: "dry-run deletecollection", event: event("deletecollection", 200, `{"kind":"ConfigMapList","items":[{"metadata":{"name":"a"}}]}`, func(e *Event) {
			e.RequestObject = &RequestObject{Kind: "DeleteOptions", DryRun: []string{"All"}}
		}), wantReason: ReasonDryRun},
		{name: "delete with options", event: event("delete", 200, `{"kind":"Status","status":"Success"}`, func(e *Event) {
			e.RequestObject = &RequestObject{Kind: "DeleteOptions"}
		}), wantOps: []Op{OpDelete}, wantNames: []string{"app"}, wantActor: "alice"},
		{name: "status subresource", event: event("update", 200, cm, func(e *Event) { e.ObjectRef.Subresource = "status" }), wantReason: ReasonSubresource},
		{name: "metadata level has no object", event: event("update", 200, ""), wantReason: ReasonNoObject},
		{name: "delete held by finalizer", event: event("delete", 200, `{"kind":"ConfigMap","metadata":{"name":"app","deletionTimestamp":"2026-01-01T00:00:00Z","finalizers":["x"]}}`), wantReason: ReasonTerminating},
		{name: "last finalizer removed", event: event("update", 200, `{"kind":"ConfigMap","metadata":{"name":"app","deletionTimestamp":"2026-01-01T00:00:00Z"}}`), wantOps: []Op{OpDelete}, wantNames: []string{"app"}, wantActor: "alice"},
		// The items are listed as they were before the delete: "b" has a finalizer, so it is
		// only Terminating now; "d" was Terminating already.
		{name: "deletecollection", event: event("deletecollection", 200, collection, func(e *Event) { e.ObjectRef.Name = "" }), wantOps: []Op{OpDelete, OpDelete}, wantNames: []string{"a", "c"}, wantActor: "alice"},
		{name: "deletecollection in the foreground", event: event("deletecollection", 200, collection, func(e *Event) {
			e.RequestObject = &RequestObject{Kind: "DeleteOptions", PropagationPolicy: "Foreground"}
		}), wantReason: ReasonTerminating},
		{name: "deletecollection orphaning, in the query", event: event("deletecollection", 200, collection, func(e *Event) { e.RequestURI += "?propagationPolicy=Orphan" }), wantReason: ReasonTerminating},
		{name: "deletecollection orphaning, old style", event: event("deletecollection", 200, collection, func(e *Event) {
			orphan := true
			e.RequestObject = &RequestObject{Kind: "DeleteOptions", OrphanDependents: &orphan}
		}), wantReason: ReasonTerminating},
		{name: "deletecollection in the background", event: event("deletecollection", 200, collection, func(e *Event) {
			e.RequestObject = &RequestObject{Kind: "DeleteOptions", PropagationPolicy: "Background"}
		}), wantOps: []Op{OpDelete, OpDelete}, wantNames: []string{"a", "c"}, wantActor: "alice"},
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

// TestDryRunDeleteAsSent is a dry-run delete as kube-apiserver sends it: DeleteOptions in
// the request body, the object in the response, nothing in the URI.
func TestDryRunDeleteAsSent(t *testing.T) {
	list, err := Decode(strings.NewReader(`{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[{
		"level":"RequestResponse","auditID":"a1","stage":"ResponseComplete","verb":"delete",
		"requestURI":"/api/v1/namespaces/default/configmaps/app","user":{"username":"alice"},
		"objectRef":{"resource":"configmaps","namespace":"default","name":"app","apiVersion":"v1"},
		"responseStatus":{"metadata":{},"code":200},
		"requestObject":{"kind":"DeleteOptions","apiVersion":"meta.k8s.io/__internal","dryRun":["All"]},
		"responseObject":` + cm + `}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if changes, reason := list.Items[0].Changes(); reason != ReasonDryRun {
		t.Errorf("got %d changes, reason %q; want %q", len(changes), reason, ReasonDryRun)
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

// scaleResponse is what the apiserver answers to a write of deployments/scale.
const scaleResponse = `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web","namespace":"default","uid":"u9","resourceVersion":"77","creationTimestamp":"2026-01-01T00:00:00Z"},"spec":{"replicas":4},"status":{"replicas":2,"selector":"app=web"}}`

func scaleEvent(verb string, code int, response string, mods ...func(*Event)) Event {
	return event(verb, code, response, append([]func(*Event){func(e *Event) {
		e.RequestURI = "/apis/apps/v1/namespaces/default/deployments/web/scale"
		e.ObjectRef = &ObjectReference{Resource: "deployments", Subresource: "scale", Namespace: "default", Name: "web", APIGroup: "apps", APIVersion: "v1"}
	}}, mods...)...)
}

func TestScale(t *testing.T) {
	for _, verb := range []string{"update", "patch"} {
		t.Run(verb, func(t *testing.T) {
			e := scaleEvent(verb, 200, scaleResponse)
			changes, reason := e.Changes()
			if reason != "" || len(changes) != 1 {
				t.Fatalf("got %d changes, reason %q; want one scale", len(changes), reason)
			}
			c := changes[0]
			if c.Op != OpScale || c.Replicas == nil || *c.Replicas != 4 {
				t.Fatalf("change = %s replicas %v, want scale to 4", c.Op, c.Replicas)
			}
			// The change names the parent object, at the parent's uid and resourceVersion.
			if c.Group != "apps" || c.Resource != "deployments" || c.Namespace != "default" || c.Name != "web" || c.UID != "u9" || c.ResourceVersion != "77" {
				t.Errorf("change identifies %+v, want the deployment default/web at uid u9 rv 77", c)
			}
			if c.Object != nil || c.Labels != nil {
				t.Errorf("a scale carries the Scale's object %v or labels %v, which are not the parent's", c.Object, c.Labels)
			}
			if c.Actor.Username != "alice" || c.Verb != verb {
				t.Errorf("actor %q verb %q", c.Actor.Username, c.Verb)
			}
		})
	}
	t.Run("to zero", func(t *testing.T) {
		// autoscaling/v1 omits a zero spec.replicas.
		e := scaleEvent("update", 200, `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web"},"spec":{}}`)
		changes, reason := e.Changes()
		if reason != "" || len(changes) != 1 || changes[0].Replicas == nil || *changes[0].Replicas != 0 {
			t.Fatalf("changes %+v reason %q, want one scale to 0", changes, reason)
		}
	})

	skipped := []struct {
		name  string
		event Event
		want  Reason
	}{
		{"dry run", scaleEvent("update", 200, scaleResponse, func(e *Event) { e.RequestURI += "?dryRun=All" }), ReasonDryRun},
		{"conflict", scaleEvent("update", 409, `{"kind":"Status"}`), ReasonFailed},
		{"metadata level", scaleEvent("update", 200, ""), ReasonNoObject},
		{"not a Scale", scaleEvent("update", 200, cm), ReasonNoObject},
		{"fractional replicas", scaleEvent("update", 200, `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web"},"spec":{"replicas":1.5}}`), ReasonNoObject},
		{"status", event("update", 200, cm, func(e *Event) { e.ObjectRef.Subresource = "status" }), ReasonSubresource},
		{"binding", event("create", 201, `{"kind":"Status","status":"Success"}`, func(e *Event) { e.ObjectRef.Resource, e.ObjectRef.Subresource = "pods", "binding" }), ReasonSubresourceRefresh},
		{"ephemeral containers", event("patch", 200, `{"kind":"Pod"}`, func(e *Event) { e.ObjectRef.Resource, e.ObjectRef.Subresource = "pods", "ephemeralcontainers" }), ReasonSubresourceRefresh},
		{"namespace finalize", event("update", 200, `{"kind":"Namespace"}`, func(e *Event) { e.ObjectRef.Resource, e.ObjectRef.Subresource = "namespaces", "finalize" }), ReasonSubresourceRefresh},
	}
	for _, tt := range skipped {
		t.Run(tt.name, func(t *testing.T) {
			changes, reason := tt.event.Changes()
			if reason != tt.want || len(changes) != 0 {
				t.Errorf("got %d changes, reason %q; want none, %q", len(changes), reason, tt.want)
			}
		})
	}
}
