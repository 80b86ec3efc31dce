package catalog

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

// TestWatchFollowsTheAPIServer applies the shipped CRDs and a configuration to a real
// kube-apiserver, and checks that a Watcher sees it, and sees changes without a restart.
func TestWatchFollowsTheAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kube := testenv.KubeWithCRDs(t, harness.KubeOptions{})
	config, err := os.ReadFile("../ingest/testdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := kube.Apply(ctx, harness.AdminUser, config); err != nil {
		t.Fatal(err)
	}

	w, err := Watch(ctx, kube.RESTConfig(harness.AdminUser), 300*time.Millisecond, UsesAll)
	if err != nil {
		t.Fatal(err)
	}
	s := w.Snapshot()
	if len(s.Problems) != 0 {
		t.Fatalf("problems: %v", s.Problems)
	}
	for id, token := range map[string]string{"c1": "token-of-c1", "c2": "token-of-c2"} {
		if c, ok := s.Cluster(id); !ok || !c.Authenticate(token) {
			t.Errorf("cluster %s not served with its token", id)
		}
	}
	if len(s.Plan.Targets()) != 1 {
		t.Errorf("targets = %d, want 1", len(s.Plan.Targets()))
	}

	// Removing a SourceCluster stops it being accepted; rotating a token Secret swaps tokens.
	dyn := dynamic.NewForConfigOrDie(kube.RESTConfig(harness.AdminUser))
	if err := dyn.Resource(GVR("sourceclusters")).Delete(ctx, "c2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	core := kubernetes.NewForConfigOrDie(kube.RESTConfig(harness.AdminUser))
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tokens", Namespace: "gitops"}, StringData: map[string]string{"c1": "rotated-c1"}}
	if _, err := core.CoreV1().Secrets("gitops").Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := w.Snapshot()
		_, c2 := s.Cluster("c2")
		c1, _ := s.Cluster("c1")
		if !c2 && c1 != nil && c1.Authenticate("rotated-c1") && !c1.Authenticate("token-of-c1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: c2 still present = %v, c1 = %+v", c2, c1)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
