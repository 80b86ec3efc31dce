package render

import (
	"errors"
	"testing"

	"go.yaml.in/yaml/v2"
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
		{
			name: "JSON escapes the YAML parser refused",
			in:   `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"url":"a\/b","smile":"\ud83d\ude00"}}`,
			want: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  smile: \"\\U0001F600\"\n  url: a/b\n",
		},
		{name: "not an object", in: `[1]`, wantErr: true},
		{name: "two objects", in: `{"apiVersion":"v1","kind":"X"} {}`, wantErr: true},
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

// TestYAMLMatchesTheYAMLParser checks that decoding with encoding/json writes the same bytes
// as the YAML parser that rendering used before: a different byte would rewrite every file in
// every repository on upgrade.
func TestYAMLMatchesTheYAMLParser(t *testing.T) {
	inputs := []string{
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"n","labels":{"a10":"x","a9":"y","A":"z"}},"data":{"k":"v"}}`,
		`{"apiVersion":"v1","kind":"X","spec":{"i":1,"neg":-7,"zero":0,"negzero":-0,"f":1.5,"whole":2.0,"exp":1e3,"small":1.5e-7,"big":12345678901234567890,"huger":123456789012345678901234567890,"max":9223372036854775807,"min":-9223372036854775808}}`,
		`{"apiVersion":"v1","kind":"X","spec":{"t":true,"f":false,"n":null,"empty":{},"list":[],"nested":[[1,[2]],{"b":{"c":[null,true,"s"]}}]}}`,
		`{"apiVersion":"v1","kind":"X","data":{"esc":"tab\there \"q\" \\ \u00e9 \u2028 😀","multi":"line1\nline2\n","lead":" space","colon":"a: b","hash":"# c","yes":"yes","null":"null","num":"1e3","date":"2026-11-30","empty":""}}`,
		`{"kind":"X","apiVersion":"v1","metadata":{"namespace":"n","name":"c","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"a\":1}\n"},"managedFields":[{"manager":"m","fieldsV1":{"f:data":{".":{},"f:k":{}}}}]}}`,
	}
	for _, in := range inputs {
		got, err := YAML([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var ref map[any]any
		if err := yaml.Unmarshal([]byte(in), &ref); err != nil {
			t.Fatal(err)
		}
		if meta, ok := ref["metadata"].(map[any]any); ok {
			ref["metadata"] = orderedAny(meta, leadingMetadata)
		}
		want, err := yaml.Marshal(orderedAny(ref, leadingTop))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s:\ngot\n%s\nthe YAML parser gives\n%s", in, got, want)
		}
	}
}

// orderedAny is ordered for the YAML parser's maps.
func orderedAny(m map[any]any, leading []string) yaml.MapSlice {
	s := make(map[string]any, len(m))
	for k, v := range m {
		s[k.(string)] = v
	}
	return ordered(s, leading)
}
