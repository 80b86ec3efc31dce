package v1alpha1

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// crdDir holds the CRDs test/tools/codegen.sh generates from this package.
const crdDir = "../../../manifests/crds"

// celRule is an x-kubernetes-validations entry expected at a schema path.
type celRule struct {
	path      string // dotted path of properties under the object schema, e.g. "spec.url"
	rule      string
	message   string // substring
	fieldPath string
}

var wantCRDs = []struct {
	kind, plural, scope string
	rules               []celRule
}{{
	kind: "GitProvider", plural: "gitproviders", scope: "Namespaced",
	rules: []celRule{
		{path: "spec.url", rule: "self == oldSelf", message: "url is immutable: create a new GitProvider"},
	},
}, {
	kind: "GitTarget", plural: "gittargets", scope: "Namespaced",
	rules: []celRule{
		{path: "spec.branch", rule: "self == oldSelf", message: "branch is immutable: create a new GitTarget"},
		{path: "spec.path", rule: "!self.startsWith('/')", message: "path must be relative"},
		{path: "spec.path", rule: "!self.matches('(^|/)[.][.](/|$)')", message: "path may not contain '..'"},
		{path: "spec", rule: `(has(self.path) ? self.path : "") == (has(oldSelf.path) ? oldSelf.path : "")`,
			message: "path is immutable: create a new GitTarget", fieldPath: ".path"},
	},
}, {
	kind: "WatchRule", plural: "watchrules", scope: "Namespaced",
}, {
	kind: "ClusterWatchRule", plural: "clusterwatchrules", scope: "Cluster",
}, {
	kind: "SourceCluster", plural: "sourceclusters", scope: "Cluster",
	rules: []celRule{
		{path: "spec.clusterID", rule: "self == oldSelf", message: "clusterID is immutable: create a new SourceCluster"},
	},
}}

// TestCRDsCoverEveryKind checks that manifests/crds holds one CRD per kind of this package and
// nothing else of this group, so a kind added without rerunning codegen fails here.
func TestCRDsCoverEveryKind(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	pkgPath := reflect.TypeFor[GitProvider]().PkgPath()
	var kinds []string
	for gvk, typ := range scheme.AllKnownTypes() {
		if gvk.GroupVersion() == SchemeGroupVersion && typ.PkgPath() == pkgPath && !strings.HasSuffix(gvk.Kind, "List") {
			kinds = append(kinds, gvk.Kind)
		}
	}
	var tested []string
	for _, w := range wantCRDs {
		tested = append(tested, w.kind)
	}
	slices.Sort(kinds)
	slices.Sort(tested)
	if !slices.Equal(kinds, tested) {
		t.Errorf("kinds registered = %v, kinds with a CRD test = %v", kinds, tested)
	}

	files, err := filepath.Glob(filepath.Join(crdDir, GroupName+"_*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	var want []string
	for _, w := range wantCRDs {
		want = append(want, GroupName+"_"+w.plural+".yaml")
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("CRD files = %v, want %v (run bash test/tools/codegen.sh)", got, want)
	}
}

func TestCRDs(t *testing.T) {
	for _, w := range wantCRDs {
		t.Run(w.kind, func(t *testing.T) {
			crd := readCRD(t, filepath.Join(crdDir, GroupName+"_"+w.plural+".yaml"))

			for path, want := range map[string]any{
				"apiVersion":          "apiextensions.k8s.io/v1",
				"kind":                "CustomResourceDefinition",
				"metadata.name":       w.plural + "." + GroupName,
				"spec.group":          GroupName,
				"spec.scope":          w.scope,
				"spec.names.kind":     w.kind,
				"spec.names.listKind": w.kind + "List",
				"spec.names.plural":   w.plural,
				"spec.names.singular": strings.ToLower(w.kind),
			} {
				if got := lookup(crd, path); got != want {
					t.Errorf("%s = %v, want %v", path, got, want)
				}
			}
			if cats, _ := lookup(crd, "spec.names.categories").([]any); !slices.Contains(cats, any("gitops-reverser")) {
				t.Errorf("spec.names.categories = %v, want it to include gitops-reverser", cats)
			}

			versions, _ := lookup(crd, "spec.versions").([]any)
			if len(versions) != 1 {
				t.Fatalf("spec.versions has %d entries, want 1", len(versions))
			}
			version, _ := versions[0].(map[string]any)
			for path, want := range map[string]any{
				"name":    SchemeGroupVersion.Version,
				"served":  true,
				"storage": true,
			} {
				if got := lookup(version, path); got != want {
					t.Errorf("version %s = %v, want %v", path, got, want)
				}
			}
			if _, ok := lookup(version, "subresources.status").(map[string]any); !ok {
				t.Error("version has no status subresource")
			}
			if !hasPrinterColumn(version, "Ready") {
				t.Error("no Ready printer column")
			}

			schema, ok := lookup(version, "schema.openAPIV3Schema").(map[string]any)
			if !ok {
				t.Fatal("version has no schema.openAPIV3Schema")
			}
			checkConditionsSchema(t, schema)
			checkCELRules(t, schema, w.rules)
		})
	}
}

// checkConditionsSchema checks that knative's conditions got a schema that validates them.
func checkConditionsSchema(t *testing.T, schema map[string]any) {
	t.Helper()
	cond := schemaAt(schema, "status.conditions")
	items, ok := cond["items"].(map[string]any)
	if lookup(cond, "type") != "array" || !ok {
		t.Fatalf("status.conditions is not an array of objects: %v", cond)
	}
	if req, _ := items["required"].([]any); !slices.Contains(req, any("type")) || !slices.Contains(req, any("status")) {
		t.Errorf("a condition requires %v, want type and status", req)
	}
	if got := lookup(items, "properties.lastTransitionTime.type"); got != "string" {
		t.Errorf("condition lastTransitionTime has type %v, want string", got)
	}
}

// checkCELRules checks that exactly the wanted CEL rules are in the schema, each with a message.
func checkCELRules(t *testing.T, schema map[string]any, want []celRule) {
	t.Helper()
	var found []celRule
	walkSchema(schema, "", func(path string, s map[string]any) {
		rules, _ := s["x-kubernetes-validations"].([]any)
		for _, r := range rules {
			r, _ := r.(map[string]any)
			rule, _ := r["rule"].(string)
			msg, _ := r["message"].(string)
			fp, _ := r["fieldPath"].(string)
			if msg == "" {
				t.Errorf("%s: rule %q has no message for the user", path, rule)
			}
			found = append(found, celRule{path: path, rule: rule, message: msg, fieldPath: fp})
		}
	})
	for _, w := range want {
		i := slices.IndexFunc(found, func(f celRule) bool { return f.path == w.path && f.rule == w.rule })
		if i < 0 {
			t.Errorf("%s: rule %q missing; found %+v", w.path, w.rule, found)
			continue
		}
		f := found[i]
		if !strings.Contains(f.message, w.message) || f.fieldPath != w.fieldPath {
			t.Errorf("%s: rule %q has message %q, fieldPath %q; want a message with %q, fieldPath %q",
				w.path, w.rule, f.message, f.fieldPath, w.message, w.fieldPath)
		}
	}
	if len(found) != len(want) {
		t.Errorf("found %d CEL rules, want %d: %+v", len(found), len(want), found)
	}
}

func readCRD(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run bash test/tools/codegen.sh)", err)
	}
	body := strings.TrimPrefix(string(data), "---\n")
	if strings.Contains(body, "\n---") {
		t.Fatalf("%s holds more than one YAML document", path)
	}
	var crd map[string]any
	if err := yaml.UnmarshalStrict([]byte(body), &crd); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return crd
}

// lookup returns the value at a dotted path of nested maps, or nil.
func lookup(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// schemaAt returns the schema of a dotted path of properties, e.g. "spec.url".
func schemaAt(schema map[string]any, path string) map[string]any {
	for _, k := range strings.Split(path, ".") {
		schema, _ = lookup(schema, "properties."+k).(map[string]any)
	}
	return schema
}

// walkSchema calls fn for the schema and every nested property and item schema, with its dotted
// property path (items do not add to the path).
func walkSchema(s map[string]any, path string, fn func(string, map[string]any)) {
	fn(path, s)
	props, _ := s["properties"].(map[string]any)
	for name, p := range props {
		if p, ok := p.(map[string]any); ok {
			walkSchema(p, strings.TrimPrefix(path+"."+name, "."), fn)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		walkSchema(items, path, fn)
	}
}

func hasPrinterColumn(version map[string]any, name string) bool {
	cols, _ := version["additionalPrinterColumns"].([]any)
	return slices.ContainsFunc(cols, func(c any) bool { return lookup(c.(map[string]any), "name") == name })
}
