package render

import (
	"errors"
	"testing"
)

func TestYAML(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{
			name: "kubectl order and sorted rest",
			in:   `{"spec":{"z":1,"a":[1,2]},"metadata":{"labels":{"b":"2","a":"1"},"namespace":"ns","name":"web"},"kind":"Deployment","apiVersion":"apps/v1"}`,
			want: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: ns\n  labels:\n    a: \"1\"\n    b: \"2\"\nspec:\n  a:\n  - 1\n  - 2\n  z: 1\n",
		},
		{
			name: "strings that look like other types stay strings",
			in:   `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"on":"yes","n":"012","big":"12345678901234567890"}}`,
			want: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  big: \"12345678901234567890\"\n  \"n\": \"012\"\n  \"on\": \"yes\"\n",
		},
		{name: "not an object", in: `[1]`, wantErr: true},
		{name: "no kind", in: `{"apiVersion":"v1"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := YAML([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrNotObject) {
					t.Fatalf("err = %v, want ErrNotObject", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("YAML() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
