package multicluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitops-reverser/gitops-reverser/lib/ingest"
)

// Both clusters create team-a/shared with their own content, and one object each that only
// they have: every object lands only under its cluster's folder, authored by the cluster's
// own user, with the cluster's id in the commit.
func TestEachClusterWritesOnlyUnderItsOwnTarget(t *testing.T) {
	ctx := ctxFor(t, waitTimeout)
	for _, c := range []*cluster{env.East, env.West} {
		for _, cm := range []*corev1.ConfigMap{
			{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "team-a"}, Data: map[string]string{"from": c.ID}},
			{ObjectMeta: metav1.ObjectMeta{Name: "only-" + c.ID, Namespace: "team-b"}, Data: map[string]string{"from": c.ID}},
		} {
			if _, err := c.Client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatalf("%s: %v", c.ID, err)
			}
		}
	}
	want := map[string]string{
		env.East.File("team-a", "configmaps", "shared"):    "east",
		env.West.File("team-a", "configmaps", "shared"):    "west",
		env.East.File("team-b", "configmaps", "only-east"): "east",
		env.West.File("team-b", "configmaps", "only-west"): "west",
	}
	files := waitFiles(t, waitTimeout, "both clusters' objects", func(files map[string]string) bool {
		for p, from := range want {
			if configMapData(files[p])["from"] != from {
				return false
			}
		}
		return true
	})
	for p := range files {
		if strings.HasSuffix(p, "/only-east.yaml") && !strings.HasPrefix(p, "clusters/east/") ||
			strings.HasSuffix(p, "/only-west.yaml") && !strings.HasPrefix(p, "clusters/west/") {
			t.Errorf("%s is outside its cluster's folder", p)
		}
	}
	authors := map[string]string{"east": env.East.User, "west": env.West.User}
	for p, from := range want {
		commits := commitsTouching(t, p)
		if len(commits) == 0 {
			t.Fatalf("no commit touches %s", p)
		}
		for _, c := range commits {
			if c.AuthorName != authors[from] {
				t.Errorf("%s: commit %s authored by %q, want %s's user %q", p, c.Hash[:8], c.AuthorName, from, authors[from])
			}
			if !hasTrailer(c.Message, "Cluster-Id", from) {
				t.Errorf("%s: commit %s lacks Cluster-Id: %s:\n%s", p, c.Hash[:8], from, c.Message)
			}
			for _, f := range c.Files {
				if !strings.HasPrefix(f, "clusters/"+from+"/") {
					t.Errorf("commit %s of cluster %s also writes %s", c.Hash[:8], from, f)
				}
			}
		}
	}
}

// A token is valid only on its own cluster's route, an unknown route is 404, and an event is
// the route's cluster's whatever its payload says.
func TestTokenOfAnotherClusterIsRefused(t *testing.T) {
	ctx := ctxFor(t, waitTimeout)
	cases := []struct {
		name, route, token string
		want               int
	}{
		{"east's token on west's route", "west", env.East.Token, http.StatusUnauthorized},
		{"west's token on east's route", "east", env.West.Token, http.StatusUnauthorized},
		{"no token", "west", "", http.StatusUnauthorized},
		{"unknown cluster", "north", env.East.Token, http.StatusNotFound},
		{"own token", "west", env.West.Token, http.StatusOK},
	}
	for _, tc := range cases {
		code, err := env.post(ctx, tc.route, tc.token, emptyBatch)
		if err != nil {
			t.Fatal(err)
		}
		if code != tc.want {
			t.Errorf("%s: POST /audit-webhook/%s answered %d, want %d", tc.name, tc.route, code, tc.want)
		}
	}

	// With west's token on west's route, a payload that claims to come from east (east's user,
	// an annotation naming east) is still west's.
	obj := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{
			"name": "claims-east", "namespace": "team-a", "uid": "0b9a5c1e-9f1e-4c1e-8c1e-2f4b6a1d0e01",
			"resourceVersion": "17", "annotations": map[string]any{"cluster": "east"},
		},
		"data": map[string]any{"claimed": "east"},
	}
	raw, _ := json.Marshal(obj)
	event := map[string]any{
		"auditID": "4f0e7f54-2d8d-4bd2-9a51-1c3f0a0b7c11", "stage": "ResponseComplete",
		"requestURI": "/api/v1/namespaces/team-a/configmaps", "verb": "create",
		"user":           map[string]any{"username": env.East.User},
		"objectRef":      map[string]any{"resource": "configmaps", "namespace": "team-a", "name": "claims-east", "apiVersion": "v1"},
		"responseStatus": map[string]any{"code": 201},
		"responseObject": json.RawMessage(raw),
		"stageTimestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"annotations":    map[string]any{"cluster": "east", "clusterID": "east"},
	}
	body, _ := json.Marshal(map[string]any{"apiVersion": "audit.k8s.io/v1", "kind": "EventList", "items": []any{event}})
	if code, err := env.post(ctx, "east", env.West.Token, body); err != nil || code != http.StatusUnauthorized {
		t.Errorf("the claiming batch with west's token on east's route: %d %v, want 401", code, err)
	}
	if code, err := env.post(ctx, "west", env.West.Token, body); err != nil || code != http.StatusOK {
		t.Fatalf("the claiming batch on west's route: %d %v, want 200", code, err)
	}
	westFile := env.West.File("team-a", "configmaps", "claims-east")
	files := waitFiles(t, waitTimeout, westFile, func(files map[string]string) bool { _, ok := files[westFile]; return ok })
	if _, ok := files[env.East.File("team-a", "configmaps", "claims-east")]; ok {
		t.Errorf("the claiming event reached east's folder")
	}
	for _, c := range commitsTouching(t, westFile) {
		if !hasTrailer(c.Message, "Cluster-Id", "west") {
			t.Errorf("commit %s of the claiming event is not west's:\n%s", c.Hash[:8], c.Message)
		}
	}
	if n := metric(t, batchesMetric, map[string]string{"cluster": "west", "code": "401"}); n < 2 {
		t.Errorf("batches_total{cluster=west,code=401} = %v, want at least 2", n)
	}
	// An unknown route is counted, but not under the name the caller chose: anyone can POST,
	// and a series per invented name would grow without bound.
	if n := metric(t, batchesMetric, map[string]string{"cluster": "north"}); n != 0 {
		t.Errorf("ingest keeps a metric series for the unknown cluster %q", "north")
	}
	if n := metric(t, batchesMetric, map[string]string{"cluster": ingest.UnknownClusterLabel, "code": "404"}); n < 1 {
		t.Errorf("batches_total{cluster=%s,code=404} = %v, want at least 1", ingest.UnknownClusterLabel, n)
	}
}

// Deleting a SourceCluster from the home cluster closes its route within seconds.
func TestRemovedClusterIsRefusedWithinSeconds(t *testing.T) {
	ctx := ctxFor(t, waitTimeout)
	if code, err := env.post(ctx, "west", env.West.Token, emptyBatch); err != nil || code != http.StatusOK {
		t.Fatalf("before: %d %v", code, err)
	}
	t.Cleanup(func() { restoreWest(t) })
	if err := env.deleteSourceCluster(ctx, env.West); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	var last int
	err := poll(ctxFor(t, 10*time.Second), 50*time.Millisecond, func() (bool, error) {
		code, err := env.post(ctx, "west", env.West.Token, emptyBatch)
		last = code
		return code == http.StatusNotFound, err
	})
	took := time.Since(deleted)
	if err != nil {
		t.Fatalf("west's valid token still answered %d %s after its SourceCluster was deleted: %v", last, took, err)
	}
	t.Logf("removed cluster refused (404) %.2f s after its SourceCluster was deleted", took.Seconds())
	if took > 5*time.Second {
		t.Errorf("refused only after %s, want within 5 s", took)
	}
	if code, err := env.post(ctx, "east", env.East.Token, emptyBatch); err != nil || code != http.StatusOK {
		t.Errorf("east after west's removal: %d %v, want 200", code, err)
	}
}

// restoreWest puts west's SourceCluster back as it started and waits until ingest accepts
// west's token again.
func restoreWest(t *testing.T) {
	ctx := ctxFor(t, waitTimeout)
	if err := env.applySourceCluster(ctx, env.West, sourceClusterSpec{Tokens: []string{env.West.TokenSecret}, Kubeconfig: "west-kubeconfig"}); err != nil {
		t.Fatal(err)
	}
	err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		code, err := env.post(ctx, "west", env.West.Token, emptyBatch)
		return code == http.StatusOK, err
	})
	if err != nil {
		t.Fatalf("west not accepted again: %v", err)
	}
}

// waitCode posts an empty batch to route with token until it is answered want, and returns
// how many 401 answers it got on the way (so the caller can tell its own from the
// apiserver's).
func waitCode(t *testing.T, route, token string, want int) (unauthorized int) {
	t.Helper()
	ctx := ctxFor(t, waitTimeout)
	err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		code, err := env.post(ctx, route, token, emptyBatch)
		if code == http.StatusUnauthorized {
			unauthorized++
		}
		return code == want, err
	})
	if err != nil {
		t.Fatalf("POST /audit-webhook/%s never answered %d: %v", route, want, err)
	}
	return unauthorized
}

// keepWriting creates a new ConfigMap in c every interval until stop is closed, and returns
// the names that were created. Failures (the apiserver restarting) are counted, not fatal.
func keepWriting(ctx context.Context, c *cluster, prefix string, interval time.Duration, stop <-chan struct{}) (created func() []string, failed func() int, done <-chan struct{}) {
	var names []string
	var failures int
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			name := fmt.Sprintf("%s-%03d", prefix, i)
			_, err := c.Client.CoreV1().ConfigMaps("team-a").Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": name},
			}, metav1.CreateOptions{})
			if err == nil {
				names = append(names, name)
			} else {
				failures++
			}
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() []string { <-ch; return names }, func() int { <-ch; return failures }, ch
}
