package knative

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"knative.dev/pkg/apis"
	v1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

// TestKnServicesPassKnativeValidation runs the checks Knative's admission webhook makes on
// every Knative Service in kn/ (defaulting, then validation with Knative's default
// configuration: reserved variables, allowed PodSpec fields, probe ports, timeouts), which a
// bare kube-apiserver cannot. test/deploy runs this test as part of `make test`.
func TestKnServicesPassKnativeValidation(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "kn", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no kn/*.yaml found (err %v)", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s v1.Service
		if err := yaml.UnmarshalStrict(data, &s); err != nil {
			t.Errorf("%s: not a Knative Service: %v", f, err)
			continue
		}
		ctx := apis.WithinCreate(context.Background())
		s.SetDefaults(ctx)
		if err := s.Validate(ctx); err != nil {
			t.Errorf("%s: Knative's webhook would refuse it: %v", f, err)
		}
	}
}
