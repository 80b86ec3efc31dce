package sanitize

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestObject(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "server state dropped, user fields kept",
			in: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default","uid":"u","resourceVersion":"7","generation":2,"creationTimestamp":"t","selfLink":"s","managedFields":[{}],"labels":{"a":"b"},"ownerReferences":[{"uid":"x"}],
				"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","keep":"me"}},"spec":{"replicas":3},"status":{"readyReplicas":3}}`,
			want: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default","labels":{"a":"b"},"ownerReferences":[{"uid":"x"}],"annotations":{"keep":"me"}},"spec":{"replicas":3}}`,
		},
		{
			name: "empty annotations removed",
			in:   `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},"data":{"k":"v"}}`,
			want: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"}}`,
		},
		{
			name: "secret values redacted, keys kept",
			in:   `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"stringData\":{\"password\":\"hunter2\"}}"}},"type":"Opaque","data":{"password":"aHVudGVyMg==","user":"YWRtaW4="},"stringData":{"x":"y"}}`,
			want: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"type":"Opaque","data":{"password":"REDACTED","user":"REDACTED"},"stringData":{"x":"REDACTED"}}`,
		},
		{
			name: "a Secret-like custom kind is not a Secret",
			in:   `{"apiVersion":"example.com/v1","kind":"Secret","metadata":{"name":"s"},"data":{"k":"v"}}`,
			want: `{"apiVersion":"example.com/v1","kind":"Secret","metadata":{"name":"s"},"data":{"k":"v"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Object(decode(t, tt.in))
			if diff := cmp.Diff(decode(t, tt.want), got); diff != "" {
				t.Errorf("Object() mismatch (-want +got):\n%s", diff)
			}
			out, _ := json.Marshal(got)
			if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "aHVudGVyMg") {
				t.Errorf("secret value survived: %s", out)
			}
		})
	}
}
