package change

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

func sample() *Change {
	key := identity.Key{Cluster: "prod", Resource: "configmaps", Namespace: "default", Name: "app"}
	target := identity.TargetRef{Namespace: "gitops", Name: "main"}
	return &Change{
		ID:              identity.EventID("audit-1", key, target),
		Op:              OpUpsert,
		Time:            time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Partition:       "p1",
		Actor:           Actor{Username: "bob", ImpersonatedBy: "alice"},
		AuditID:         "audit-1",
		Verb:            "patch",
		Key:             key,
		Target:          target,
		Path:            "default/core/configmaps/app.yaml",
		ResourceVersion: "42",
		Object:          json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app"}}`),
	}
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for attr, want := range map[string]any{"specversion": "1.0", "source": "/clusters/prod", "type": TypeUpsert, "partitionkey": "p1", "actor": "bob", "auditid": "audit-1", "subject": "prod/core/configmaps/default/app"} {
		if raw[attr] != want {
			t.Errorf("attribute %s = %v, want %v", attr, raw[attr], want)
		}
	}
	out, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.Op != in.Op || !out.Time.Equal(in.Time) || out.Key != in.Key || out.Actor != in.Actor || out.Path != in.Path || out.ResourceVersion != "42" || string(out.Object) != string(in.Object) || out.Partition != "p1" {
		t.Errorf("round trip changed the change:\n in %+v\nout %+v", in, out)
	}
}

func TestScaleRoundTrip(t *testing.T) {
	in := sample()
	replicas := int64(0) // zero is a real value, not "absent"
	in.Op, in.Object, in.Replicas = OpScale, nil, &replicas
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["type"] != TypeScale {
		t.Errorf("type = %v, want %s", raw["type"], TypeScale)
	}
	out, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Op != OpScale || out.Replicas == nil || *out.Replicas != 0 || len(out.Object) != 0 {
		t.Errorf("round trip = op %s replicas %v object %s, want scale to 0 without object", out.Op, out.Replicas, out.Object)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Change)
	}{
		{"upsert without object", func(c *Change) { c.Object = nil }},
		{"no path", func(c *Change) { c.Path = "" }},
		{"no name", func(c *Change) { c.Key.Name = "" }},
		{"scale without replicas", func(c *Change) { c.Op, c.Object = OpScale, nil }},
		{"scale to negative replicas", func(c *Change) { n := int64(-1); c.Op, c.Object, c.Replicas = OpScale, nil, &n }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sample()
			tt.mutate(c)
			b, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Unmarshal(b); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := Unmarshal([]byte(`{not json`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage: err = %v, want ErrInvalid", err)
	}
}

func TestReadyEvent(t *testing.T) {
	p := identity.PartitionOf("http://git/repo.git", "main")
	e, err := ReadyEvent(p, "/ingest", "n1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadyFromEvent(e)
	if err != nil || got != p {
		t.Fatalf("ReadyFromEvent = %+v, %v; want %+v", got, err, p)
	}
	bad := p
	bad.Branch = "other"
	e, _ = ReadyEvent(bad, "/ingest", "n2")
	if _, err := ReadyFromEvent(e); !errors.Is(err, ErrInvalid) {
		t.Errorf("inconsistent partition accepted: %v", err)
	}
}
